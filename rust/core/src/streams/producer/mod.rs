//! Producer: one per stream id, an outbox and a sender per consumer.
//!
//! `send` waits until the producer is online (at least one consumer has
//! received `StartStream`), then puts the datums' bytes, encoded once, into
//! every consumer's bounded [`Outbox`] itself, a batch at a time: there is
//! no fan-out task between the caller and the senders. When an outbox is
//! full the `Lagging` policy decides: disconnect that consumer with 10413
//! (mosaik's default), drop the datum for it, or wait until it has room
//! (`try_send` then says `Full`). Senders never overtake each other: the
//! datums of one `send` are queued before the next `send`'s.
//!
//! The acceptor (`streams/accept.rs`) hands each new subscription to this
//! producer's admission worker (`admission.rs`), which checks capacity,
//! subscriptions per peer (10509), the consumer's tickets and `require`
//! (10403) and starts a sender (`sender.rs`) for what it admits; the
//! sender keeps checking the consumer's tickets while it lasts, and hands
//! QUIC each queued batch as one chunk of wire frames. Closing the producer ends every
//! subscription with 204 `GracefulShutdown`, after what `send` accepted
//! went out.

mod admission;
pub mod outbox;
mod sender;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::{
    admission::{PeerSlots, admit},
    outbox::Outbox,
};
use super::{
    datum::{DatumLayout, DatumTooLarge, MAX_DATUM, frames_builder},
    error::StreamsConfigError,
    protocol::StreamsProtocol,
    refusal::Refusals,
    require::Require,
    status::{Channel, Channels, Stats},
};
use crate::{
    discovery::{Discovery, SignedPeerEntry},
    network::{CloseReason, Link, frames::WireFrames},
    primitives::Digest,
    tickets::Validators,
};

/// How long a closing link waits for the peer to see the close.
/// How long a subscription the producer ends waits for its consumer to read
/// the close: longer than `network::CLOSE_GRACE`, since the consumer may be
/// held up by QUIC flow control behind the frames queued before the close.
const SUBSCRIPTION_CLOSE_GRACE: Duration = Duration::from_millis(500);

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
    /// Subscriptions one peer may hold at once, admitted or being checked
    /// (mosaik sets no limit): more are refused with 10509.
    pub max_subscriptions_per_peer: usize,
    /// Which consumers may subscribe (all when `None`).
    pub require: Option<Require>,
    /// Ticket validators every consumer must pass, at subscribe time and
    /// for as long as its subscription lasts (none: no check).
    pub tickets: Validators,
}

impl ProducerConfig {
    /// Datums queued per consumer before `lagging` applies (mosaik's default).
    pub const DEFAULT_BUFFER_SIZE: usize = 1024;
    /// Subscriptions one peer may hold: room for a few consumers of the
    /// stream in one process and a reconnect while the old link times out.
    pub const DEFAULT_SUBSCRIPTIONS_PER_PEER: usize = 8;

    pub fn new(stream_id: Digest) -> Self {
        Self {
            stream_id,
            buffer_size: Self::DEFAULT_BUFFER_SIZE,
            lagging: Lagging::Disconnect,
            max_consumers: usize::MAX,
            max_subscriptions_per_peer: Self::DEFAULT_SUBSCRIPTIONS_PER_PEER,
            require: None,
            tickets: Validators::from([]),
        }
    }

