//! `Node`: the Python handle of a running core node, with one handle per
//! subsystem (`node.discovery`, `node.streams`).
//!
//! Only conversion happens here: the options dict to a `NodeConfig`, core
//! errors to Python exceptions (`errors`), futures to asyncio awaitables
//! (`runtime`). Arguments arrive checked by `mosaik/_checks.py`.

use std::{net::SocketAddr, sync::Arc};

use mosaik_core::{Digest, Node, NodeConfig, network::parse_address};
use pyo3::prelude::*;

use crate::{
    convert::{self, DiscoveryOptions},
    discovery::PyDiscovery,
    errors::{Closed, Error, py_err, value_error},
    groups::PyGroups,
    runtime,
    streams::PyStreams,
};

/// What `Network.create` passes besides the network name (a dict).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct NodeOptions {
    secret_key: Option<[u8; 32]>,
    tags: Vec<String>,
    bootstrap: Vec<String>,
    relay: String,
    bind: Option<String>,
    local: bool,
    mdns: bool,
    dht: Option<bool>,
    discovery: DiscoveryOptions,
}

impl NodeOptions {
    fn into_config(self, network: &str) -> PyResult<NodeConfig> {
        let mut config = NodeConfig::new(Digest::from_name(network));
        config.secret_key = self.secret_key;
        config.tags = self.tags.iter().map(|t| Digest::from_name(t)).collect();
        config.bootstrap = self
            .bootstrap
            .iter()
            .map(|a| parse_address(a).map_err(|e| py_err(Error::Address("bootstrap", e))))
            .collect::<PyResult<_>>()?;
        config.relay = convert::relay(&self.relay)?;
        config.bind = self
            .bind
            .map(|b| {
                b.parse::<SocketAddr>()
                    .map_err(|_| value_error("bind", format!("expected \"ip:port\", got {b:?}")))
            })
            .transpose()?;
        config.local = self.local;
        config.mdns = self.mdns;
        config.dht = self.dht.unwrap_or(!self.local);
        config.discovery = self.discovery.into_config()?;
        config.validate().map_err(py_err)?;
        Ok(config)
    }
}

/// Checks that a handle's node is still open before starting an operation.
pub fn check_open(node: &Node) -> PyResult<()> {
    if node.is_closed() {
        return Err(Closed::new_err("the network is closed"));
    }
    Ok(())
}

#[pyclass(module = "mosaik._mosaik", name = "Node", frozen)]
pub struct PyNode {
    /// This node's id: its Ed25519 public key in hex.
    #[pyo3(get)]
    peer_id: String,
    /// The network's id, 64 hex.
    #[pyo3(get)]
    network_id: String,
    node: Node,
    /// Lives exactly as long as this handle; the runtime's registry watches it.
    _alive: Arc<()>,
}

#[pymethods]
impl PyNode {
    /// Starts a node; resolves to a `Node` once the endpoint is bound.
    #[staticmethod]
    fn create<'py>(py: Python<'py>, network: &str, options: NodeOptions) -> PyResult<Bound<'py, PyAny>> {
        let config = options.into_config(network)?;
        runtime::into_py_future(py, async move {
            let node = Node::spawn(config).await.map_err(py_err)?;
            let alive = Arc::new(());
            runtime::register_node(Arc::downgrade(&alive), node.clone());
            Ok(PyNode {
                peer_id: node.peer_id().to_string(),
                network_id: node.network_id().to_hex(),
                node,
                _alive: alive,
            })
        })
    }

    #[getter]
    fn address(&self) -> String {
        self.node.address()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.node.is_closed()
    }

    #[getter]
    fn discovery(&self) -> PyDiscovery {
        PyDiscovery::new(self.node.clone())
    }

    #[getter]
    fn streams(&self) -> PyStreams {
        PyStreams::new(self.node.clone())
    }

    #[getter]
    fn groups(&self) -> PyGroups {
        PyGroups::new(self.node.clone())
    }

    /// Resolves once the node is online (at once without relays).
    fn online<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let node = self.node.clone();
        runtime::into_py_future(py, async move { node.online().await.map_err(py_err) })
    }

    /// Closes the node; idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let node = self.node.clone();
        runtime::until_done(py, async move { node.close().await })
    }

    fn __repr__(&self) -> String {
        format!(
            "<Node {} network={} {}>",
            &self.peer_id[..10],
            &self.network_id[..10],
            if self.node.is_closed() { "closed" } else { "open" }
        )
    }
}

impl Drop for PyNode {
    fn drop(&mut self) {
        if !self.node.is_closed() {
            runtime::close_in_background(self.node.clone());
        }
    }
}
