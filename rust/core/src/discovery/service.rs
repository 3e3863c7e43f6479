//! `Discovery`: the catalog, its rules, and everything that feeds it.
//!
//! Entries arrive from three paths (gossip, catalog sync, and in future
//! direct feeds); all of them go through [`Discovery::ingest`], which
//! applies the catalog's rules, remembers the peer's address so iroh can
//! dial it by id, emits events, and starts a catalog sync with peers seen
//! for the first time. Rejections are counted by reason and logged.
//! `Discovery` owns the node's gossip instance; the [`worker`](super::worker)
//! runs it, and `protocol.rs` serves the protocols.

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
use tokio::sync::{Semaphore, broadcast, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, info, warn};

use super::{
    announce::{ANNOUNCE_ALPN, Announcement, GracefulDeparture},
    catalog::{Catalog, Source, Upsert},
    config::DiscoveryConfig,
    entry::{PeerEntry, SignedPeerEntry, Ticket, now_ms},
    event::Event,
    local::LocalPeer,
    rejection::Rejection,
    sync::{self, SyncCatalog},
};
use crate::{network::Dialer, primitives::Digest};

/// How long a broadcast may take to reach lazy Plumtree neighbours
/// (dispatch 5 ms + graft timeout 80 ms, with room for a busy peer).
const LAZY_PUSH_SETTLE: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    dialer: Dialer,
    local: Arc<LocalPeer>,
    lookup: MemoryLookup,
    config: DiscoveryConfig,
    catalog: Mutex<Catalog>,
    events: broadcast::Sender<Event>,
    peer_count: watch::Sender<usize>,
    rejections: Mutex<BTreeMap<Rejection, u64>>,
    /// Peers we have synced with (or are syncing with) since they last left.
    seen: Mutex<HashSet<EndpointId>>,
    sync_permits: Semaphore,
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
        );
        let (events, _) = broadcast::channel(config.events_backlog);
        let (peer_count, _) = watch::channel(0);
        let gossip_net = Gossip::builder()
            .alpn(ANNOUNCE_ALPN)
            .max_message_size(config.max_gossip_message)
            .spawn(endpoint.clone());
        Self {
            inner: Arc::new(Inner {
                sync_permits: Semaphore::new(config.max_concurrent_syncs),
                gossip_net,
                dialer,
                local,
                lookup,
                config,
                catalog: Mutex::new(catalog),
                events,
                peer_count,
                rejections: Mutex::new(BTreeMap::new()),
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
        self.inner
            .rejections
            .lock()
            .expect("rejections")
            .iter()
            .map(|(reason, count)| (reason.name(), *count))
            .collect()
    }

    pub fn neighbors(&self) -> usize {
        self.inner.neighbors.load(Ordering::Relaxed)
    }

    // ---- intake ---------------------------------------------------------------------

    fn count_rejection(&self, reason: Rejection) {
        *self
            .inner
            .rejections
            .lock()
            .expect("rejections")
            .entry(reason)
            .or_default() += 1;
    }

    pub(crate) fn reject(&self, reason: Rejection, from: Option<EndpointId>, detail: &dyn std::fmt::Display) {
        self.count_rejection(reason);
        match from {
            Some(peer) => {
                warn!(peer = %peer.fmt_short(), %reason, "discovery rejected input: {detail}")
            }
            None => warn!(%reason, "discovery rejected input: {detail}"),
        }
    }

    /// Applies the catalog's rules to `entry` and, if it is taken, makes it
    /// known everywhere it matters.
    pub fn ingest(&self, entry: SignedPeerEntry, source: Source, from: Option<EndpointId>) -> Upsert {
        let now = now_ms();
        if source == Source::Gossip {
            let drift = self.inner.config.max_time_drift.as_millis() as i64;
            let updated = entry.entry().version.updated_at_ms();
            if updated < now - drift {
                // Not hostile: a slow network relays old copies of honest
                // entries. Counted, and only logged at debug level.
                self.count_rejection(Rejection::Stale);
                debug!(
                    peer = ?from.map(|p| p.fmt_short().to_string()),
                    "gossiped entry older than the drift bound ignored"
                );
                return Upsert::Rejected(Rejection::Stale);
            }
        }
        let outcome = self
            .inner
            .catalog
            .lock()
            .expect("catalog")
            .upsert(entry.clone(), now);
        match outcome {
            Upsert::New | Upsert::Updated => {
                self.inner
                    .lookup
                    .add_endpoint_info(EndpointInfo::from(entry.entry().address.clone()));
                self.publish_count();
                let event = if outcome == Upsert::New {
                    debug!(peer = %entry.entry().id().fmt_short(), ?source, "peer discovered");
                    self.observe(&entry.entry().address);
                    Event::Discovered(entry)
                } else {
                    Event::Updated(entry)
                };
                let _ = self.inner.events.send(event);
            }
            Upsert::Rejected(Rejection::NotNewer | Rejection::OwnEntry) => {}
            Upsert::Rejected(rejection) => {
                let id = entry.entry().id();
                self.reject(rejection, from, &format_args!("entry of {}", id.fmt_short()));
            }
        }
        outcome
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

    fn forget(&self, entry: SignedPeerEntry) {
        self.inner.seen.lock().expect("seen").remove(&entry.entry().id());
        self.publish_count();
        let _ = self.inner.events.send(Event::Departed(entry));
    }

    fn publish_count(&self) {
        let count = self.inner.catalog.lock().expect("catalog").len(now_ms());
        self.inner.peer_count.send_replace(count);
    }

    /// First sight of a peer: sync catalogs with it, and reach it by gossip
    /// if we have no gossip neighbours yet.
    fn observe(&self, addr: &EndpointAddr) {
        if !self.inner.seen.lock().expect("seen").insert(addr.id) {
            return;
        }
        if self.neighbors() == 0
            && let Some(sender) = self.gossip_sender()
        {
            let id = addr.id;
            self.spawn(async move {
                let _ = sender.join_peers(vec![id]).await;
            });
        }
        let this = self.clone();
        let addr = addr.clone();
        self.spawn(async move {
            let Ok(_permit) = this.inner.sync_permits.acquire().await else {
                return;
            };
            if let Err(e) = sync::initiate(&this, addr.clone()).await {
                debug!(peer = %addr.id.fmt_short(), error = %e, "catalog sync failed");
                // Let a later sighting try again.
                this.inner.seen.lock().expect("seen").remove(&addr.id);
            }
        });
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

    /// All current signed entries, ours included, as a sync snapshot frame.
    pub(crate) fn snapshot(&self) -> Bytes {
        let now = now_ms();
        // A freshly signed own entry: the peer may have let our last one go
        // stale (that is what a 401 from a producer means), and mosaik keeps
        // only entries younger than its `purge_after`.
        let own = self.inner.local.refreshed(self.endpoint().addr());
        let catalog = self.inner.catalog.lock().expect("catalog");
        let mut entries: Vec<&SignedPeerEntry> = catalog.peers(now).collect();
        entries.push(&own);
        entries.sort_by_key(|e| e.entry().id());
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
            self.inner.local.version(),
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

    fn merge_synced(&self, entry: SignedPeerEntry, from: EndpointId) -> bool {
        matches!(
            self.ingest(entry, Source::Sync, Some(from)),
            Upsert::New | Upsert::Updated
        )
    }

    fn reject(&self, reason: Rejection, from: Option<EndpointId>, detail: &dyn std::fmt::Display) {
        Discovery::reject(self, reason, from, detail)
    }

    fn is_departing(&self) -> bool {
        Discovery::is_departing(self)
    }
}
