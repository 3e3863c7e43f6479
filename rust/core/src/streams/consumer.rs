//! Consumer: a worker that follows the catalog, and a receiver per producer.
//!
//! The worker starts one receiver for every peer whose signed entry lists
//! the stream and passes `require`, whatever language it is written in, and
//! cancels receivers whose producer left, went stale, stopped passing or
//! restarted (a new receiver then dials the new run at once). A receiver
//! that ended for good is tried again only once its producer's
//! entry changes (a restart, a re-announce), so a gone stream is not dialled
//! in a loop. A receiver connects, sends the handshake, checks `StartStream`
//! (101 / 10404), then pushes the frames into the consumer's
//! [`DeliveryQueue`] as the runs the link cut them into, everything that
//! has arrived at once. How it reacts to a closed link follows mosaik: 401 →
//! catalog sync, then retry; 10403, 204, 10404, 101, a datum the reader
//! cannot decode and local cancellation end it; anything else retries under
//! the backoff.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::FutureExt;

use iroh::{EndpointAddr, EndpointId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{
    HANDSHAKE_FRAME_LIMIT,
    backoff::{Backoff, BackoffConfig},
    handshake::{ConsumerHandshake, Criteria, StartStream},
    queue::{Arrival, Delivery, DeliveryQueue, Overflow},
    require::Require,
    status::{Channel, ChannelGuard, Channels, Stats},
};
use crate::{
    discovery::{Discovery, PeerEntryVersion, SignedPeerEntry},
    network::{CloseReason, Link, LinkError, protocol::Streams as StreamsProtocol},
    primitives::Digest,
};

/// Bound on the producer's answer to our handshake (mosaik has none).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames a receiver queues at once when more have already arrived.
const MAX_BATCH: usize = 256;
/// How often the worker re-checks the catalog besides discovery events.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub stream_id: Digest,
    pub queue_size: usize,
    pub overflow: Overflow,
    pub backoff: BackoffConfig,
    /// Which producers to subscribe to (all when `None`).
    pub require: Option<Require>,
}

impl ConsumerConfig {
    pub fn new(stream_id: Digest) -> Self {
        Self {
            stream_id,
            queue_size: 1024,
            overflow: Overflow::Block,
            backoff: BackoffConfig::default(),
            require: None,
        }
    }
}

struct Shared {
    config: ConsumerConfig,
    discovery: Discovery,
    channels: Channels,
    stats: Stats,
    queue: DeliveryQueue,
    cancel: CancellationToken,
}

pub struct Consumer {
    shared: Arc<Shared>,
}

impl Consumer {
    pub(crate) fn spawn(config: ConsumerConfig, discovery: Discovery) -> Self {
        let queue = DeliveryQueue::new(config.queue_size, config.overflow);
        let shared = Arc::new(Shared {
            config,
            discovery,
            channels: Channels::default(),
            stats: Stats::default(),
            queue,
            cancel: CancellationToken::new(),
        });
        tokio::spawn(follow_producers(shared.clone()));
        Self { shared }
    }

    pub fn stream_id(&self) -> Digest {
        self.shared.config.stream_id
    }

    /// Producers currently connected.
    pub fn producers(&self) -> usize {
        self.shared.channels.connected()
    }

    /// Every live channel (one per producer being followed).
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.shared.channels.list()
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Datums the overflow policy dropped.
    pub fn dropped(&self) -> u64 {
        self.shared.queue.dropped()
    }

    /// Resolves once at least `minimum` producers are connected.
    pub async fn subscribed(&self, minimum: usize) {
        self.shared.channels.at_least(minimum).await;
    }

    /// The next datum, or `None` once closed and drained.
    pub async fn recv(&self) -> Option<Delivery> {
        let arrivals = self.shared.queue.pop_many(1).await;
        arrivals.first().and_then(|a| a.deliveries().next())
    }

    /// Up to `max` datums, waiting for the first; empty once closed and
    /// drained. They come as they arrived, in runs (`Arrival::deliveries`
    /// splits one).
    pub async fn recv_batch(&self, max: usize) -> Vec<Arrival> {
        self.shared.queue.pop_many(max).await
    }

    /// Up to `max` datums if any are ready; `Err(true)` once closed and
    /// drained, `Err(false)` when merely empty.
    pub fn try_recv_batch(&self, max: usize) -> Result<Vec<Arrival>, bool> {
        self.shared.queue.try_pop_many(max)
    }

    /// A descriptor an outside event loop polls instead of awaiting
    /// `recv_batch`: readable after `arm_ready` once a datum arrives or the
    /// consumer closes (see `streams/ready.rs`).
    pub fn ready_fd(&self) -> std::io::Result<std::os::fd::RawFd> {
        self.shared.queue.ready_fd()
    }

    /// Arms the ready descriptor; true if there is no need to wait.
    pub fn arm_ready(&self) -> bool {
        self.shared.queue.arm_ready()
    }

