//! Discovery for Python: catalog snapshots, waits, syncs, tags and the
//! event stream. Only conversion happens here.

use std::sync::Arc;

use mosaik_core::{Digest, Node, discovery::Event, network::parse_address};
use pyo3::prelude::*;
use tokio::sync::{Mutex, broadcast::error::RecvError};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    errors::{link_error, value_error},
    network::{PeerTuple, peer_tuple},
    runtime,
};

pub fn peers(node: &Node) -> Vec<PeerTuple> {
    node.discovery().peers().iter().map(peer_tuple).collect()
}

pub fn wait_for_peers<'py>(py: Python<'py>, node: &Node, n: usize) -> PyResult<Bound<'py, PyAny>> {
    let node = node.clone();
    runtime::into_py_future(py, async move {
        node.discovery().wait_for_peers(n).await;
        Ok(())
    })
}

pub fn sync_with<'py>(py: Python<'py>, node: &Node, address: &str) -> PyResult<Bound<'py, PyAny>> {
    let addr = parse_address(address).map_err(|e| value_error("address", e))?;
    let node = node.clone();
    runtime::into_py_future(py, async move {
        node.discovery()
            .sync_with(addr)
            .await
            .map_err(|e| link_error(mosaik_core::network::LinkError::Connect(e.to_string())))
    })
}

pub fn change_tags<'py>(
    py: Python<'py>,
    node: &Node,
    tags: Vec<String>,
    add: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let node = node.clone();
    let tags: Vec<Digest> = tags.iter().map(|t| Digest::from_name(t)).collect();
    runtime::into_py_future(py, async move {
        Ok(if add {
            node.discovery().add_tags(tags).await
        } else {
            node.discovery().remove_tags(tags).await
        })
    })
}

/// One subscriber's view of discovery events, from the moment it was made.
#[pyclass(module = "mosaik._mosaik", name = "DiscoveryEvents", frozen)]
pub struct PyDiscoveryEvents {
    receiver: Arc<Mutex<tokio::sync::broadcast::Receiver<Event>>>,
    closed: CancellationToken,
}

impl PyDiscoveryEvents {
    pub fn new(node: &Node) -> Self {
        Self {
            receiver: Arc::new(Mutex::new(node.discovery().subscribe())),
            closed: node.discovery().cancel_token().clone(),
        }
    }
}

#[pymethods]
impl PyDiscoveryEvents {
    /// Resolves to `(kind, peer)` for the next event, or `None` once the
    /// node is closed.
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
                    Ok(event) => return Ok(Some((event.kind(), peer_tuple(event.entry())))),
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
