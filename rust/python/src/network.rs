//! `Node`: the Python handle of a running core node.
//!
//! Only conversion happens here: strings to ids and addresses, core errors
//! to Python exceptions, futures to asyncio awaitables. Arguments arrive
//! already type-checked by `mosaik/network.py`; values are checked here,
//! and every error names the argument.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use mosaik_core::{
    Digest, Node, NodeConfig, RelayChoice,
    discovery::{DiscoveryConfig, SignedPeerEntry},
    network::{format_address, parse_address},
};
use pyo3::prelude::*;

use crate::{
    discovery,
    errors::{Closed, link_error, node_error, value_error},
    runtime, streams,
};

/// What a ping (and later the catalog) tells about a peer, as plain values:
/// (peer_id, network_id, address, tags, streams, (started_ms, updated_ms)).
pub type PeerTuple = (String, String, String, Vec<String>, Vec<String>, (i64, i64));

pub fn peer_tuple(signed: &SignedPeerEntry) -> PeerTuple {
    let entry = signed.entry();
    (
        entry.id().to_string(),
        entry.network.to_hex(),
        format_address(&entry.address),
        entry.tags.iter().map(Digest::to_hex).collect(),
        entry.streams.iter().map(Digest::to_hex).collect(),
        (entry.version.started_at_ms(), entry.version.updated_at_ms()),
    )
}

/// `(purge_after, announce_interval, announce_jitter, max_time_drift,
/// sync_timeout, events_backlog)`, seconds except the last two.
#[derive(FromPyObject)]
pub struct DiscoveryOptions(f64, f64, f64, f64, f64, usize);

impl DiscoveryOptions {
    fn apply(&self, config: &mut DiscoveryConfig) -> PyResult<()> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 && value < 1e9 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(value_error(
                    name,
                    format!("must be a positive number of seconds, got {value}"),
                ))
            }
        };
        config.purge_after = seconds("purge_after", self.0)?;
        config.announce_interval = seconds("announce_interval", self.1)?;
        if !(0.0..=1.0).contains(&self.2) {
            return Err(value_error(
                "announce_jitter",
                format!("must be within [0, 1], got {}", self.2),
            ));
        }
        config.announce_jitter = self.2;
        config.max_time_drift = seconds("max_time_drift", self.3)?;
        config.sync_timeout = seconds("sync_timeout", self.4)?;
        if self.5 == 0 {
            return Err(value_error("events_backlog", "must be at least 1"));
        }
        config.events_backlog = self.5;
        Ok(())
    }
}

#[pyclass(module = "mosaik._mosaik", name = "Node", frozen)]
pub struct PyNode {
    node: Node,
    /// Lives exactly as long as this handle; the runtime's registry watches it.
    _alive: Arc<()>,
}

fn parse_relay(relay: &str) -> PyResult<RelayChoice> {
    match relay {
        "default" => Ok(RelayChoice::Default),
        "disabled" => Ok(RelayChoice::Disabled),
        url if url.starts_with("http://") || url.starts_with("https://") => url
            .parse()
            .map(RelayChoice::Url)
            .map_err(|e| value_error("relay", format!("not a relay URL ({e}): {url:?}"))),
        other => Err(value_error(
            "relay",
            format!("expected \"default\", \"disabled\" or an http(s) URL, got {other:?}"),
        )),
    }
}

