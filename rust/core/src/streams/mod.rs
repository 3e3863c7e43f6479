//! Streams: typed publish/subscribe over `/mosaik/streams/1.0`.
//!
//! [`Streams`] owns this node's producers (one sink per stream id) and
//! accepts subscriptions, checking in mosaik's order: the consumer is in
//! our catalog (401 before the handshake is read), the handshake arrives in
//! time and decodes (400), the network matches (101), the stream exists
//! (10404), then the producer checks capacity (10509) and its `require`
//! predicate (10403).
//! Consumers follow the catalog on their own ([`consumer`]).

pub mod backoff;
pub mod consumer;
pub mod datum;
pub mod handshake;
pub mod outbox;
pub mod producer;
pub mod queue;
pub mod ready;
pub mod require;
pub mod status;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use tokio::sync::mpsc;
use tracing::debug;

pub use self::{
    backoff::BackoffConfig,
    consumer::{Consumer, ConsumerConfig},
    producer::{Lagging, Producer, ProducerConfig, SendError},
    queue::{Arrival, Delivery, Overflow},
    require::Require,
    status::{Channel, State, Stats},
};
use self::{handshake::ConsumerHandshake, producer::Subscribe};
use crate::{
    discovery::Discovery,
    network::{CloseReason, Link, Protocol, link::close_connection, protocol::Streams as StreamsProtocol},
    primitives::Digest,
};

/// The largest frame a producer reads from a consumer: the handshake is 64
/// bytes; the slack leaves room for criteria a later mosaik may carry.
const HANDSHAKE_FRAME_LIMIT: usize = 4096;
/// Bound on a consumer's handshake after it opened the stream (mosaik has none).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("this node already has a producer for stream {0}")]
    DuplicateProducer(Digest),
}

#[derive(Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

struct Inner {
    discovery: Discovery,
    sinks: Mutex<HashMap<Digest, (Producer, mpsc::Sender<Subscribe>)>>,
}

impl Streams {
    pub fn new(discovery: Discovery) -> Self {
        Self {
            inner: Arc::new(Inner {
                discovery,
                sinks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts producing `config.stream_id` and advertises it in our entry
    /// (announced in the background).
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, StreamsError> {
        let stream = config.stream_id;
        let producer = {
            let mut sinks = self.inner.sinks.lock().expect("sinks");
            if let Some((existing, _)) = sinks.get(&stream)
                && !existing.is_closed()
            {
                return Err(StreamsError::DuplicateProducer(stream));
            }
            let (producer, subscribe) = Producer::spawn(config, self.inner.discovery.network());
            sinks.insert(stream, (producer.clone(), subscribe));
            producer
        };
        // Stream ids stay advertised, as in mosaik: consumers learn "gone"
        // from 204. The entry is re-signed even when it already lists the
        // stream, so consumers that gave up on an earlier producer try again.
        let discovery = self.inner.discovery.clone();
        self.inner.discovery.spawn(async move {
            discovery
                .update_local(|entry| {
                    entry.streams.insert(stream);
                    true
                })
                .await;
        });
        Ok(producer)
    }

    pub fn consumer(&self, config: ConsumerConfig) -> Consumer {
        Consumer::spawn(config, self.inner.discovery.clone())
    }

    /// Closes every producer (204 to their consumers).
    pub fn close(&self) {
        for (producer, _) in self.inner.sinks.lock().expect("sinks").values() {
            producer.close();
        }
    }

    fn sink(&self, stream: &Digest) -> Option<mpsc::Sender<Subscribe>> {
        let sinks = self.inner.sinks.lock().expect("sinks");
        sinks
            .get(stream)
            .filter(|(p, _)| !p.is_closed())
            .map(|(_, s)| s.clone())
    }

    async fn accept_subscription(&self, connection: Connection) -> Result<(), String> {
        let remote = connection.remote_id();
        let Some(consumer) = self.inner.discovery.get(&remote) else {
            close_connection(&connection, CloseReason::UnknownPeer);
            return Err("unknown peer (401)".into());
        };
        // The stream and the handshake come under one bound: a peer that
        // connects and then says nothing would otherwise hold this task for
        // as long as its keep-alives hold the connection.
        let silent = connection.clone();
        let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, async move {
            let mut link = Link::<StreamsProtocol>::accept(connection).await?;
            // Consumers send nothing after their 64-byte handshake.
            link.limit_frames(HANDSHAKE_FRAME_LIMIT);
            let handshake: ConsumerHandshake = link.recv().await?;
            Ok::<_, crate::network::LinkError>((link, handshake))
        })
        .await;
        let (link, handshake) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                close_connection(&silent, CloseReason::ProtocolViolation);
                return Err("no handshake in time (400)".into());
            }
        };
        if handshake.network_id != self.inner.discovery.network() {
            link.close(CloseReason::DifferentNetwork, Duration::from_millis(200))
                .await;
            return Err("different network (101)".into());
        }
        let Some(sink) = self.sink(&handshake.stream_id) else {
            link.close(CloseReason::StreamNotFound, Duration::from_millis(200))
                .await;
            return Err(format!("no producer for {} (10404)", handshake.stream_id));
        };
        if let Err(mpsc::error::SendError((link, _))) = sink.send((link, consumer)).await {
            link.close(CloseReason::StreamNotFound, Duration::from_millis(200))
                .await;
            return Err("producer closed (10404)".into());
        }
        Ok(())
    }
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

impl crate::network::ProtocolProvider for Streams {
    fn install(&self, protocols: crate::network::Protocols) -> crate::network::Protocols {
        protocols.serve(StreamsProtocol::ALPN, self.clone())
    }
}

impl ProtocolHandler for Streams {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        if let Err(reason) = self.accept_subscription(connection).await {
            debug!(peer = %remote.fmt_short(), reason, "subscription refused");
        }
        Ok(())
    }
}
