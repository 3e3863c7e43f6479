//! `mosaik-interop-peer`: a test-only reference peer for interoperability tests.
//!
//! It runs a real `mosaik` 0.3.13 node (and, on request, an in-process iroh
//! 0.97 relay server) and is driven by JSON lines: one command object per line
//! on stdin, exactly one answer object per line on stdout. Answers carry
//! `"ok": true` plus fields, or `"ok": false, "error": "..."`. Logs go to
//! stderr (filter from `RUST_LOG`, default `warn`). On startup it prints
//! `{"event":"ready"}`; on stdin EOF or `{"cmd":"shutdown"}` it closes the node
//! and relay and exits with status 0.
//!
//! Commands: `relay`, `start`, `info`, `ping`, `sync`, `echo_vectors`,
//! `shutdown`. See `wire.rs` for the JSON shape of addresses and peer entries.

mod wire;

use {
    anyhow::{Context, Result, bail, ensure},
    iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, endpoint::VarInt},
    iroh_relay::server::{
        AccessConfig, RelayConfig as RelayServerConfig, Server as RelayServer, ServerConfig,
    },
    mosaik::{
        Datum, Network, NetworkId, Tag,
        discovery::{self, SignedPeerEntry},
    },
    serde_json::{Value, json},
    std::{
        collections::BTreeSet,
        io::Write,
        net::{Ipv4Addr, SocketAddr},
        time::{Duration, Instant},
    },
    tokio::io::{AsyncBufReadExt, BufReader},
    tracing_subscriber::EnvFilter,
};

/// Upper bound for `start` (building the node awaits `endpoint.online()`).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a single `ping` or `sync` exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ping response frame accepted (a peer entry is a few hundred bytes).
const MAX_FRAME: usize = 1 << 20;
/// Upper bound for each graceful-close step on shutdown. iroh's
/// `Endpoint::close` waits for close frames to be acknowledged or to time out
/// (about 3 s once the node has talked to peers; immediate otherwise).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// ALPN of mosaik's discovery ping protocol (`discovery/ping.rs`).
const PING_ALPN: &[u8] = b"/mosaik/discovery/ping/1.0";
/// mosaik's `Success` application close code (`network/error.rs`).
const CLOSE_SUCCESS: u32 = 200;

#[tokio::main]
async fn main() -> Result<()> {
    init_tracing();
    emit(&json!({ "event": "ready" }));

    let mut peer = Peer::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let (answer, stop) = peer.handle_line(&line).await;
        emit(&answer);
        if stop {
            break;
        }
    }

    peer.close().await;
    // The blocking stdin reader thread would keep the runtime alive after a
    // `shutdown` command, so leave explicitly once everything is closed.
    std::process::exit(0);
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Writes one JSON object as a line on stdout and flushes it.
fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The relay server started by `relay`, with the URL it is reachable at.
struct Relay {
    server: RelayServer,
    url: RelayUrl,
}

/// Process state: at most one relay and one mosaik node.
#[derive(Default)]
struct Peer {
    relay: Option<Relay>,
    network: Option<Network>,
}

impl Peer {
    /// Parses and runs one command line. Returns the answer and whether the
    /// process should stop reading commands.
    async fn handle_line(&mut self, line: &str) -> (Value, bool) {
        let cmd: Value = match serde_json::from_str(line) {
            Ok(cmd) => cmd,
            Err(e) => return (failure(&anyhow::anyhow!("invalid JSON: {e}")), false),
        };
        let name = cmd.get("cmd").and_then(Value::as_str).unwrap_or_default();
        let stop = name == "shutdown";
        let answer = match self.dispatch(name, &cmd).await {
            Ok(fields) => success(fields),
            Err(e) => failure(&e),
        };
        (answer, stop)
    }

    async fn dispatch(&mut self, name: &str, cmd: &Value) -> Result<Value> {
        match name {
            "relay" => Ok(json!({ "url": self.ensure_relay().await?.to_string() })),
            "start" => self.start(cmd).await,
            "info" => self.info(),
            "ping" => self.ping(cmd).await,
            "sync" => self.sync(cmd).await,
            "echo_vectors" => Ok(echo_vectors()),
            "shutdown" => {
                self.close().await;
                Ok(json!({}))
            }
            "" => bail!("missing string field `cmd`"),
            other => bail!("unknown command `{other}`"),
        }
    }

    /// Starts the in-process relay once; later calls return the same URL.
    async fn ensure_relay(&mut self) -> Result<RelayUrl> {
        if let Some(relay) = &self.relay {
            return Ok(relay.url.clone());
        }
        let relay = spawn_relay().await?;
        let url = relay.url.clone();
        self.relay = Some(relay);
        Ok(url)
    }

    async fn start(&mut self, cmd: &Value) -> Result<Value> {
        ensure!(self.network.is_none(), "a node is already running");
        let network_name = wire::str_field(cmd, "network")?;
        let relay_url = match cmd.get("relay").and_then(Value::as_str) {
            Some(url) => url.parse().context("invalid relay url")?,
            None => self.ensure_relay().await?,
        };
        let tags = wire::str_list(cmd, "tags")?;
        let secret_key = match cmd.get("secret_key").and_then(Value::as_str) {
            Some(hex) => Some(
                hex.to_ascii_lowercase()
                    .parse::<SecretKey>()
                    .context("invalid secret_key")?,
            ),
            None => None,
        };

        let builder = node_builder(network_name, relay_url, &tags, secret_key);
        let started = Instant::now();
        let network = tokio::time::timeout(START_TIMEOUT, builder.build())
            .await
            .context("timed out waiting for the node to come online")?
            .context("failed to build the mosaik node")?;
        let elapsed_ms = started.elapsed().as_millis() as u64;

        let addr = network.local().addr();
        let answer = json!({
            "peer_id": network.local().id().to_string(),
            "network_id": wire::hex(network.network_id()),
            "address": iroh_tickets::endpoint::EndpointTicket::new(addr.clone()).to_string(),
            "addr": wire::addr_json(&addr),
            "elapsed_ms": elapsed_ms,
        });
        self.network = Some(network);
        Ok(answer)
    }

