//! The discovery worker: one long-lived task per node that runs gossip.
//!
//! It joins the network's gossip topic (topic id = network id bytes, ALPN
//! `/mosaik/discovery/announce/1.0`), syncs with the bootstrap peers, then
//! reacts: announcements feed the catalog; a new neighbour hears our entry;
//! losing every neighbour re-joins through the catalog; a timer re-announces
//! every 45 s ± 50 %; another purges stale entries; address changes (a home
//! relay being chosen) re-announce at once. Beside it, one task dials the
//! peers queued for a catalog sync (`sync_queue.rs`).

use std::time::Duration;

use futures::StreamExt;
use iroh::{EndpointAddr, Watcher};
use iroh_gossip::{
    api::{Event as GossipEvent, GossipReceiver},
    net::Gossip,
    proto::TopicId,
};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use super::{
    announce::{Announcement, AnnouncementError},
    catalog::Source,
    entry::EntryError,
    rejection::Rejection,
    service::Discovery,
};

/// Delay before re-subscribing after the gossip topic closed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// How often stale entries are looked for: staleness is noticed within this.
const PURGE_CHECK: Duration = Duration::from_secs(1);

/// Starts the worker of `discovery`: gossip, periodic announces and purges,
/// and a catalog sync with each bootstrap peer. It ends with discovery.
pub fn start(discovery: &Discovery, bootstrap: Vec<EndpointAddr>) {
    let gossip = discovery.gossip().clone();
    discovery.tasks().spawn(run(discovery.clone(), gossip, bootstrap));
    discovery.spawn(discovery.clone().run_sync_queue());
}

async fn run(discovery: Discovery, gossip: Gossip, bootstrap: Vec<EndpointAddr>) {
    for addr in &bootstrap {
        let (discovery, addr) = (discovery.clone(), addr.clone());
        let task_discovery = discovery.clone();
        task_discovery.spawn(async move {
            if let Err(e) = discovery.sync_with(addr.clone()).await {
                warn!(peer = %addr.id.fmt_short(), error = %e, "bootstrap sync failed");
            }
        });
    }
    let topic = TopicId::from_bytes(*discovery.network().as_bytes());
    let bootstrap_ids: Vec<_> = bootstrap.iter().map(|a| a.id).collect();
    let cancel = discovery.cancel_token().clone();
    let mut addresses = discovery.endpoint().watch_addr().stream();
    let mut next_announce = Instant::now();
    let mut next_purge = Instant::now() + PURGE_CHECK;

    loop {
        let peers: Vec<_> = bootstrap_ids
            .iter()
            .copied()
            .chain(discovery.peers().iter().map(|e| e.entry().id()))
            .collect();
        let mut receiver = match gossip.subscribe(topic, peers).await {
            Ok(topic) => {
                let (sender, receiver) = topic.split();
                discovery.set_gossip(Some(sender));
                receiver
            }
            Err(e) => {
                warn!(error = %e, "could not join the gossip topic");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                event = receiver.next() => match event {
                    Some(Ok(event)) => on_gossip(&discovery, &receiver, event).await,
                    Some(Err(e)) => { debug!(error = %e, "gossip topic failed"); break; }
                    None => break,
                },
                _ = sleep_until(next_announce) => {
                    discovery.local().refreshed(discovery.endpoint().addr());
                    discovery.announce().await;
                    next_announce = Instant::now() + discovery.config().next_announce_delay();
                }
                _ = sleep_until(next_purge) => {
                    discovery.purge();
                    next_purge = Instant::now() + PURGE_CHECK;
                }
                Some(addr) = addresses.next() => {
                    discovery.update_local(|entry| {
                        let changed = entry.address != addr;
                        entry.address = addr;
                        changed
                    }).await;
                }
            }
        }
        discovery.set_gossip(None);
        discovery.set_neighbors(0);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
        }
    }
}

async fn on_gossip(discovery: &Discovery, receiver: &GossipReceiver, event: GossipEvent) {
    discovery.set_neighbors(receiver.neighbors().count());
    match event {
        GossipEvent::Received(message) => match Announcement::decode(&message.content) {
            Ok(Announcement::OwnEntryUpdate(entry)) => {
                let network = discovery.network();
                if entry.entry().network != network {
                    discovery.reject(
                        Rejection::OtherNetwork,
                        Some(message.delivered_from),
                        &"gossiped entry",
                    );
                    return;
                }
                discovery.ingest(entry, Source::Gossip, Some(message.delivered_from));
            }
            Ok(Announcement::GracefulDeparture(departure)) => {
                discovery.depart_peer(&departure, Some(message.delivered_from));
            }
            Err(e) => {
                let reason = match e {
                    AnnouncementError::Entry(
                        EntryError::BadSignature | EntryError::BadSignatureIn { .. },
                    )
                    | AnnouncementError::BadDepartureSignature => Rejection::ForgedSignature,
                    _ => Rejection::Undecodable,
                };
                discovery.reject(reason, Some(message.delivered_from), &e);
            }
        },
        GossipEvent::NeighborUp(peer) => {
            debug!(peer = %peer.fmt_short(), "gossip neighbour up");
            discovery.announce().await;
        }
        GossipEvent::NeighborDown(peer) => {
            debug!(peer = %peer.fmt_short(), "gossip neighbour down");
            if receiver.neighbors().count() == 0 {
                rejoin(discovery).await;
            }
        }
        GossipEvent::Lagged => {
            warn!("gossip receiver lagged; some announcements were missed");
            rejoin(discovery).await;
        }
    }
}

/// With no neighbours left, try every peer we still believe in.
async fn rejoin(discovery: &Discovery) {
    let ids: Vec<_> = discovery.peers().iter().map(|e| e.entry().id()).collect();
    if ids.is_empty() {
        return;
    }
    if let Some(sender) = discovery.gossip_sender() {
        let _ = sender.join_peers(ids).await;
    }
}
