//! The subscription acceptor: answers `/mosaik/streams/1.0` connections.
//!
//! [`Acceptor`] is the iroh protocol handler that `Streams`
//! installs on the node. It checks a new subscription in mosaik's order:
//! the consumer is in our discovery catalog (401 before the handshake is
//! read), its handshake arrives in time and decodes (400), the network
//! matches (101), and this node produces the stream (10404). It then hands
//! the link and the consumer's signed entry to that producer's admission
//! worker, which checks capacity and subscriptions per peer (10509),
//! tickets and `require` (10403) itself (`producer/admission.rs`). A refused subscription is a [`Refusal`], logged and
//! closed with its code.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use tokio::sync::mpsc;
use tracing::debug;

use super::{
    handshake::{ConsumerHandshake, HANDSHAKE_FRAME_LIMIT},
    producer::{Producer, Subscribe},
    protocol::StreamsProtocol,
};
use crate::{
    discovery::Discovery,
    network::{CLOSE_GRACE, CloseReason, Link, LinkError, link::close_connection},
    primitives::Digest,
};

/// This node's producers by stream id, each with the inlet of its
/// admission worker; shared by the registry and the acceptor.
#[derive(Default)]
pub(crate) struct Sinks(pub(super) Mutex<HashMap<Digest, (Producer, mpsc::Sender<Subscribe>)>>);

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

/// Bound on a consumer's handshake after it opened the stream (mosaik has none).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a subscription was not handed to a producer.
#[derive(Debug)]
pub enum Refusal {
    /// The consumer is not in our catalog (401).
    UnknownPeer,
    /// The consumer sent no handshake in time (400).
    NoHandshake,
    /// The link failed or the handshake did not decode; the link's own
    /// close says how.
    Link(LinkError),
    /// The handshake names another network (101).
    DifferentNetwork,
    /// This node has no producer for the stream (10404).
    StreamNotFound(Digest),
    /// The producer closed while the subscription was handed over (10404).
    ProducerClosed,
}

impl Refusal {
    /// The close code the consumer is sent, if the acceptor sends one.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            Refusal::UnknownPeer => Some(CloseReason::UnknownPeer),
            Refusal::NoHandshake => Some(CloseReason::ProtocolViolation),
            Refusal::Link(_) => None,
            Refusal::DifferentNetwork => Some(CloseReason::DifferentNetwork),
            Refusal::StreamNotFound(_) | Refusal::ProducerClosed => Some(CloseReason::StreamNotFound),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownPeer => f.write_str("unknown peer (401)"),
            Refusal::NoHandshake => f.write_str("no handshake in time (400)"),
            Refusal::Link(error) => error.fmt(f),
            Refusal::DifferentNetwork => f.write_str("different network (101)"),
            Refusal::StreamNotFound(stream) => write!(f, "no producer for {stream} (10404)"),
            Refusal::ProducerClosed => f.write_str("producer closed (10404)"),
        }
    }
}

/// The streams protocol handler: admits subscriptions to this node's producers.
pub struct Acceptor {
    discovery: Discovery,
    sinks: Arc<Sinks>,
}

impl Acceptor {
    pub(crate) fn new(discovery: Discovery, sinks: Arc<Sinks>) -> Self {
        Self { discovery, sinks }
    }

    /// Checks one subscription and hands it to its producer.
    async fn subscribe(&self, connection: Connection) -> Result<(), Refusal> {
        let remote = connection.remote_id();
        let Some(consumer) = self.discovery.get(&remote) else {
            return Err(refuse_connection(&connection, Refusal::UnknownPeer));
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
            // Nothing more is read from a consumer: what it might still
            // send must not pile up unread for as long as it subscribes.
            link.stop_reading();
            Ok::<_, LinkError>((link, handshake))
        })
        .await;
        let (link, handshake) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(Refusal::Link(e)),
            Err(_) => return Err(refuse_connection(&silent, Refusal::NoHandshake)),
        };
        if handshake.network_id != self.discovery.network() {
            return Err(refuse(link, Refusal::DifferentNetwork).await);
        }
        let Some(sink) = self.sinks.get(&handshake.stream_id) else {
            return Err(refuse(link, Refusal::StreamNotFound(handshake.stream_id)).await);
        };
        if let Err(mpsc::error::SendError((link, _))) = sink.send((link, consumer)).await {
            return Err(refuse(link, Refusal::ProducerClosed).await);
        }
        Ok(())
    }
}

/// Closes a connection that has no link yet with `refusal`'s code.
fn refuse_connection(connection: &Connection, refusal: Refusal) -> Refusal {
    if let Some(reason) = refusal.close_reason() {
        close_connection(connection, reason);
    }
    refusal
}

/// Closes `link` with `refusal`'s code, giving the consumer time to read it.
async fn refuse(link: Link<StreamsProtocol>, refusal: Refusal) -> Refusal {
    if let Some(reason) = refusal.close_reason() {
        link.close(reason, CLOSE_GRACE).await;
    }
    refusal
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acceptor")
    }
}

impl ProtocolHandler for Acceptor {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        if let Err(refusal) = self.subscribe(connection).await {
            let reason = refusal.to_string();
            debug!(peer = %remote.fmt_short(), reason, "subscription refused");
        }
        Ok(())
    }
}