    fn info(&self) -> Result<Value> {
        let network = self.node()?;
        let catalog = network.discovery().catalog();
        let signed = catalog.signed_peers().map(|e| wire::entry_json(e, true));
        let unsigned = catalog.unsigned_peers().map(|e| wire::entry_json(e, false));
        Ok(json!({
            "peer_id": network.local().id().to_string(),
            "catalog": signed.chain(unsigned).collect::<Vec<_>>(),
        }))
    }

    async fn ping(&self, cmd: &Value) -> Result<Value> {
        let endpoint = self.node()?.local().endpoint();
        let target = wire::target_addr(cmd)?;
        let entry = tokio::time::timeout(EXCHANGE_TIMEOUT, ping(endpoint, target))
            .await
            .context("ping timed out")??;
        Ok(wire::entry_json(&entry, true))
    }

    async fn sync(&self, cmd: &Value) -> Result<Value> {
        let discovery = self.node()?.discovery();
        let target = wire::target_addr(cmd)?;
        tokio::time::timeout(EXCHANGE_TIMEOUT, discovery.sync_with(target))
            .await
            .context("sync timed out")?
            .context("catalog sync failed")?;
        Ok(json!({}))
    }

    fn node(&self) -> Result<&Network> {
        self.network
            .as_ref()
            .context("no node running; send `start` first")
    }

    /// Closes the node's endpoint and the relay gracefully (bounded in time).
    async fn close(&mut self) {
        if let Some(network) = self.network.take() {
            let endpoint = network.local().endpoint().clone();
            drop(network); // cancels mosaik's background tasks
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, endpoint.close()).await;
        }
        if let Some(relay) = self.relay.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, relay.server.shutdown()).await;
        }
    }
}

/// Spawns a plain-HTTP iroh relay (no TLS, no QUIC address discovery) on
/// an ephemeral loopback port.
async fn spawn_relay() -> Result<Relay> {
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
    let url = format!("http://{addr}/")
        .parse()
        .context("invalid relay url")?;
    Ok(Relay { server, url })
}

/// A mosaik node builder restricted to loopback, a single custom relay
/// without QUIC address discovery, no mDNS and no DHT auto-bootstrap.
fn node_builder(
    network: &str,
    relay_url: RelayUrl,
    tags: &[String],
    secret_key: Option<SecretKey>,
) -> mosaik::network::NetworkBuilder {
    let relay = iroh::RelayConfig {
        url: relay_url,
        quic: None,
    };
    let loopback: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
    let discovery = discovery::Config::builder().no_auto_bootstrap().with_tags(
        tags.iter()
            .map(|t| Tag::from(t.as_str()))
            .collect::<Vec<_>>(),
    );

    let builder = Network::builder(network)
        .with_relay_mode(RelayMode::Custom(relay.into()))
        .with_addresses(BTreeSet::from([loopback]))
        .with_mdns_discovery(false)
        .with_discovery(discovery);
    match secret_key {
        Some(key) => builder.with_secret_key(key),
        None => builder,
    }
}

/// Runs mosaik's discovery ping exchange as the dialing side: a framed
/// (4-byte big-endian length prefix) postcard `()` request, answered by the
/// remote's freshly signed peer entry; then a `Success` close.
/// `LocalNode::ping` is `pub(crate)` in mosaik 0.3.13, hence this copy.
async fn ping(endpoint: &Endpoint, target: EndpointAddr) -> Result<SignedPeerEntry> {
    let connection = endpoint
        .connect(target, PING_ALPN)
        .await
        .context("connect failed")?;
    let (mut send, mut recv) = connection.open_bi().await.context("open_bi failed")?;

    let request = ().encode()?;
    send.write_all(&(request.len() as u32).to_be_bytes())
        .await?;
    send.write_all(&request).await?;

    let mut len = [0u8; 4];
    recv.read_exact(&mut len)
        .await
        .context("no ping response")?;
    let len = u32::from_be_bytes(len) as usize;
    ensure!(
        len <= MAX_FRAME,
        "ping response frame of {len} bytes is too large"
    );
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame)
        .await
        .context("truncated ping response")?;
    let entry = SignedPeerEntry::decode(&frame).context("invalid signed peer entry")?;

    connection.close(VarInt::from_u32(CLOSE_SUCCESS), b"Success");
    Ok(entry)
}

/// Identifier derivations computed by mosaik itself, for cross-checking.
fn echo_vectors() -> Value {
    json!({
        "network_demo": wire::hex(&NetworkId::from("demo")),
        "stream_string": wire::hex(&<String as Datum>::derived_stream_id()),
        "stream_string_type_name": std::any::type_name::<String>(),
        "tag_api": wire::hex(&Tag::from("api")),
    })
}

/// `{"ok": true, ...fields}`.
fn success(fields: Value) -> Value {
    let mut answer = json!({ "ok": true });
    if let (Some(out), Value::Object(fields)) = (answer.as_object_mut(), fields) {
        out.extend(fields);
    }
    answer
}

/// `{"ok": false, "error": "..."}` with the full error chain.
fn failure(error: &anyhow::Error) -> Value {
    json!({ "ok": false, "error": format!("{error:#}") })
}
