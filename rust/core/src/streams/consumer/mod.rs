//! Consumer: a worker that follows the catalog, and a receiver per producer.
//!
//! [`Consumer`] is the handle users read from. Behind it, one worker
//! (`worker.rs`) follows the discovery catalog and keeps one receiver
//! (`receiver.rs`) per producer whose signed entry lists the stream and
//! passes `require`, whatever language it is written in. Every receiver
//! pushes what it reads into the consumer's one bounded [`DeliveryQueue`]
//! (`queue.rs`), keeping the runs the link cut; the reader takes them from
//! there in batches, awaiting them in tokio or polling a ready descriptor
//! (`ready.rs`) from another event loop. Closing the consumer leaves every
//! producer (102); what is queued stays readable.

pub mod queue;
mod receiver;
mod verdicts;
mod worker;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::warn;

pub use self::queue::{Arrival, Delivery, Overflow, TryRecvError};
use self::{queue::DeliveryQueue, worker::follow_producers};
use super::{
    backoff::BackoffConfig,
    error::StreamsConfigError,
    require::Require,
    status::{Channel, Channels, Stats},
};
use crate::{discovery::Discovery, primitives::Digest, tickets::Validators};

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub stream_id: Digest,
    pub queue_size: usize,
    /// Payload bytes the queue holds for its reader before `overflow`
    /// applies (one datum larger than this still passes, alone).
    pub queue_bytes: usize,
    pub overflow: Overflow,
    pub backoff: BackoffConfig,
    /// Which producers to subscribe to (all when `None`).
    pub require: Option<Require>,
    /// Ticket validators every producer must pass, checked again whenever
    /// its entry changes and when its tickets expire (none: no check).
    pub tickets: Validators,
}

impl ConsumerConfig {
    /// Datums a consumer holds for its reader before `overflow` applies.
    pub const DEFAULT_QUEUE_SIZE: usize = 1024;
    /// Payload bytes a consumer holds for its reader before `overflow` applies.
    pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024 * 1024;

    pub fn new(stream_id: Digest) -> Self {
        Self {
            stream_id,
            queue_size: Self::DEFAULT_QUEUE_SIZE,
            queue_bytes: Self::DEFAULT_QUEUE_BYTES,
            overflow: Overflow::Block,
            backoff: BackoffConfig::default(),
            require: None,
            tickets: Validators::from([]),
        }
    }

    /// Refuses settings a consumer cannot run with.
    pub fn validate(&self) -> Result<(), StreamsConfigError> {
        for (field, value) in [("queue_size", self.queue_size), ("queue_bytes", self.queue_bytes)] {
            if value == 0 {
                return Err(StreamsConfigError::Zero { field });
            }
        }
        self.backoff.validate()
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
        let queue = DeliveryQueue::new(config.queue_size, config.queue_bytes, config.overflow);
        // Closing the node closes the consumer too (`is_closed` says so).
        let cancel = discovery.cancel_token().child_token();
        let shared = Arc::new(Shared {
            config,
            discovery,
            channels: Channels::default(),
            stats: Stats::default(),
            queue,
            cancel,
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

    /// Whether at least one producer is connected (mosaik's default
    /// `online_when` for consumers).
    pub fn is_online(&self) -> bool {
        self.producers() >= 1
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

    /// Resolves once at most `maximum` producers are connected (0: offline).
    pub async fn unsubscribed(&self, maximum: usize) {
        self.shared.channels.at_most(maximum).await;
    }

    /// Resolves when a producer connects after this call: a new
    /// subscription or a reconnect.
    pub fn next_subscription(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.shared.channels.next_connection()
    }

    /// The catalog's entry for `peer`, if it has one.
    pub fn peer_entry(&self, peer: &iroh::EndpointId) -> Option<crate::discovery::SignedPeerEntry> {
        self.shared.discovery.get(peer)
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

    /// Up to `max` datums if any are ready; `Empty`, or `Closed` once
    /// closed and drained.
    pub fn try_recv_batch(&self, max: usize) -> Result<Vec<Arrival>, TryRecvError> {
        self.shared.queue.try_pop_many(max)
    }

    /// A descriptor an outside event loop polls instead of awaiting
    /// `recv_batch`: readable after `arm_ready` once a datum arrives or the
    /// consumer closes (see `consumer/ready.rs`).
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
