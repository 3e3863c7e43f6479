//! Producer: one sink per stream id, a fan-out worker, a sender per consumer.
//!
//! `send` waits until the producer is online (at least one consumer has
//! received `StartStream`) and for room in the bounded `buffer_size`
//! channel. The fan-out worker hands each datum's bytes, encoded once, to
//! every consumer's own bounded queue; when one is full the `Lagging` policy
//! decides: disconnect it with 10413 (mosaik's default), drop the datum for
//! it, or block until it has room. A new subscription is checked as mosaik
//! does: capacity (10509), then `require` on the consumer's entry (10403).
//! Each sender writes every frame it has queued and flushes once. Closing
//! the producer ends every subscription with 204 `GracefulShutdown`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{
    handshake::StartStream,
    require::Require,
    status::{Channel, Channels, Stats},
};
use crate::{
    discovery::SignedPeerEntry,
    network::{CloseReason, Link, protocol::Streams as StreamsProtocol},
    primitives::Digest,
};

/// Frames a sender writes before it flushes.
const MAX_COALESCED: usize = 256;
/// Bound on delivering what was accepted before a graceful close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a closing link waits for the peer to see the close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// What to do with a consumer whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lagging {
    /// Close its subscription with 10413 `TooSlow` (mosaik's default).
    Disconnect,
    /// Drop this datum for that consumer only.
    Drop,
    /// Wait until it has room: `send` slows to the slowest consumer.
    Block,
}

#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub stream_id: Digest,
    pub buffer_size: usize,
    pub lagging: Lagging,
    pub max_consumers: usize,
    /// Which consumers may subscribe (all when `None`).
    pub require: Option<Require>,
}

impl ProducerConfig {
    pub fn new(stream_id: Digest) -> Self {
        Self {
            stream_id,
            buffer_size: 1024,
            lagging: Lagging::Disconnect,
            max_consumers: usize::MAX,
            require: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the producer has no subscribers")]
    Offline(Bytes),
    #[error("the producer's buffer is full")]
    Full(Bytes),
    #[error("the producer is closed")]
    Closed(Bytes),
}

pub(crate) struct Shared {
    pub(crate) config: ProducerConfig,
    pub(crate) network: Digest,
    channels: Channels,
    stats: Stats,
    pub(crate) cancel: CancellationToken,
}

/// A subscription handed over by the acceptor, with the consumer's entry.
pub(crate) type Subscribe = (Link<StreamsProtocol>, SignedPeerEntry);

#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
    datums: mpsc::Sender<Bytes>,
}

impl Producer {
    /// Starts the fan-out worker; returns the handle and the acceptor's inlet.
    pub(crate) fn spawn(config: ProducerConfig, network: Digest) -> (Self, mpsc::Sender<Subscribe>) {
        let (datums_tx, datums_rx) = mpsc::channel(config.buffer_size.max(1));
        let (subscribe_tx, subscribe_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            config,
            network,
            channels: Channels::default(),
            stats: Stats::default(),
            cancel: CancellationToken::new(),
        });
        tokio::spawn(fan_out(shared.clone(), datums_rx, subscribe_rx));
        (
            Self {
                shared,
                datums: datums_tx,
            },
            subscribe_tx,
        )
    }

    pub fn stream_id(&self) -> Digest {
        self.shared.config.stream_id
    }

    /// Consumers that have received `StartStream` and not left.
    pub fn consumers(&self) -> usize {
        self.shared.channels.connected()
    }

    /// Every live subscription, connecting or connected.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.shared.channels.list()
    }

    pub fn is_online(&self) -> bool {
        self.consumers() >= 1
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Resolves once at least `minimum` consumers are connected.
    pub async fn subscribed(&self, minimum: usize) {
        self.shared.channels.at_least(minimum).await;
    }

    /// Sends a datum, waiting while offline or full.
    pub async fn send(&self, datum: Bytes) -> Result<(), SendError> {
        tokio::select! {
            _ = self.shared.cancel.cancelled() => return Err(SendError::Closed(datum)),
            _ = self.subscribed(1) => {}
        }
        self.datums.send(datum).await.map_err(|e| SendError::Closed(e.0))
    }

    /// Sends without waiting: `Offline`, `Full` or `Closed` hand the datum back.
    pub fn try_send(&self, datum: Bytes) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed(datum));
        }
        if !self.is_online() {
            return Err(SendError::Offline(datum));
        }
        self.datums.try_send(datum).map_err(|e| match e {
            TrySendError::Full(d) => SendError::Full(d),
            TrySendError::Closed(d) => SendError::Closed(d),
        })
    }

    /// Ends every subscription with 204 `GracefulShutdown`.
    pub fn close(&self) {
        self.shared.cancel.cancel();
    }
}

struct Subscription {
    queue: mpsc::Sender<Bytes>,
    stop: Option<oneshot::Sender<CloseReason>>,
}

impl Subscription {
    fn stop(&mut self, reason: CloseReason) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(reason);
        }
    }
}

