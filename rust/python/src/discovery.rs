//! `node.discovery` for Python: the catalog, waits, syncs, tags, pings and
//! the event stream. Only conversion happens here.

use std::{collections::BTreeMap, sync::Arc};

use mosaik_core::{
    Digest, Node,
    discovery::{Event, Ticket},
    network::{EndpointAddr, parse_address},
};
use pyo3::prelude::*;
use tokio::sync::{Mutex, broadcast::error::RecvError};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    convert::{self, DiscoveryEvent, PeerInfo},
    errors::{Error, py_err},
    node::check_open,
    runtime,
};

#[pyclass(module = "mosaik._mosaik", name = "Discovery", frozen)]
pub struct PyDiscovery {
    node: Node,
}

impl PyDiscovery {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

fn parse(argument: &'static str, address: &str) -> PyResult<EndpointAddr> {
    parse_address(address).map_err(|e| py_err(Error::Address(argument, e)))
}

#[pymethods]
impl PyDiscovery {
    /// The catalog, this node excluded, in peer-id order.
    fn peers(&self) -> Vec<PeerInfo> {
        self.node.discovery().peers().iter().map(PeerInfo::of).collect()
    }

    /// This node's own entry, as peers see it.
    fn me(&self) -> PeerInfo {
        PeerInfo::of(&self.node.discovery().local().current())
    }

    fn wait_for_peers<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let node = self.node.clone();
        runtime::until_done(py, async move { node.discovery().wait_for_peers(n).await })
    }

    /// Full catalog exchange with the peer at `address`; resolves to the
    /// number of entries taken.
    fn sync_with<'py>(&self, py: Python<'py>, address: &str) -> PyResult<Bound<'py, PyAny>> {
        let addr = parse("address", address)?;
        check_open(&self.node)?;
        let node = self.node.clone();
        runtime::into_py_future(py, async move {
            node.discovery().sync_with(addr).await.map_err(py_err)
        })
    }

    /// Pings the peer at `address` and resolves to its freshly signed entry.
    fn ping<'py>(&self, py: Python<'py>, address: &str, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let addr = parse("address", address)?;
        let timeout = convert::seconds("timeout", timeout)?;
        check_open(&self.node)?;
        let node = self.node.clone();
        runtime::into_py_future(py, async move {
            let reply = node.ping(addr, timeout).await.map_err(py_err)?;
            Ok(PeerInfo::of(&reply))
        })
    }

    /// Adds tags and re-announces; resolves to whether anything changed.
    fn add_tags<'py>(&self, py: Python<'py>, tags: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        self.change_tags(py, tags, true)
    }

    fn remove_tags<'py>(&self, py: Python<'py>, tags: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        self.change_tags(py, tags, false)
    }

    /// Attaches a ticket (`class_id` hex, `data`); resolves to its id.
    fn add_ticket<'py>(
        &self,
        py: Python<'py>,
        class_id: &str,
        data: Vec<u8>,
        replace: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_open(&self.node)?;
        let ticket = Ticket {
            class: Digest::from_name(class_id),
            data,
        };
        let node = self.node.clone();
        runtime::into_py_future(py, async move {
            let discovery = node.discovery();
            let id = if replace {
                discovery.replace_ticket(ticket).await
            } else {
                discovery.add_ticket(ticket).await
            };
            Ok(id.to_hex())
        })
    }

    /// Detaches the ticket `ticket_id` (hex); resolves to whether we carried it.
    fn remove_ticket<'py>(&self, py: Python<'py>, ticket_id: &str) -> PyResult<Bound<'py, PyAny>> {
        check_open(&self.node)?;
        let id = Digest::from_name(ticket_id);
        let node = self.node.clone();
        runtime::into_py_future(py, async move { Ok(node.discovery().remove_ticket(id).await) })
    }

    /// Rejected discovery input, counted by reason.
    fn rejections(&self) -> BTreeMap<&'static str, u64> {
        self.node.discovery().rejections()
    }

    fn events(&self) -> PyDiscoveryEvents {
        PyDiscoveryEvents {
            receiver: Arc::new(Mutex::new(self.node.discovery().subscribe())),
            closed: self.node.discovery().cancel_token().clone(),
        }
    }
}

impl PyDiscovery {
    fn change_tags<'py>(&self, py: Python<'py>, tags: Vec<String>, add: bool) -> PyResult<Bound<'py, PyAny>> {
        check_open(&self.node)?;
        let node = self.node.clone();
        let tags: Vec<Digest> = tags.iter().map(|t| Digest::from_name(t)).collect();
        runtime::into_py_future(py, async move {
            Ok(if add {
                node.discovery().add_tags(tags).await
            } else {
                node.discovery().remove_tags(tags).await
            })
        })
    }
}

/// One subscriber's view of discovery events, from the moment it was made.
#[pyclass(module = "mosaik._mosaik", name = "DiscoveryEvents", frozen)]
pub struct PyDiscoveryEvents {
    receiver: Arc<Mutex<tokio::sync::broadcast::Receiver<Event>>>,
    closed: CancellationToken,
}

#[pymethods]
impl PyDiscoveryEvents {
    /// Resolves to the next `DiscoveryEvent`, or `None` once the node is closed.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (receiver, closed) = (self.receiver.clone(), self.closed.clone());
        runtime::into_py_future(py, async move {
            let mut receiver = receiver.lock().await;
            loop {
                let received = tokio::select! {
                    _ = closed.cancelled() => return Ok(None),
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(event) => return Ok(Some(DiscoveryEvent::of(&event))),
                    Err(RecvError::Lagged(missed)) => {
                        warn!(
                            missed,
                            "discovery events: subscriber fell behind, events were skipped"
                        );
                    }
                    Err(RecvError::Closed) => return Ok(None),
                }
            }
        })
    }
}