    /// Refuses settings a producer cannot run with.
    pub fn validate(&self) -> Result<(), StreamsConfigError> {
        for (field, value) in [
            ("buffer_size", self.buffer_size),
            ("max_consumers", self.max_consumers),
            ("max_subscriptions_per_peer", self.max_subscriptions_per_peer),
        ] {
            if value == 0 {
                return Err(StreamsConfigError::Zero { field });
            }
        }
        Ok(())
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
    #[error("a datum of {0} bytes exceeds the stream's frame limit of {MAX_DATUM} bytes")]
    TooLarge(usize),
}

impl From<DatumTooLarge> for SendError {
    fn from(DatumTooLarge(length): DatumTooLarge) -> Self {
        SendError::TooLarge(length)
    }
}

/// The one frame holding `datum` as it is.
fn frame_of(datum: &[u8]) -> Result<WireFrames, SendError> {
    let mut builder = frames_builder();
    DatumLayout::Raw.push(&mut builder, datum)?;
    Ok(builder.finish())
}

pub(crate) struct Shared {
    pub(crate) config: ProducerConfig,
    pub(crate) network: Digest,
    /// The catalog, where the consumers' latest entries (tickets) are.
    pub(crate) discovery: Discovery,
    channels: Channels,
    stats: Stats,
    /// Subscriptions refused or ended for access, by reason.
    pub(crate) refusals: Refusals,
    pub(crate) cancel: CancellationToken,
    outlets: Mutex<Outlets>,
    /// Subscriptions per peer, admitted or being checked.
    peer_slots: Arc<PeerSlots>,
    /// Held while a `send` queues its datums: one send's datums are never
    /// interleaved with another's, even when it has to wait for room.
    order: tokio::sync::Mutex<()>,
}

/// The live subscriptions' outboxes.
struct Outlets {
    list: Vec<Outlet>,
    /// Set (under the lock) when the producer closes: nothing more is queued.
    closed: bool,
}

impl Outlets {
    /// Subscriptions admitted and not ended: what `max_consumers` counts.
    fn live(&mut self) -> usize {
        self.list.retain(|o| !o.outbox.is_closed());
        self.list.len()
    }
}

struct Outlet {
    outbox: Arc<Outbox>,
    stop: Option<oneshot::Sender<CloseReason>>,
}

impl Outlet {
    fn stop(&mut self, reason: CloseReason) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(reason);
        }
    }
}

/// How far a `send` got: datums queued for every consumer (`Sent`), or it
/// must wait for room in the outbox of a consumer with `Lagging::Block`.
enum Queued {
    Sent(usize),
    Wait(usize, Arc<Outbox>),
}

/// A subscription handed over by the acceptor, with the consumer's entry.
pub(crate) type Subscribe = (Link<StreamsProtocol>, SignedPeerEntry);

#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

