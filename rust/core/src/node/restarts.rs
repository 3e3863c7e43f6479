//! Restarted peers: when discovery sees a peer's entry from a new run (same
//! id, a new `started_at`), the route repair closes the connections of its
//! previous run now rather than at the idle timeout. This is the node's
//! glue between discovery (which notices) and the transport (which acts).

use std::collections::HashMap;

use iroh::EndpointId;
use tokio::sync::broadcast;

use crate::{
    discovery::{Discovery, Event},
    network::route_repair::RouteRepair,
};

/// Tells the route repair about every peer that restarted (same id, a new
/// `started_at`), so the connections of its previous run close now rather
/// than at the idle timeout.
pub(super) async fn close_connections_of_restarted_peers(discovery: Discovery, repair: RouteRepair) {
    let mut events = discovery.subscribe();
    // The run each peer was last seen in. A peer is forgotten when it
    // departs (a restart after that is a fresh discovery, and its old
    // connections ended with the departure or go at the idle timeout). A
    // departure we missed (this subscriber lagged) would stay for ever, so
    // after a lag, or once the map outgrows what the catalog can hold, it
    // keeps only peers discovery still knows.
    let mut runs: HashMap<EndpointId, i64> = HashMap::new();
    let bound = 2 * discovery.config().max_catalog_entries;
    let cancel = discovery.cancel_token().clone();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                runs.retain(|id, _| discovery.knows(id));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let entry = event.entry().entry();
        match event {
            Event::Departed(_) => {
                runs.remove(&entry.id());
            }
            Event::Discovered(_) | Event::Updated(_) => {
                let run = entry.version.started_at_ms();
                if runs
                    .insert(entry.id(), run)
                    .is_some_and(|previous| previous != run)
                {
                    let _unclosable = repair.moved(entry.id(), &entry.address.addrs, "peer restarted");
                }
                if runs.len() > bound {
                    runs.retain(|id, _| discovery.knows(id));
                }
            }
        }
    }
}