    /// Resets the ready descriptor after a wake.
    pub fn clear_ready(&self) {
        self.shared.queue.clear_ready()
    }

    /// Ends the subscription behind `channel` (400 to its producer) because
    /// the reader could not use its datum; returns whether it was live.
    pub fn reject(&self, channel: u64, reason: &str) -> bool {
        let Some(channel) = self.shared.channels.get(channel) else {
            return false;
        };
        warn!(
            producer = %channel.peer().fmt_short(),
            stream = %self.shared.config.stream_id,
            reason,
            "leaving a producer whose datum could not be decoded"
        );
        channel.cancel_token().cancel();
        true
    }

    /// Leaves every producer (102); queued datums stay readable.
    pub fn close(&self) {
        self.shared.cancel.cancel();
        self.shared.queue.close();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.close();
    }
}

struct Following {
    version: PeerEntryVersion,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Keeps one receiver per eligible producer.
async fn follow_producers(shared: Arc<Shared>) {
    let mut events = shared.discovery.subscribe();
    let stop = shared.discovery.cancel_token().clone();
    let mut following: HashMap<EndpointId, Following> = HashMap::new();
    // Producers whose receiver ended for good, with their entry's version then.
    let mut ended: HashMap<EndpointId, PeerEntryVersion> = HashMap::new();
    let mut verdicts: HashMap<EndpointId, (PeerEntryVersion, bool)> = HashMap::new();
    loop {
        let eligible = eligible_producers(&shared, &mut verdicts).await;
        following.retain(|id, f| {
            if f.task.is_finished() {
                // The entry as it is now: only a change after the end earns a retry.
                let version = eligible.get(id).map_or(f.version, |e| e.entry().version);
                ended.insert(*id, version);
                return false;
            }
            // A producer that restarted (a new `started_at`) is dialled
            // afresh: the old link may be dead without either side knowing
            // until QUIC's idle timeout.
            let keep = eligible
                .get(id)
                .is_some_and(|e| e.entry().version.started_at_ms() == f.version.started_at_ms());
            if !keep {
                f.cancel.cancel();
            }
            keep
        });
        ended.retain(|id, _| eligible.contains_key(id));
        for (id, entry) in eligible {
            let version = entry.entry().version;
            if following.contains_key(&id) || ended.get(&id) == Some(&version) {
                continue;
            }
            let cancel = shared.cancel.child_token();
            let addr = entry.entry().address.clone();
            let task = tokio::spawn(receive(shared.clone(), addr, cancel.clone()));
            following.insert(
                id,
                Following {
                    version,
                    cancel,
                    task,
                },
            );
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = stop.cancelled() => break,
            _ = events.recv() => {}
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
    for f in following.values() {
        f.cancel.cancel();
    }
    shared.queue.close();
}

/// Peers that list the stream and pass `require`, which is asked again only
/// about entries it has not seen.
async fn eligible_producers(
    shared: &Shared,
    verdicts: &mut HashMap<EndpointId, (PeerEntryVersion, bool)>,
) -> HashMap<EndpointId, SignedPeerEntry> {
    let mut producers: HashMap<EndpointId, SignedPeerEntry> = shared
        .discovery
        .peers()
        .into_iter()
        .filter(|e| e.entry().streams.contains(&shared.config.stream_id))
        .map(|e| (e.entry().id(), e))
        .collect();
    let Some(require) = &shared.config.require else {
        return producers;
    };
    verdicts.retain(|id, _| producers.contains_key(id));
    let unseen: Vec<SignedPeerEntry> = producers
        .values()
        .filter(|e| verdicts.get(&e.entry().id()).map(|(v, _)| *v) != Some(e.entry().version))
        .cloned()
        .collect();
    if !unseen.is_empty() {
        let answers = require.check_all(unseen.clone()).await;
        for (entry, accepted) in unseen.iter().zip(answers) {
            verdicts.insert(entry.entry().id(), (entry.entry().version, accepted));
        }
    }
    producers.retain(|id, _| verdicts.get(id).is_some_and(|(_, accepted)| *accepted));
    producers
}

/// How a session with one producer ended.
enum Ending {
    /// Stop for good.
    Terminal,
    /// The producer does not know us yet: sync catalogs, then retry.
    UnknownPeer,
    Retry,
}

fn classify(error: &LinkError) -> Ending {
    debug!(%error, "subscription link ended");
    match error.remote_code().and_then(CloseReason::from_code) {
        Some(CloseReason::UnknownPeer) => Ending::UnknownPeer,
        Some(
            CloseReason::NotAllowed
            | CloseReason::GracefulShutdown
            | CloseReason::StreamNotFound
            | CloseReason::DifferentNetwork,
        ) => Ending::Terminal,
        _ if matches!(error, LinkError::Decode(_) | LinkError::ClosedLocally(_)) => Ending::Terminal,
        _ => Ending::Retry,
    }
}

/// Follows one producer until it ends for good or is cancelled.
async fn receive(shared: Arc<Shared>, addr: EndpointAddr, cancel: CancellationToken) {
    let peer = addr.id;
    // The channel's own token is a child: cancelling it alone means the
    // reader rejected a datum; cancelling `cancel` means we left.
    let guard = shared
        .channels
        .open(peer, shared.config.stream_id, cancel.child_token());
    let stop = guard.channel().cancel_token().clone();
    let mut backoff = Backoff::new(shared.config.backoff.clone());
    let mut first = true;
    loop {
        if !first {
            let Some(delay) = backoff.next_delay() else {
                debug!(peer = %peer.fmt_short(), "backoff exhausted; giving up on this producer");
                return;
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        first = false;
        let addr = shared
            .discovery
            .get(&peer)
            .map(|e| e.entry().address.clone())
            .unwrap_or(addr.clone());
        let ending = session(&shared, addr.clone(), &guard, &mut backoff, &cancel).await;
        guard.connecting();
        match ending {
            Ending::Terminal => return,
            Ending::Retry => {}
            Ending::UnknownPeer => {
                let synced = tokio::select! {
                    _ = stop.cancelled() => return,
                    synced = shared.discovery.sync_with(addr) => synced,
                };
                if let Err(e) = synced {
                    debug!(peer = %peer.fmt_short(), error = %e, "sync after 401 failed");
                    return;
                }
            }
        }
    }
}

async fn session(
    shared: &Shared,
    addr: EndpointAddr,
    guard: &ChannelGuard<'_>,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Ending {
    let channel = guard.channel();
    let stop = channel.cancel_token();
    let started = tokio::select! {
        _ = stop.cancelled() => return Ending::Terminal,
        started = start_session(shared, addr) => started,
    };
    let mut link = match started {
        Ok(link) => link,
        Err(ending) => return ending,
    };
    guard.connected();
    let mut batch = VecDeque::new();
    let ending = loop {
        let run = tokio::select! {
            biased;
            _ = stop.cancelled() => break Ending::Terminal,
            run = link.recv_run(MAX_BATCH) => match run {
                Ok(run) => run,
                Err(e) => break classify(&e),
            },
        };
        // Take everything that has already arrived with it, and queue it
        // under one lock: one reader wake per batch, not per datum.
        let mut ended = None;
        let (mut datums, mut bytes) = (run.frames, run.payload_bytes);
        batch.push_back(Arrival {
            channel: channel.key(),
            run,
        });
        while datums < MAX_BATCH {
            match link.recv_run(MAX_BATCH - datums).now_or_never() {
                Some(Ok(run)) => {
                    datums += run.frames;
                    bytes += run.payload_bytes;
                    batch.push_back(Arrival {
                        channel: channel.key(),
                        run,
                    });
                }
                Some(Err(e)) => {
                    ended = Some(classify(&e));
                    break;
                }
                None => break,
            }
        }
        shared.stats.record_many(datums, bytes);
        channel.stats().record_many(datums, bytes);
        backoff.reset();
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Ending::Terminal,
            pushed = shared.queue.push_many(&mut batch) => if pushed.is_err() { break Ending::Terminal },
        }
        if let Some(ending) = ended {
            break ending;
        }
    };
    if stop.is_cancelled() {
        // Our own leaving is 102; a datum the reader refused is the producer's fault.
        let reason = if cancel.is_cancelled() {
            CloseReason::Cancelled
        } else {
            CloseReason::ProtocolViolation
        };
        link.close(reason, Duration::from_millis(200)).await;
    }
    ending
}

/// Connects, sends the handshake and checks the producer's `StartStream`.
async fn start_session(shared: &Shared, addr: EndpointAddr) -> Result<Link<StreamsProtocol>, Ending> {
    let stream = shared.config.stream_id;
    let network = shared.discovery.network();
    let mut link = Link::<StreamsProtocol>::open(shared.discovery.endpoint(), addr)
        .await
        .map_err(|e| classify(&e))?;
    let handshake = ConsumerHandshake {
        network_id: network,
        stream_id: stream,
        criteria: Criteria {},
    };
    link.send(&handshake).await.map_err(|e| classify(&e))?;
    // StartStream is 64 bytes; datum frames may be as large as the protocol allows.
    link.limit_frames(HANDSHAKE_FRAME_LIMIT);
    let start: StartStream = match tokio::time::timeout(START_TIMEOUT, link.recv()).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => return Err(classify(&e)),
        Err(_) => return Err(Ending::Retry),
    };
    if start.0 != network {
        link.close_now(CloseReason::DifferentNetwork);
        return Err(Ending::Terminal);
    }
    if start.1 != stream {
        link.close_now(CloseReason::StreamNotFound);
        return Err(Ending::Terminal);
    }
    link.limit_frames(usize::MAX);
    Ok(link)
}
