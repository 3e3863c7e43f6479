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
pub mod error;
pub mod handshake;
pub mod producer;
pub mod protocol;
pub mod refusal;
pub mod require;
pub mod status;

use std::sync::Arc;

use self::accept::{Acceptor, Sinks};
pub use self::{
    backoff::BackoffConfig,
    consumer::{Arrival, Consumer, ConsumerConfig, Delivery, Overflow, TryRecvError},
    error::{StreamsConfigError, StreamsError},
    producer::{Lagging, Producer, ProducerConfig, SendError},
    protocol::StreamsProtocol,
    require::Require,
    status::{Channel, State, Stats},
};
use crate::{
    discovery::Discovery,
    network::{Protocol, ProtocolProvider, Protocols},
};

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
            let (producer, subscribe) = Producer::spawn(config, self.discovery.clone());
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
