//! Counters and channel state, as users see them (never on the wire).
//!
//! A channel is one subscription seen from one side: a producer's sender
//! for one consumer, or a consumer's receiver for one producer. [`Channels`]
//! lists the live ones (a terminated channel is removed, as in mosaik) and
//! counts the connected ones, which is what online conditions wait on, and
//! every connection ever made, which edge-triggered waits ("the next
//! subscription") wait on.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use iroh::EndpointId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::primitives::Digest;

/// Datums and payload bytes, counted as mosaik counts them (encoded bytes).
#[derive(Debug, Default)]
pub struct Stats {
    datums: AtomicU64,
    bytes: AtomicU64,
}

impl Stats {
    pub fn record(&self, bytes: usize) {
        self.record_many(1, bytes);
    }

    /// `datums` datums of `bytes` bytes in all.
    pub fn record_many(&self, datums: usize, bytes: usize) {
        self.datums.fetch_add(datums as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn datums(&self) -> u64 {
        self.datums.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A live channel's state; `Terminated` channels are no longer listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Connecting,
    Connected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Connected => "connected",
        }
    }
}

/// One subscription as one side sees it.
#[derive(Debug)]
pub struct Channel {
    key: u64,
    peer: EndpointId,
    stream: Digest,
    connected: AtomicBool,
    /// Since when it has been connected this time (`None` while connecting).
    connected_since: Mutex<Option<Instant>>,
    stats: Stats,
    /// Ends this channel alone (a consumer refusing a producer's datum).
    cancel: CancellationToken,
}

impl Channel {
    /// Identifies the channel among its owner's channels, for as long as it lives.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The peer at the other end.
    pub fn peer(&self) -> EndpointId {
        self.peer
    }

    pub fn stream(&self) -> Digest {
        self.stream
    }

    pub fn state(&self) -> State {
        if self.connected.load(Ordering::Acquire) {
            State::Connected
        } else {
            State::Connecting
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How long it has been connected this time; `None` while connecting
    /// (mosaik's `Stats::uptime`).
    pub fn uptime(&self) -> Option<Duration> {
        self.connected_since
            .lock()
            .expect("channel")
            .map(|since| since.elapsed())
    }

    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// How many channels are connected now, and how many connections were ever
/// made (a channel that reconnects counts again).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    now: usize,
    ever: u64,
}

/// The live channels of one producer or consumer.
#[derive(Debug)]
pub struct Channels {
    next_key: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<Channel>>>,
    connected: watch::Sender<Counts>,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            next_key: AtomicU64::new(1),
            live: Mutex::new(BTreeMap::new()),
            connected: watch::Sender::new(Counts::default()),
        }
    }
}

impl Channels {
    /// Lists a new channel as connecting; it is removed when the guard drops.
    pub fn open(&self, peer: EndpointId, stream: Digest, cancel: CancellationToken) -> ChannelGuard<'_> {
        let channel = Arc::new(Channel {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            peer,
            stream,
            connected: AtomicBool::new(false),
            connected_since: Mutex::new(None),
            stats: Stats::default(),
            cancel,
        });
        self.live
            .lock()
            .expect("channels")
            .insert(channel.key, channel.clone());
        ChannelGuard {
            channels: self,
            channel,
        }
    }

    pub fn list(&self) -> Vec<Arc<Channel>> {
        self.live.lock().expect("channels").values().cloned().collect()
    }

    pub fn get(&self, key: u64) -> Option<Arc<Channel>> {
        self.live.lock().expect("channels").get(&key).cloned()
    }

    /// How many channels are connected.
    pub fn connected(&self) -> usize {
        self.connected.borrow().now
    }

    /// Resolves once at least `minimum` channels are connected.
    pub async fn at_least(&self, minimum: usize) {
        let _ = self.connected.subscribe().wait_for(|n| n.now >= minimum).await;
    }

    /// Resolves once at most `maximum` channels are connected.
    pub async fn at_most(&self, maximum: usize) {
        let _ = self.connected.subscribe().wait_for(|n| n.now <= maximum).await;
    }

    /// Resolves when a channel connects after this call (a new subscription
    /// or a reconnect), whatever was connected before it.
    pub fn next_connection(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut counts = self.connected.subscribe();
        let seen = counts.borrow_and_update().ever;
        async move {
            let _ = counts.wait_for(|n| n.ever > seen).await;
        }
    }

    fn set_connected(&self, channel: &Channel, connected: bool) {
        if channel.connected.swap(connected, Ordering::AcqRel) != connected {
            *channel.connected_since.lock().expect("channel") = connected.then(Instant::now);
            self.connected.send_modify(|n| {
                if connected {
                    n.now += 1;
                    n.ever += 1;
                } else {
                    n.now = n.now.saturating_sub(1);
                }
            });
        }
    }
}

/// Keeps a channel listed for as long as it lives, even when the task that
/// owns it is dropped mid-way (cancellation).
pub struct ChannelGuard<'a> {
    channels: &'a Channels,
    channel: Arc<Channel>,
}

impl ChannelGuard<'_> {
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    pub fn connected(&self) {
        self.channels.set_connected(&self.channel, true);
    }

    /// Back to connecting (a consumer retrying its producer).
    pub fn connecting(&self) {
        self.channels.set_connected(&self.channel, false);
    }
}

impl Drop for ChannelGuard<'_> {
    fn drop(&mut self) {
        self.channels.set_connected(&self.channel, false);
        self.channels
            .live
            .lock()
            .expect("channels")
            .remove(&self.channel.key);
    }
}
