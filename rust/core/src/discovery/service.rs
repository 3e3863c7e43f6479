//! `Discovery`: the catalog, its rules, and everything that feeds it.
//!
//! Entries arrive from gossip and catalog sync; both go through
//! [`intake`](super::intake), which applies the catalog's rules and the
//! volume budgets, remembers the peer's address so iroh can dial it by id,
//! emits events, and queues a catalog sync with peers seen for the first
//! time ([`sync_queue`](super::sync_queue)). Rejections are counted by reason
//! and logged, rate-limited. `Discovery` owns the node's gossip instance;
//! the [`worker`](super::worker) runs it, and `protocol.rs` serves the
//! protocols.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use iroh::{
    Endpoint, EndpointAddr, EndpointId, address_lookup::memory::MemoryLookup, endpoint_info::EndpointInfo,
};
use iroh_gossip::{api::GossipSender, net::Gossip};
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, info, warn};

use super::{
    announce::{ANNOUNCE_ALPN, Announcement, GracefulDeparture},
    catalog::Catalog,
    config::DiscoveryConfig,
    entry::{PeerEntry, SignedPeerEntry, Ticket, now_ms},
    event::Event,
    local::LocalPeer,
    rejection::{Rejection, Rejections},
    source_budget::SourceBudgets,
    sync::{self, CatalogSync, Merged, Snapshot, SyncCatalog},
    sync_queue::{DialBudget, Learned, Queued, SyncQueue},
};
use crate::{
    network::{Dialer, Protocol},
    primitives::{Digest, varint},
};

