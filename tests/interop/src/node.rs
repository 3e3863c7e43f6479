//! Starting the pieces this peer runs: the in-process iroh relay and the
//! mosaik node; plus raw Link exchanges as the dialing side: mosaik's
//! discovery ping (crate-private in mosaik) and a catalog sync with
//! caller-supplied snapshot bytes (`sync_raw`).

use {
    anyhow::{Context, Result, ensure},
    iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, endpoint::VarInt},
    iroh_relay::server::{
        AccessConfig, RelayConfig as RelayServerConfig, Server as RelayServer, ServerConfig,
    },
    mosaik::{
        Datum, Network, Tag,
        discovery::{self, SignedPeerEntry},
    },
    std::{
        collections::BTreeSet,
        net::{Ipv4Addr, SocketAddr},
    },
};

/// Largest response frame accepted (a peer entry is a few hundred bytes).
const MAX_FRAME: usize = 1 << 20;
/// ALPN of mosaik's discovery ping protocol (`discovery/ping.rs`).
const PING_ALPN: &[u8] = b"/mosaik/discovery/ping/1.0";
/// ALPN of mosaik's catalog sync protocol (`discovery/sync.rs`).
const SYNC_ALPN: &[u8] = b"/mosaik/discovery/sync/1.0";
/// mosaik's `Success` application close code (`network/error.rs`).
const CLOSE_SUCCESS: u32 = 200;

/// The relay server started by `relay`, with the URL it is reachable at.
pub struct Relay {
    pub server: RelayServer,
    pub url: RelayUrl,
}

/// Spawns a plain-HTTP iroh relay (no TLS, no QUIC address discovery) on
/// an ephemeral loopback port.
pub async fn spawn_relay() -> Result<Relay> {
    let config: ServerConfig<(), ()> = ServerConfig {
        relay: Some(RelayServerConfig {
            http_bind_addr: (Ipv4Addr::LOCALHOST, 0).into(),
            tls: None,
            limits: Default::default(),
            key_cache_capacity: Some(1024),
            access: AccessConfig::Everyone,
        }),
        quic: None,
        ..Default::default() // no metrics address
    };
    let server = RelayServer::spawn(config)
        .await
        .context("failed to spawn relay")?;
    let addr = server.http_addr().context("relay has no HTTP address")?;
    let url = format!("http://{addr}/").parse().context("invalid relay url")?;
    Ok(Relay { server, url })
}

/// What `start` configures on the mosaik node.
pub struct NodeOptions {
    pub network: String,
    pub relay_url: RelayUrl,
    pub tags: Vec<String>,
    pub secret_key: Option<SecretKey>,
    pub bootstrap: Vec<EndpointAddr>,
}

/// A mosaik node builder restricted to loopback, a single custom relay
/// without QUIC address discovery, no mDNS and no DHT auto-bootstrap.
/// Bootstrap peers go to `discovery::Config::with_bootstrap` unchanged.
pub fn node_builder(options: NodeOptions) -> mosaik::network::NetworkBuilder {
    let relay = iroh::RelayConfig {
        url: options.relay_url,
        quic: None,
    };
    let loopback: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    let tags: Vec<Tag> = options.tags.iter().map(|t| Tag::from(t.as_str())).collect();
    let mut discovery = discovery::Config::builder().no_auto_bootstrap().with_tags(tags);
    if !options.bootstrap.is_empty() {
        discovery = discovery.with_bootstrap(options.bootstrap);
    }

    let builder = Network::builder(options.network.as_str())
        .with_relay_mode(RelayMode::Custom(relay.into()))
        .with_addresses(BTreeSet::from([loopback]))
        .with_mdns_discovery(false)
        .with_discovery(discovery);
    match options.secret_key {
        Some(key) => builder.with_secret_key(key),
        None => builder,
    }
}

/// Runs mosaik's discovery ping exchange as the dialing side: a postcard
/// `()` request (empty payload), answered by the remote's freshly signed peer
/// entry. `LocalNode::ping` is `pub(crate)` in mosaik 0.3.13, hence this copy.
pub async fn ping(endpoint: &Endpoint, target: EndpointAddr) -> Result<SignedPeerEntry> {
    let reply = exchange(endpoint, target, PING_ALPN, &().encode()?).await?;
    SignedPeerEntry::decode(&reply).context("invalid signed peer entry")
}

/// Runs one catalog sync as the initiator with caller-supplied bytes: sends
/// `snapshot` (a postcard `CatalogSnapshot`, unframed) and returns the
/// acceptor's snapshot payload exactly as received.
pub async fn sync_raw(endpoint: &Endpoint, target: EndpointAddr, snapshot: &[u8]) -> Result<Vec<u8>> {
    exchange(endpoint, target, SYNC_ALPN, snapshot).await
}

/// One request/response exchange over a mosaik Link, as the dialing side:
/// connect on `alpn`, open a bi stream, send one frame (4-byte big-endian
/// length prefix), read one frame back, then close with `Success` (200).
/// A remote that rejects the request closes the connection instead; that
/// close code and reason appear in the error.
async fn exchange(endpoint: &Endpoint, target: EndpointAddr, alpn: &[u8], request: &[u8]) -> Result<Vec<u8>> {
    let connection = endpoint.connect(target, alpn).await.context("connect failed")?;
    let (mut send, mut recv) = connection.open_bi().await.context("open_bi failed")?;

    send.write_all(&(request.len() as u32).to_be_bytes()).await?;
    send.write_all(request).await?;

    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.context("no response")?;
    let len = u32::from_be_bytes(len) as usize;
    ensure!(len <= MAX_FRAME, "response frame of {len} bytes is too large");
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame).await.context("truncated response")?;

    connection.close(VarInt::from_u32(CLOSE_SUCCESS), b"Success");
    Ok(frame)
}