async fn fan_out(
    shared: Arc<Shared>,
    mut datums: mpsc::Receiver<Bytes>,
    mut subscribe: mpsc::Receiver<Subscribe>,
) {
    let mut subscriptions: Vec<Subscription> = Vec::new();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some((link, consumer)) = subscribe.recv() => {
                subscriptions.retain(|s| !s.queue.is_closed());
                if subscriptions.len() >= shared.config.max_consumers {
                    link.close(CloseReason::NoCapacity, CLOSE_GRACE).await;
                    continue;
                }
                let (queue, queued) = mpsc::channel(shared.config.buffer_size.max(1));
                let (stop, stopped) = oneshot::channel();
                tokio::spawn(run_sender(shared.clone(), link, consumer, queued, stopped));
                subscriptions.push(Subscription { queue, stop: Some(stop) });
            }
            Some(datum) = datums.recv() => {
                deliver(&shared, &mut subscriptions, datum, &shared.cancel).await;
            }
        }
    }
    // Closing is graceful: what `send` accepted still goes out, within a bound.
    datums.close();
    let never = CancellationToken::new();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(datum) = datums.recv().await {
            deliver(&shared, &mut subscriptions, datum, &never).await;
        }
    })
    .await;
    for subscription in &mut subscriptions {
        subscription.stop(CloseReason::GracefulShutdown);
    }
}

/// Hands one datum to every subscription, applying the lagging policy to
/// full ones; `Block` waits until `stop_waiting` is cancelled at most.
async fn deliver(
    shared: &Shared,
    subscriptions: &mut Vec<Subscription>,
    datum: Bytes,
    stop_waiting: &CancellationToken,
) {
    shared.stats.record(datum.len());
    subscriptions.retain(|s| !s.queue.is_closed());
    for subscription in subscriptions.iter_mut() {
        match subscription.queue.try_send(datum.clone()) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(datum)) => match shared.config.lagging {
                Lagging::Disconnect => subscription.stop(CloseReason::TooSlow),
                Lagging::Drop => {}
                Lagging::Block => {
                    tokio::select! {
                        _ = stop_waiting.cancelled() => {}
                        _ = subscription.queue.send(datum) => {}
                    }
                }
            },
        }
    }
}

async fn run_sender(
    shared: Arc<Shared>,
    mut link: Link<StreamsProtocol>,
    consumer: SignedPeerEntry,
    mut queued: mpsc::Receiver<Bytes>,
    mut stop: oneshot::Receiver<CloseReason>,
) {
    let peer = consumer.entry().id();
    let guard = shared
        .channels
        .open(peer, shared.config.stream_id, shared.cancel.child_token());
    if let Some(require) = &shared.config.require {
        let allowed = tokio::select! {
            _ = &mut stop => false,
            allowed = require.check(consumer) => allowed,
        };
        if !allowed {
            debug!(peer = %peer.fmt_short(), "consumer refused by require (10403)");
            link.close(CloseReason::NotAllowed, CLOSE_GRACE).await;
            return;
        }
    }
    let start = StartStream(shared.network, shared.config.stream_id);
    if let Err(e) = link.send(&start).await {
        debug!(peer = %peer.fmt_short(), error = %e, "could not start the stream");
        return;
    }
    guard.connected();
    let channel = guard.channel().clone();
    let connection = link.connection().clone();
    let reason = loop {
        let first = tokio::select! {
            biased;
            reason = &mut stop => break Some(reason.unwrap_or(CloseReason::Cancelled)),
            _ = connection.closed() => break None,
            first = queued.recv() => first,
        };
        let Some(first) = first else {
            break Some(CloseReason::GracefulShutdown);
        };
        // A consumer that stopped reading blocks this write on QUIC flow
        // control; the stop (10413, 204) must still get through.
        tokio::select! {
            biased;
            reason = &mut stop => break Some(reason.unwrap_or(CloseReason::Cancelled)),
            _ = connection.closed() => break None,
            written = write_batch(&mut link, &channel, first, &mut queued) => if written.is_err() { break None },
        }
    };
    drop(guard);
    match reason {
        Some(CloseReason::GracefulShutdown) => {
            // Frames already queued for this consumer still go out, within a
            // bound; then the stream ends and 204 follows once they arrived.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while let Ok(first) = queued.try_recv() {
                    write_batch(&mut link, &channel, first, &mut queued).await?;
                }
                Ok::<_, crate::network::LinkError>(())
            })
            .await;
            debug!(peer = %peer.fmt_short(), "ending subscription gracefully (204)");
            link.finish_and_close(CloseReason::GracefulShutdown, CLOSE_GRACE)
                .await;
        }
        Some(reason) => {
            debug!(peer = %peer.fmt_short(), %reason, "ending subscription");
            link.close(reason, CLOSE_GRACE).await;
        }
        None => {}
    }
}

/// Writes `first` and everything already queued behind it, then flushes once.
async fn write_batch(
    link: &mut Link<StreamsProtocol>,
    channel: &Channel,
    first: Bytes,
    queued: &mut mpsc::Receiver<Bytes>,
) -> Result<(), crate::network::LinkError> {
    channel.stats().record(first.len());
    link.feed_raw(first).await?;
    for _ in 1..MAX_COALESCED {
        match queued.try_recv() {
            Ok(next) => {
                channel.stats().record(next.len());
                link.feed_raw(next).await?
            }
            Err(_) => break,
        }
    }
    link.flush().await
}