impl Producer {
    /// Starts the admission worker; returns the handle and the acceptor's inlet.
    pub(crate) fn spawn(config: ProducerConfig, discovery: Discovery) -> (Self, mpsc::Sender<Subscribe>) {
        let (subscribe_tx, subscribe_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            config,
            network: discovery.network(),
            discovery,
            channels: Channels::default(),
            stats: Stats::default(),
            refusals: Refusals::default(),
            cancel: CancellationToken::new(),
            outlets: Mutex::new(Outlets {
                list: Vec::new(),
                closed: false,
            }),
            peer_slots: Arc::default(),
            order: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(admit(shared.clone(), subscribe_rx));
        (Self { shared }, subscribe_tx)
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

    /// Subscriptions refused (capacity, `require`, tickets) or ended because
    /// a ticket expired or was removed, by reason name.
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.shared.refusals.counts()
    }

    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Resolves once at least `minimum` consumers are connected.
    pub async fn subscribed(&self, minimum: usize) {
        self.shared.channels.at_least(minimum).await;
    }

    /// Resolves once at most `maximum` consumers are connected (0: offline).
    pub async fn unsubscribed(&self, maximum: usize) {
        self.shared.channels.at_most(maximum).await;
    }

    /// Resolves when a consumer connects after this call: a new
    /// subscription or a reconnect.
    pub fn next_subscription(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.shared.channels.next_connection()
    }

    /// The catalog's entry for `peer`, if it has one.
    pub fn peer_entry(&self, peer: &iroh::EndpointId) -> Option<crate::discovery::SignedPeerEntry> {
        self.shared.discovery.get(peer)
    }

    /// Sends a datum, waiting while offline or full.
    pub async fn send(&self, datum: Bytes) -> Result<(), SendError> {
        let frames = frame_of(&datum)?;
        self.send_many(frames).await.map_err(|(error, _)| error)
    }

    /// Sends the datums of `frames` in order, waiting while offline or full.
    /// An error says how many went out before it and hands back the first
    /// that did not.
    pub async fn send_many(&self, frames: WireFrames) -> Result<(), (SendError, usize)> {
        let closed = |sent: usize| {
            let datum = if sent < frames.len() {
                frames.payload(sent)
            } else {
                Bytes::new()
            };
            (SendError::Closed(datum), sent)
        };
        tokio::select! {
            _ = self.shared.cancel.cancelled() => return Err(closed(0)),
            _ = self.subscribed(1) => {}
        }
        let _order = tokio::select! {
            _ = self.shared.cancel.cancelled() => return Err(closed(0)),
            order = self.shared.order.lock() => order,
        };
        let mut sent = 0;
        while sent < frames.len() {
            match self.queue(&frames, sent) {
                None => return Err(closed(sent)),
                Some(Queued::Sent(n)) => sent += n,
                Some(Queued::Wait(n, full)) => {
                    sent += n;
                    tokio::select! {
                        _ = self.shared.cancel.cancelled() => return Err(closed(sent)),
                        _ = full.wait_room() => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends without waiting: `Offline`, `Full` or `Closed` hand the datum back.
    pub fn try_send(&self, datum: Bytes) -> Result<(), SendError> {
        self.try_send_many(&frame_of(&datum)?).map(|_| ())
    }

    /// Queues as many datums of `frames` as go without waiting, in order,
    /// and says how many (at least one); `Offline`, `Full` or `Closed` (with
    /// the first datum) when none can go.
    pub fn try_send_many(&self, frames: &WireFrames) -> Result<usize, SendError> {
        let first = || {
            if frames.is_empty() {
                Bytes::new()
            } else {
                frames.payload(0)
            }
        };
        if self.is_closed() {
            return Err(SendError::Closed(first()));
        }
        if !self.is_online() {
            return Err(SendError::Offline(first()));
        }
        // A send that waits for room holds the order: queue nothing past it.
        let Ok(_order) = self.shared.order.try_lock() else {
            return Err(SendError::Full(first()));
        };
        match self.queue(frames, 0) {
            None => Err(SendError::Closed(first())),
            Some(Queued::Sent(n) | Queued::Wait(n, _)) if n > 0 => Ok(n),
            Some(_) => Err(SendError::Full(first())),
        }
    }

    /// Puts the longest run of `frames` from `from` on that every `Block`
    /// consumer has room for into every outbox, applying the lagging
    /// policy to the others; `None` once the producer is closed. The caller
    /// holds `order`.
    fn queue(&self, frames: &WireFrames, from: usize) -> Option<Queued> {
        let lagging = self.shared.config.lagging;
        let mut outlets = self.shared.outlets.lock().expect("outlets");
        if outlets.closed {
            return None;
        }
        outlets.list.retain(|o| !o.outbox.is_closed());
        let wanted = frames.len() - from;
        let mut take = wanted;
        let mut full = None;
        if lagging == Lagging::Block {
            for outlet in &outlets.list {
                let room = outlet.outbox.room();
                if room < take {
                    take = room;
                    full = Some(outlet.outbox.clone());
                }
            }
        }
        let batch = from..from + take;
        for outlet in outlets.list.iter_mut() {
            if outlet.outbox.push(frames, batch.clone()) < take {
                match lagging {
                    Lagging::Disconnect => outlet.stop(CloseReason::TooSlow),
                    Lagging::Drop | Lagging::Block => {}
                }
            }
        }
        drop(outlets);
        self.shared.stats.record_many(take, frames.payload_bytes(batch));
        Some(match full {
            Some(outbox) if take < wanted => Queued::Wait(take, outbox),
            _ => Queued::Sent(take),
        })
    }

    /// Ends every subscription with 204 `GracefulShutdown`.
    pub fn close(&self) {
        self.shared.cancel.cancel();
    }
}