#[pymethods]
impl PyNode {
    /// Starts a node; resolves to a `Node` once the endpoint is bound.
    #[staticmethod]
    #[pyo3(signature = (network, secret_key, tags, bootstrap, relay, bind, local, mdns, dht, discovery))]
    #[allow(clippy::too_many_arguments)]
    fn create<'py>(
        py: Python<'py>,
        network: &str,
        secret_key: Option<[u8; 32]>,
        tags: Vec<String>,
        bootstrap: Vec<String>,
        relay: &str,
        bind: Option<&str>,
        local: bool,
        mdns: bool,
        dht: Option<bool>,
        discovery: DiscoveryOptions,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut config = NodeConfig::new(Digest::from_name(network));
        config.secret_key = secret_key;
        config.tags = tags.iter().map(|t| Digest::from_name(t)).collect();
        config.bootstrap = bootstrap
            .iter()
            .map(|a| parse_address(a).map_err(|e| value_error("bootstrap", e)))
            .collect::<PyResult<_>>()?;
        config.relay = parse_relay(relay)?;
        config.bind = bind
            .map(|b| {
                b.parse::<SocketAddr>()
                    .map_err(|_| value_error("bind", format!("expected \"ip:port\", got {b:?}")))
            })
            .transpose()?;
        config.local = local;
        config.mdns = mdns;
        config.dht = dht.unwrap_or(!local);
        discovery.apply(&mut config.discovery)?;
        config.validate().map_err(|e| node_error(e.into()))?;
        runtime::into_py_future(py, async move {
            let node = Node::spawn(config).await.map_err(node_error)?;
            let alive = Arc::new(());
            runtime::register_node(Arc::downgrade(&alive), node.clone());
            Ok(PyNode { node, _alive: alive })
        })
    }

    #[getter]
    fn peer_id(&self) -> String {
        self.node.peer_id().to_string()
    }

    #[getter]
    fn network_id(&self) -> String {
        self.node.network_id().to_hex()
    }

    #[getter]
    fn address(&self) -> String {
        self.node.address()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.node.is_closed()
    }

    /// Pings a peer and resolves to its freshly signed entry as a `PeerTuple`.
    fn ping<'py>(&self, py: Python<'py>, address: &str, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let addr = parse_address(address).map_err(|e| value_error("address", e))?;
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(value_error(
                "timeout",
                format!("must be a positive number of seconds, got {timeout}"),
            ));
        }
        self.check_open()?;
        let node = self.node.clone();
        runtime::into_py_future(py, async move {
            let reply = node
                .ping(addr, Duration::from_secs_f64(timeout))
                .await
                .map_err(link_error)?;
            Ok(peer_tuple(&reply))
        })
    }

    fn peers(&self) -> Vec<PeerTuple> {
        discovery::peers(&self.node)
    }

    fn wait_for_peers<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        discovery::wait_for_peers(py, &self.node, n)
    }

    /// Full catalog exchange with the peer at `address`; resolves to the
    /// number of entries taken.
    fn sync_with<'py>(&self, py: Python<'py>, address: &str) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        discovery::sync_with(py, &self.node, address)
    }

    /// Adds tags and re-announces; resolves to whether anything changed.
    fn add_tags<'py>(&self, py: Python<'py>, tags: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        discovery::change_tags(py, &self.node, tags, true)
    }

    fn remove_tags<'py>(&self, py: Python<'py>, tags: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        discovery::change_tags(py, &self.node, tags, false)
    }

    /// This node's own entry, as peers see it.
    fn me(&self) -> PeerTuple {
        peer_tuple(&self.node.discovery().local().current())
    }

    /// Rejected discovery input, counted by reason.
    fn rejections(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.node.discovery().rejections()
    }

    fn events(&self) -> discovery::PyDiscoveryEvents {
        discovery::PyDiscoveryEvents::new(&self.node)
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (stream, framing, buffer_size, lagging, max_consumers, require))]
    fn producer(
        &self,
        stream: &str,
        framing: &str,
        buffer_size: usize,
        lagging: &str,
        max_consumers: Option<usize>,
        require: Option<Py<PyAny>>,
    ) -> PyResult<streams::PyProducer> {
        self.check_open()?;
        streams::producer(
            &self.node,
            stream,
            framing,
            buffer_size,
            lagging,
            max_consumers,
            require,
        )
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (stream, framing, queue_size, overflow, backoff, require))]
    fn consumer(
        &self,
        stream: &str,
        framing: &str,
        queue_size: usize,
        overflow: &str,
        backoff: Option<streams::BackoffTuple>,
        require: Option<Py<PyAny>>,
    ) -> PyResult<streams::PyConsumer> {
        self.check_open()?;
        streams::consumer(
            &self.node, stream, framing, queue_size, overflow, backoff, require,
        )
    }

    /// Closes the node; idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let node = self.node.clone();
        runtime::into_py_future(py, async move {
            node.close().await;
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<Node {} network={} {}>",
            &self.node.peer_id().to_string()[..10],
            &self.node.network_id().to_hex()[..10],
            if self.node.is_closed() { "closed" } else { "open" }
        )
    }
}

impl PyNode {
    fn check_open(&self) -> PyResult<()> {
        if self.node.is_closed() {
            return Err(Closed::new_err("the network is closed"));
        }
        Ok(())
    }
}

impl Drop for PyNode {
    fn drop(&mut self) {
        if !self.node.is_closed() {
            runtime::close_in_background(self.node.clone());
        }
    }
}
