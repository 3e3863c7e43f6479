//! `Node`: a running mosaik node, composed of an iroh endpoint and the
//! subsystems on it.
//!
//! This is the one place that knows every subsystem: starting a node binds
//! the endpoint ([`config`]), builds discovery, streams and groups, and lets each
//! install its own protocol handlers ([`ProtocolProvider`]) on an iroh
//! `Router`. It never waits for a relay, so it returns promptly with or
//! without internet. Closing is idempotent and bounded in time.

pub mod config;
mod restarts;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use iroh::{
    Endpoint, EndpointAddr, EndpointId, SecretKey, address_lookup::memory::MemoryLookup,
    endpoint_info::EndpointInfo, protocol::Router,
};
use tracing::{debug, info};

pub use self::config::{ConfigError, NodeConfig, RelayChoice};
use crate::{
    discovery::{Discovery, SignedPeerEntry, dht, local::LocalPeer, ping, worker},
    groups::Groups,
    network::{
        Dialer, LinkError, ProtocolProvider, Protocols, address::format_address, route_repair::RouteRepair,
    },
    primitives::Digest,
    streams::Streams,
};

/// Bound on saying goodbye (the departure window is 500 ms).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `close` waits for the endpoint to drain before returning.
pub const ENDPOINT_CLOSE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the node is closed")]
    Closed,
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A ping answered with another peer's entry, or another network's.
    #[error(transparent)]
    Ping(ping::PingError),
}

impl From<ping::PingError> for NodeError {
    fn from(error: ping::PingError) -> Self {
        match error {
            ping::PingError::Link(link) => NodeError::Link(link),
            other => NodeError::Ping(other),
        }
    }
}

/// A running node. Cheap to clone; all clones share one endpoint.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    router: Router,
    discovery: Discovery,
    streams: Streams,
    groups: Groups,
    bootstrap: Vec<EndpointAddr>,
    /// Whether the endpoint has relays to be online with (see `online`).
    uses_relay: bool,
    closed: AtomicBool,
    /// Becomes true once the endpoint has finished closing.
    drained: tokio::sync::watch::Sender<bool>,
}

impl Node {
    /// Binds the endpoint and starts serving. Does not wait for relays.
    pub async fn spawn(config: NodeConfig) -> Result<Self, NodeError> {
        config.validate()?;
        let key = match config.secret_key {
            Some(seed) => SecretKey::from_bytes(&seed),
            None => SecretKey::generate(&mut rand::rng()),
        };
        let lookup = MemoryLookup::new();
        let repair = RouteRepair::new();
        let endpoint = config
            .bind_endpoint(key.clone(), lookup.clone(), repair.clone())
            .await?;
        for peer in &config.bootstrap {
            lookup.add_endpoint_info(EndpointInfo::from(peer.clone()));
        }
        let local = Arc::new(
            LocalPeer::new(key, config.network, endpoint.addr(), config.tags.iter().copied())
                .expect("the endpoint's key signs its own entry"),
        );
        let discovery = Discovery::new(
            Dialer::new(endpoint.clone(), repair.clone()),
            local.clone(),
            lookup.clone(),
            config.discovery.clone(),
        );
        let streams = Streams::new(discovery.clone());
        let groups = Groups::new(discovery.clone(), endpoint.clone());
        let subsystems: [&dyn ProtocolProvider; 3] = [&discovery, &streams, &groups];
        let protocols = subsystems.iter().fold(
            Protocols::new(Router::builder(endpoint.clone()), repair.clone()),
            |protocols, subsystem| subsystem.install(protocols),
        );
        let router = protocols.into_router().spawn();
        worker::start(&discovery, config.bootstrap.clone());
        discovery
            .tasks()
            .spawn(restarts::close_connections_of_restarted_peers(
                discovery.clone(),
                repair,
            ));
        if config.dht {
            dht::spawn(discovery.clone(), dht::DhtConfig::default());
        }
        info!(peer = %endpoint.id().fmt_short(), network = ?config.network, local = config.local, "node started");
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                router,
                discovery,
                streams,
                groups,
                uses_relay: !matches!(config.relay_mode(), iroh::RelayMode::Disabled),
                bootstrap: config.bootstrap,
                closed: AtomicBool::new(false),
                drained: tokio::sync::watch::Sender::new(false),
            }),
        })
    }

    pub fn peer_id(&self) -> EndpointId {
        self.inner.endpoint.id()
    }

    pub fn network_id(&self) -> Digest {
        self.inner.discovery.network()
    }

    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    pub fn streams(&self) -> &Streams {
        &self.inner.streams
    }

    pub fn groups(&self) -> &Groups {
        &self.inner.groups
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// This node's current address: id, home relay (once chosen), direct addresses.
    pub fn addr(&self) -> EndpointAddr {
        self.inner.endpoint.addr()
    }

    /// `addr()` as an `endpoint…` ticket string.
    pub fn address(&self) -> String {
        format_address(&self.addr())
    }

    pub fn bootstrap(&self) -> &[EndpointAddr] {
        &self.inner.bootstrap
    }

    /// Pings `addr` and returns its verified, freshly signed entry.
    pub async fn ping(&self, addr: EndpointAddr, timeout: Duration) -> Result<SignedPeerEntry, NodeError> {
        if self.is_closed() {
            return Err(NodeError::Closed);
        }
        // The app names where the peer is now (see `Dialer::expect_at`).
        let dialer = self.inner.discovery.dialer();
        dialer.expect_at(&addr).await;
        Ok(ping::ping(dialer, addr, None, timeout).await?)
    }

    /// Resolves once the node can be reached from the internet as mosaik
    /// means it: once it has a home relay. Without relays (local mode, or
    /// `relay="disabled"`) it is online as soon as it runs. Closing the node
    /// ends the wait with `Closed`.
    pub async fn online(&self) -> Result<(), NodeError> {
        if self.is_closed() {
            return Err(NodeError::Closed);
        }
        if !self.inner.uses_relay {
            return Ok(());
        }
        tokio::select! {
            _ = self.inner.endpoint.online() => Ok(()),
            _ = self.inner.discovery.cancel_token().cancelled() => Err(NodeError::Closed),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Whether the endpoint has finished closing (some time after `close`).
    pub fn is_drained(&self) -> bool {
        *self.inner.drained.borrow()
    }

    /// Resolves once the endpoint has finished closing.
    pub async fn drained(&self) {
        let _ = self.inner.drained.subscribe().wait_for(|done| *done).await;
    }

    /// Stops serving and closes the endpoint. Idempotent; bounded by `CLOSE_TIMEOUT`.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Producers tell their consumers first (204), groups their bonds
        // (Departure), then discovery says goodbye.
        self.inner.streams.close();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.inner.groups.close()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.inner.discovery.shutdown()).await;
        // Closing the endpoint drains QUIC connections (3 probe timeouts:
        // 2-4 s with many peers, measured with 32 nodes). Wait a little, then
        // let it finish in the background rather than drop it half-closed.
        let (router, drained) = (self.inner.router.clone(), self.inner.drained.clone());
        let closing = tokio::spawn(async move {
            let _ = router.shutdown().await;
            drained.send_replace(true);
        });
        if tokio::time::timeout(ENDPOINT_CLOSE_WAIT, closing).await.is_err() {
            debug!("endpoint still draining; it finishes closing in the background");
        }
        info!(peer = %self.peer_id().fmt_short(), "node closed");
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer", &format_args!("{}", self.peer_id().fmt_short()))
            .field("network", &self.network_id())
            .field("closed", &self.is_closed())
            .finish()
    }
}