/// How long a broadcast may take to reach lazy Plumtree neighbours
/// (dispatch 5 ms + graft timeout 80 ms, with room for a busy peer).
const LAZY_PUSH_SETTLE: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Discovery {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) dialer: Dialer,
    pub(super) local: Arc<LocalPeer>,
    pub(super) lookup: MemoryLookup,
    pub(super) config: DiscoveryConfig,
    pub(super) catalog: Mutex<Catalog>,
    /// New peers each source may still add (taken with `catalog` held).
    pub(super) budgets: Mutex<SourceBudgets>,
    pub(super) events: broadcast::Sender<Event>,
    peer_count: watch::Sender<usize>,
    pub(super) rejections: Rejections,
    /// Peers we have synced with (or queued a sync with) since they last
    /// left; only ids the catalog holds, so it is bounded with it.
    seen: Mutex<HashSet<EndpointId>>,
    /// Newly discovered peers waiting for a sync, and its wake-up.
    pending_syncs: Mutex<SyncQueue>,
    pending_notify: Notify,
    sync_permits: Arc<Semaphore>,
    /// The node's gossip instance (served under mosaik's announce ALPN).
    gossip_net: Gossip,
    /// The topic's sender while the worker has the topic joined.
    gossip: Mutex<Option<GossipSender>>,
    neighbors: AtomicUsize,
    /// Set once we say goodbye: nothing newer may be announced after it,
    /// or peers would take the newer entry as the peer coming back.
    departing: AtomicBool,
    /// When we last broadcast our entry (see `shutdown`).
    last_announce: Mutex<Option<tokio::time::Instant>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Discovery {
    /// Discovery for the dialer's endpoint; nothing runs until
    /// [`Discovery::start`]. `config` must have passed
    /// [`DiscoveryConfig::validate`].
    pub fn new(dialer: Dialer, local: Arc<LocalPeer>, lookup: MemoryLookup, config: DiscoveryConfig) -> Self {
        let endpoint = dialer.endpoint().clone();
        let catalog = Catalog::new(
            endpoint.id(),
            local.network(),
            config.purge_after,
            config.max_time_drift,
            config.max_catalog_entries,
        );
        let (events, _) = broadcast::channel(config.events_backlog);
        let (peer_count, _) = watch::channel(0);
        let gossip_net = Gossip::builder()
            .alpn(ANNOUNCE_ALPN)
            .max_message_size(config.max_gossip_message)
            .spawn(endpoint.clone());
        Self {
            inner: Arc::new(Inner {
                sync_permits: Arc::new(Semaphore::new(config.max_concurrent_syncs)),
                budgets: Mutex::new(SourceBudgets::new(
                    config.max_new_entries_per_source,
                    config.new_entries_window,
                )),
                pending_syncs: Mutex::new(SyncQueue::new(config.max_pending_syncs)),
                pending_notify: Notify::new(),
                gossip_net,
                dialer,
                local,
                lookup,
                config,
                catalog: Mutex::new(catalog),
                events,
                peer_count,
                rejections: Rejections::default(),
                seen: Mutex::new(HashSet::new()),
                gossip: Mutex::new(None),
                neighbors: AtomicUsize::new(0),
                departing: AtomicBool::new(false),
                last_announce: Mutex::new(None),
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.inner.dialer.endpoint()
    }

    /// How every subsystem opens its links.
    pub fn dialer(&self) -> &Dialer {
        &self.inner.dialer
    }

    /// The gossip instance the announce protocol is served by.
    pub fn gossip(&self) -> &Gossip {
        &self.inner.gossip_net
    }

    pub fn local(&self) -> &Arc<LocalPeer> {
        &self.inner.local
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.inner.config
    }

    pub fn network(&self) -> Digest {
        self.inner.local.network()
    }

    pub fn cancel_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    // ---- the catalog, as users see it ---------------------------------------------

    /// Current peers (this node excluded), in peer-id order.
    pub fn peers(&self) -> Vec<SignedPeerEntry> {
        let now = now_ms();
        self.inner
            .catalog
            .lock()
            .expect("catalog")
            .peers(now)
            .cloned()
            .collect()
    }

    pub fn get(&self, id: &EndpointId) -> Option<SignedPeerEntry> {
        self.inner
            .catalog
            .lock()
            .expect("catalog")
            .get(id, now_ms())
            .cloned()
    }

    /// Inserts a local, unsigned entry (never published); see `Catalog::insert_unsigned`.
    pub fn insert(&self, entry: PeerEntry) -> bool {
        let address = entry.address.clone();
        let inserted = self.inner.catalog.lock().expect("catalog").insert_unsigned(entry);
        if inserted {
            self.inner.lookup.add_endpoint_info(EndpointInfo::from(address));
        }
        inserted
    }

    pub fn remove(&self, id: &EndpointId) -> bool {
        self.inner
            .catalog
            .lock()
            .expect("catalog")
            .remove_unsigned(id)
            .is_some()
    }

    /// Whether `id` is a known peer, signed or inserted locally.
    pub fn knows(&self, id: &EndpointId) -> bool {
        self.inner.catalog.lock().expect("catalog").knows(id, now_ms())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Resolves once at least `n` peers are known.
    pub async fn wait_for_peers(&self, n: usize) {
        let mut count = self.inner.peer_count.subscribe();
        let _ = count.wait_for(|c| *c >= n).await;
    }

    /// Rejected entries and messages, by reason name.
    pub fn rejections(&self) -> BTreeMap<&'static str, u64> {
        self.inner.rejections.counts()
    }

    /// Newly discovered peers waiting for a catalog sync (at most
    /// `max_pending_syncs`).
    pub fn pending_syncs(&self) -> usize {
        self.inner.pending_syncs.lock().expect("pending syncs").len()
    }

    pub fn neighbors(&self) -> usize {
        self.inner.neighbors.load(Ordering::Relaxed)
    }

    // ---- intake (see `intake.rs` for entries) ---------------------------------------

    pub(crate) fn reject(&self, reason: Rejection, from: Option<EndpointId>, detail: &dyn std::fmt::Display) {
        self.inner.rejections.record(reason, 1, from, detail);
    }

    /// A peer says goodbye: forget it if the goodbye covers what we hold.
    pub(crate) fn depart_peer(&self, departure: &GracefulDeparture, from: Option<EndpointId>) {
        let drift = self.inner.config.max_time_drift.as_millis() as i64;
        if (now_ms() - departure.timestamp.timestamp_millis()).abs() > drift {
            self.reject(
                Rejection::StaleDeparture,
                from,
                &"departure outside the drift bound",
            );
            return;
        }
        let removed = self
            .inner
            .catalog
            .lock()
            .expect("catalog")
            .depart(&departure.peer_id, departure.last_version);
        if let Some(entry) = removed {
            self.forget(entry);
        }
    }

    /// Drops stale entries, announcing each as departed.
    pub(crate) fn purge(&self) {
        let gone = self.inner.catalog.lock().expect("catalog").purge_stale(now_ms());
        for entry in gone {
            info!(peer = %entry.entry().id().fmt_short(), "peer went stale");
            self.forget(entry);
        }
    }

    pub(super) fn forget(&self, entry: SignedPeerEntry) {
        let id = entry.entry().id();
        self.inner.seen.lock().expect("seen").remove(&id);
        // The lookup holds addresses of catalog peers only, or a churning
        // flood would grow it for ever; a peer that comes back brings its
        // address again.
        self.inner.lookup.remove_endpoint_info(id);
        self.publish_count();
        let _ = self.inner.events.send(Event::Departed(entry));
    }

    pub(super) fn publish_count(&self) {
        let count = self.inner.catalog.lock().expect("catalog").len(now_ms());
        self.inner.peer_count.send_replace(count);
    }

    /// First sight of a peer: queue a catalog sync with it (see
    /// `sync_queue.rs` for the bounds and the order).
    pub(super) fn observe(&self, addr: &EndpointAddr, learned: Learned) {
        if !self.inner.seen.lock().expect("seen").insert(addr.id) {
            return;
        }
        let queued = self
            .inner
            .pending_syncs
            .lock()
            .expect("pending syncs")
            .push(addr.clone(), learned);
        match queued {
            Queued::Yes => {}
            Queued::Displaced(dropped) => {
                self.inner.seen.lock().expect("seen").remove(&dropped.id);
                self.inner.rejections.count(Rejection::SyncQueueFull, 1);
            }
            Queued::Full => {
                self.inner.seen.lock().expect("seen").remove(&addr.id);
                self.inner.rejections.count(Rejection::SyncQueueFull, 1);
            }
        }
        self.inner.pending_notify.notify_one();
    }

    /// Marks `id` as synced with: no queued sync for it is needed.
    pub(super) fn mark_synced(&self, id: EndpointId) {
        self.inner.seen.lock().expect("seen").insert(id);
    }

    /// Dials queued peers for a catalog sync, within the dial budget and
    /// `max_concurrent_syncs`; runs until discovery shuts down.
    pub(crate) async fn run_sync_queue(self) {
        let config = &self.inner.config;
        let mut budget = DialBudget::new(config.sync_dials_per_interval, config.sync_dial_interval);
        loop {
            let next = self.inner.pending_syncs.lock().expect("pending syncs").pop();
            let Some(addr) = next else {
                self.inner.pending_notify.notified().await;
                continue;
            };
            budget.take().await;
            let Ok(permit) = self.inner.sync_permits.clone().acquire_owned().await else {
                return;
            };
            let this = self.clone();
            self.spawn(async move {
                let _permit = permit;
                match sync::initiate(&this, addr.clone()).await {
                    Ok(_) => {
                        // It answered: a gossip neighbour if we have none.
                        if this.neighbors() == 0
                            && let Some(sender) = this.gossip_sender()
                        {
                            let _ = sender.join_peers(vec![addr.id]).await;
                        }
                    }
                    Err(e) => {
                        debug!(peer = %addr.id.fmt_short(), error = %e, "catalog sync failed");
                        // Let a later sighting try again.
                        this.inner.seen.lock().expect("seen").remove(&addr.id);
                    }
                }
            });
        }
    }

    /// Runs `task` until it ends or discovery shuts down.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.inner.cancel.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task => {}
            }
        });
    }

    // ---- what we say about ourselves --------------------------------------------------

    /// Our snapshot frame: our own entry first, then the most recently
    /// updated entries, as many as `max_snapshot_entries` and the frame
    /// limit allow, so a sync we serve never fails for its size.
    pub(crate) fn snapshot(&self) -> Bytes {
        let now = now_ms();
        // A freshly signed own entry: the peer may have let our last one go
        // stale (that is what a 401 from a producer means), and mosaik keeps
        // only entries younger than its `purge_after`. A copy, not stored:
        // peers asking often must not push our version ahead of the clock.
        let own = self.inner.local.signed_copy(self.endpoint().addr());
        let catalog = self.inner.catalog.lock().expect("catalog");
        let max_entries = self.inner.config.max_snapshot_entries;
        let mut room = CatalogSync::MAX_FRAME - varint::MAX_LEN;
        let mut entries: Vec<&SignedPeerEntry> = Vec::new();
        for entry in std::iter::once(&own).chain(catalog.newest_first(now)) {
            if entries.len() == max_entries {
                break;
            }
            // An entry too large for the rest of the frame is skipped, not
            // the end: smaller ones may still fit.
            if let Some(left) = room.checked_sub(entry.wire().len()) {
                room = left;
                entries.push(entry);
            }
        }
        sync::encode_snapshot(entries.into_iter())
    }

    pub(crate) fn set_gossip(&self, sender: Option<GossipSender>) {
        *self.inner.gossip.lock().expect("gossip") = sender;
    }

    pub(crate) fn gossip_sender(&self) -> Option<GossipSender> {
        self.inner.gossip.lock().expect("gossip").clone()
    }

    pub(crate) fn set_neighbors(&self, count: usize) {
        self.inner.neighbors.store(count, Ordering::Relaxed);
    }

    /// Gossips our current entry (when we have neighbours to hear it).
    pub async fn announce(&self) {
        if self.inner.departing.load(Ordering::Acquire) {
            return;
        }
        let Some(sender) = self.gossip_sender() else {
            return;
        };
        let message = Announcement::OwnEntryUpdate(self.inner.local.current());
        match message.encode() {
            Ok(bytes) if bytes.len() < self.inner.config.max_gossip_message => {
                *self.inner.last_announce.lock().expect("last announce") = Some(tokio::time::Instant::now());
                if let Err(e) = sender.broadcast(bytes).await {
                    debug!(error = %e, "announce failed");
                }
            }
            Ok(bytes) => warn!(
                size = bytes.len(),
                "entry too large to gossip; it spreads by catalog sync only"
            ),
            Err(e) => warn!(error = %e, "could not encode our entry"),
        }
    }

    /// Changes our entry (tags, streams, address) and announces it.
    pub async fn update_local(&self, change: impl FnOnce(&mut PeerEntry) -> bool) -> bool {
        if self.inner.local.update(change).is_none() {
            return false;
        }
        self.announce().await;
        true
    }

    pub async fn add_tags(&self, tags: impl IntoIterator<Item = Digest>) -> bool {
        let tags: Vec<Digest> = tags.into_iter().collect();
        self.update_local(|e| {
            let before = e.tags.len();
            e.tags.extend(tags.iter().copied());
            e.tags.len() != before
        })
        .await
    }

    pub async fn remove_tags(&self, tags: impl IntoIterator<Item = Digest>) -> bool {
        let tags: Vec<Digest> = tags.into_iter().collect();
        self.update_local(|e| {
            let before = e.tags.len();
            e.tags.retain(|t| !tags.contains(t));
            e.tags.len() != before
        })
        .await
    }

    /// Attaches `ticket` to our entry, re-signed and announced at once;
    /// answers its id. Adding the same ticket again changes nothing.
    pub async fn add_ticket(&self, ticket: Ticket) -> Digest {
        let id = ticket.id();
        self.update_local(|e| e.tickets.insert(id, ticket).is_none())
            .await;
        id
    }

    /// Detaches the ticket `id`; false when we did not carry it.
    pub async fn remove_ticket(&self, id: Digest) -> bool {
        self.update_local(|e| e.tickets.remove(&id).is_some()).await
    }

    /// Swaps every ticket of `ticket`'s class for `ticket` in one re-signed
    /// entry (mosaik 0.3.17's renewal), so no peer sees us without one.
    pub async fn replace_ticket(&self, ticket: Ticket) -> Digest {
        let id = ticket.id();
        self.update_local(|e| {
            let class = ticket.class;
            let of_class = e.tickets.values().filter(|t| t.class == class).count();
            let unchanged = of_class == 1 && e.tickets.contains_key(&id);
            e.tickets.retain(|_, t| t.class != class);
            e.tickets.insert(id, ticket);
            !unchanged
        })
        .await;
        id
    }

    /// Full catalog exchange with the peer at `addr`; returns how many
    /// entries we took.
    pub async fn sync_with(&self, addr: EndpointAddr) -> Result<usize, sync::SyncError> {
        // The app names where the peer is now: a restarted peer's old
        // connections must not capture the dial.
        self.dialer().expect_at(&addr).await;
        self.inner
            .lookup
            .add_endpoint_info(EndpointInfo::from(addr.clone()));
        sync::initiate(self, addr).await
    }

    /// Says goodbye on gossip (if anyone listens) and stops every task.
    pub async fn shutdown(&self) {
        if self.inner.departing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Our neighbour count can lag behind gossip's own view, so say
        // goodbye whenever anyone might be listening: any known peer.
        let anyone_listening =
            self.neighbors() > 0 || !self.inner.catalog.lock().expect("catalog").is_empty(now_ms());
        let sender = self.gossip_sender();
        // Stop every sync first: a snapshot carrying our entry that lands
        // after the goodbye would bring us back in a mosaik catalog, which
        // keeps no memory of departures. The gossip topic stays joined
        // through `sender`.
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.tasks.wait()).await;
        debug!(
            peer = %self.endpoint().id().fmt_short(),
            neighbors = self.neighbors(),
            joined = sender.is_some(),
            anyone_listening,
            "saying goodbye"
        );
        let (Some(sender), true) = (sender, anyone_listening) else {
            return;
        };
        // Plumtree sends lazily to some neighbours (an IHave, then a graft
        // ~80 ms later), so our last entry can reach a peer after a goodbye
        // sent right behind it, and bring us back there. Let it land first.
        let last_announce = *self.inner.last_announce.lock().expect("last announce");
        if let Some(at) = last_announce {
            tokio::time::sleep_until(at + LAZY_PUSH_SETTLE).await;
        }
        let departure = GracefulDeparture::new(
            self.inner.local.key(),
            self.inner.local.newest_handed_out(),
            chrono::Utc::now(),
        );
        match Announcement::GracefulDeparture(departure).encode() {
            Ok(bytes) => match sender.broadcast(bytes).await {
                Ok(()) => tokio::time::sleep(self.inner.config.graceful_departure_window).await,
                Err(e) => debug!(error = %e, "departure not broadcast"),
            },
            Err(e) => warn!(error = %e, "could not encode our departure"),
        }
    }

    /// Whether this node has started saying goodbye.
    pub fn is_departing(&self) -> bool {
        self.inner.departing.load(Ordering::Acquire)
    }
}

impl SyncCatalog for Discovery {
    fn dialer(&self) -> &Dialer {
        &self.inner.dialer
    }

    fn sync_timeout(&self) -> Duration {
        self.inner.config.sync_timeout
    }

    fn snapshot(&self) -> Bytes {
        Discovery::snapshot(self)
    }

    fn max_snapshot_entries(&self) -> usize {
        self.inner.config.max_snapshot_entries
    }

    fn merge_snapshot(&self, snapshot: Snapshot, from: EndpointId, we_initiated: bool) -> Merged {
        let learned = if we_initiated {
            Learned::FromAnswering
        } else {
            Learned::FromOthers
        };
        Discovery::merge_snapshot(self, snapshot, from, learned)
    }

    fn reject(&self, reason: Rejection, from: Option<EndpointId>, detail: &dyn std::fmt::Display) {
        Discovery::reject(self, reason, from, detail)
    }

    fn is_departing(&self) -> bool {
        Discovery::is_departing(self)
    }
}
