//! Streams: typed publish/subscribe over `/mosaik/streams/1.0`.
//!
//! [`Streams`] is this node's registry of producers (one sink per stream
//! id). It installs the subscription [`accept::Acceptor`] on the node
//! ([`ProtocolProvider`]), which looks producers up here and hands each
//! admitted link to its producer ([`producer`]: an outbox and a sender per
//! consumer). Consumers ([`consumer`]) follow the catalog on their own: a
//! worker starts a receiver per producer and they all fill one delivery
//! queue. The wire is described by [`protocol`] (the ALPN and frame limit),
//! [`handshake`] (the two frames that open a subscription) and [`datum`]
//! (the built-in datum layouts).

pub mod accept;
pub mod backoff;
pub mod consumer;
pub mod datum;
pub mod handshake;
pub mod producer;
pub mod protocol;
pub mod require;
pub mod status;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::mpsc;

use self::{accept::Acceptor, producer::Subscribe};
pub use self::{
    backoff::BackoffConfig,
    consumer::{Arrival, Consumer, ConsumerConfig, Delivery, Overflow, TryRecvError},
    producer::{Lagging, Producer, ProducerConfig, SendError},
    protocol::StreamsProtocol,
    require::Require,
    status::{Channel, State, Stats},
};
use crate::{
    discovery::Discovery,
    network::{Protocol, ProtocolProvider, Protocols},
    primitives::Digest,
};

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("this node already has a producer for stream {0}")]
    DuplicateProducer(Digest),
    #[error(transparent)]
    Config(#[from] StreamsConfigError),
}

/// A producer, consumer or backoff setting that breaks its rule; the
/// message names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StreamsConfigError {
    #[error("{field}: must be at least 1, got 0")]
    Zero { field: &'static str },
    #[error("backoff.factor: must be a finite number >= 1, got {0}")]
    BackoffFactor(f32),
    #[error("backoff.max_delay: must be at least initial ({initial:?}), got {max_delay:?}")]
    BackoffMaxDelay { initial: Duration, max_delay: Duration },
}

/// This node's producers by stream id, each with the inlet of its
/// admission worker; shared by the registry and the acceptor.
#[derive(Default)]
pub(crate) struct Sinks(Mutex<HashMap<Digest, (Producer, mpsc::Sender<Subscribe>)>>);

impl Sinks {
    /// Where to hand a subscription to `stream`, if a live producer has it.
    pub(crate) fn get(&self, stream: &Digest) -> Option<mpsc::Sender<Subscribe>> {
        let sinks = self.0.lock().expect("sinks");
        sinks
            .get(stream)
            .filter(|(p, _)| !p.is_closed())
            .map(|(_, s)| s.clone())
    }
}

#[derive(Clone)]
pub struct Streams {
    discovery: Discovery,
    sinks: Arc<Sinks>,
}

impl Streams {
    pub fn new(discovery: Discovery) -> Self {
        Self {
            discovery,
            sinks: Arc::default(),
        }
    }

    /// Starts producing `config.stream_id` and advertises it in our entry
    /// (announced in the background).
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, StreamsError> {
        config.validate()?;
        let stream = config.stream_id;
        let producer = {
            let mut sinks = self.sinks.0.lock().expect("sinks");
            if let Some((existing, _)) = sinks.get(&stream)
                && !existing.is_closed()
            {
                return Err(StreamsError::DuplicateProducer(stream));
            }
            let (producer, subscribe) = Producer::spawn(config, self.discovery.network());
            sinks.insert(stream, (producer.clone(), subscribe));
            producer
        };
        // Stream ids stay advertised, as in mosaik: consumers learn "gone"
        // from 204. The entry is re-signed even when it already lists the
        // stream, so consumers that gave up on an earlier producer try again.
        let discovery = self.discovery.clone();
        self.discovery.spawn(async move {
            discovery
                .update_local(|entry| {
                    entry.streams.insert(stream);
                    true
                })
                .await;
        });
        Ok(producer)
    }

    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer, StreamsError> {
        config.validate()?;
        Ok(Consumer::spawn(config, self.discovery.clone()))
    }

    /// Closes every producer (204 to their consumers).
    pub fn close(&self) {
        for (producer, _) in self.sinks.0.lock().expect("sinks").values() {
            producer.close();
        }
    }
}

impl ProtocolProvider for Streams {
    fn install(&self, protocols: Protocols) -> Protocols {
        protocols.serve(
            StreamsProtocol::ALPN,
            Acceptor::new(self.discovery.clone(), self.sinks.clone()),
        )
    }
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}
