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
//! Commands (see each module for their JSON):
//! - process and node: `relay`, `start` (optional `bootstrap` tickets),
//!   `shutdown`, `ping`, `sync`, `sync_raw`, `echo_vectors` (here, `node.rs`);
//! - discovery of the running node: `info`, `add_tags`, `remove_tags`,
//!   `dial`, `wait_peer`, `wait_gone`, `feed`, `catalog_hex` (`catalog.rs`),
//!   `events` (`events.rs`);
//! - byte vectors through mosaik's types: `decode_signed_entry`,
//!   `decode_entry`, `encode_entry`, `decode_snapshot` (`vectors.rs`),
//!   `decode_announcement`, `encode_departure` (`announce.rs`);
//! - gossip spy: `gossip_join`, `gossip_messages`, `gossip_broadcast`
//!   (`spy.rs`);
//! - streams of the running node: `produce`, `send`, `wait_subscribed`,
//!   `close_producer`, `consume`, `received`, `wait_producers`
//!   (`streams.rs`);
//! - consensus groups of the running node: `group_join`, `group_status`,
//!   `group_wait_leader`, `group_wait_bonds`, `group_wait_online`,
//!   `group_wait_committed`,
//!   `group_execute`, `group_execute_many`, `group_feed`,
//!   `group_feed_many`, `group_query`, `group_leave`; and, without a node,
//!   `group_vectors` (`groups.rs`);
//! - JWT tickets, without a node: `jwt_issue`, `jwt_validate`,
//!   `jwt_signature` (`tickets.rs`);
//! - benchmarks for `benches/run.py`: `bench_produce`, `bench_consume`,
//!   `bench_converge`, `bench_idle_nodes`, `bench_hold_producers`,
//!   `bench_subscribe` (`bench.rs`); for `benches/groups.py`:
//!   `bench_group_join`, `bench_group_ready`, `bench_group_latency`,
//!   `bench_group_throughput`, `bench_group_probe`, `bench_group_fill`,
//!   `bench_group_wait_committed` (`group_bench.rs`).
//!
//! See `wire.rs` for the JSON shape of addresses and peer entries.

mod announce;
mod bench;
mod catalog;
mod events;
mod group_bench;
mod groups;
mod node;
mod spy;
mod streams;
mod tickets;
mod vectors;
mod wire;

use {
    anyhow::{Context, Result, bail, ensure},
    events::EventLog,
    mosaik::{Datum, Network, NetworkId, Tag},
    node::{NodeOptions, Relay},
    serde_json::{Value, json},
    spy::Spy,
    std::{
        io::Write,
        time::{Duration, Instant},
    },
    tokio::io::{AsyncBufReadExt, BufReader},
    tracing_subscriber::EnvFilter,
};

/// Error of node commands sent before `start`.
const NO_NODE: &str = "no node running; send `start` first";
/// Upper bound for `start` (building the node awaits `endpoint.online()`).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a single `ping`, `sync` or `sync_raw` exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for each graceful-close step on shutdown. iroh's
/// `Endpoint::close` waits for close frames to be acknowledged or to time out
/// (about 3 s once the node has talked to peers; immediate otherwise).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time given to mosaik after dropping the `Network` (which only cancels its
/// termination token) before the endpoint is closed: its announce task then
/// broadcasts a `GracefulDeparture` and sleeps its 500 ms
/// `graceful_departure_window` (`discovery/announce.rs:593-623`). Closing the
/// endpoint at once would cut that broadcast off.
const DEPARTURE_GRACE: Duration = Duration::from_millis(750);

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

/// Process state: at most one relay, one mosaik node (with its event log,
/// stream and group handles) and one gossip spy.
#[derive(Default)]
struct Peer {
    relay: Option<Relay>,
    network: Option<Network>,
    events: Option<EventLog>,
    streams: streams::Registry,
    groups: groups::Registry,
    spy: Option<Spy>,
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
            // process and node
            "relay" => Ok(json!({ "url": self.ensure_relay().await?.url.to_string() })),
            "start" => self.start(cmd).await,
            "ping" => self.ping(cmd).await,
            "sync" => self.sync(cmd).await,
            "sync_raw" => self.sync_raw(cmd).await,
            "echo_vectors" => Ok(echo_vectors()),
            "shutdown" => {
                self.close().await;
                Ok(json!({}))
            }
            // discovery of the running node
            "info" => Ok(catalog::info(self.node()?)),
            "add_tags" => catalog::change_tags(self.node()?, cmd, true),
            "add_ticket" => tickets::add_ticket(self.node()?, cmd),
            "remove_ticket" => tickets::remove_ticket(self.node()?, cmd),
            "remove_tags" => catalog::change_tags(self.node()?, cmd, false),
            "dial" => catalog::dial(self.node()?, cmd).await,
            "wait_peer" => catalog::wait_peer(self.node()?, cmd).await,
            "wait_gone" => catalog::wait_gone(self.node()?, cmd).await,
            "feed" => catalog::feed(self.node()?, cmd),
            "catalog_hex" => catalog::catalog_hex(self.node()?),
            "events" => Ok(self.events.as_ref().context("no node running")?.drain()),
            // byte vectors through mosaik's own types
            "decode_signed_entry" => vectors::decode_signed_entry(cmd),
            "decode_entry" => vectors::decode_entry(cmd),
            "encode_entry" => vectors::encode_entry(cmd),
            "decode_snapshot" => vectors::decode_snapshot(cmd),
            "decode_announcement" => announce::decode_announcement(cmd),
            "encode_departure" => announce::encode_departure(cmd),
            // gossip spy
            "gossip_join" => self.gossip_join(cmd).await,
            "gossip_messages" => Ok(self.spy()?.drain()),
            "gossip_broadcast" => self.spy()?.broadcast(cmd).await,
            // streams of the running node
            "produce" => self.streams.produce(self.network.as_ref().context(NO_NODE)?, cmd),
            "send" => self.streams.send(cmd).await,
            "wait_subscribed" => self.streams.wait_subscribed(cmd).await,
            "close_producer" => self.streams.close_producer(cmd),
            "consume" => self.streams.consume(self.network.as_ref().context(NO_NODE)?, cmd),
            "received" => self.streams.received(cmd).await,
            "wait_producers" => self.streams.wait_producers(cmd).await,
            // consensus groups of the running node
            "group_join" => self.groups.join(self.network.as_ref().context(NO_NODE)?, cmd),
            "group_status" => self.groups.status(cmd),
            "group_wait_leader" => self.groups.wait_leader(cmd).await,
            "group_wait_bonds" => self.groups.wait_bonds(cmd).await,
            "group_wait_online" => self.groups.wait_online(cmd).await,
            "group_wait_committed" => self.groups.wait_committed(cmd).await,
            "group_execute" => self.groups.one(cmd, true).await,
            "group_execute_many" => self.groups.many(cmd, true).await,
            "group_feed" => self.groups.one(cmd, false).await,
            "group_feed_many" => self.groups.many(cmd, false).await,
            "group_query" => self.groups.query(cmd).await,
            "group_leave" => self.groups.leave(cmd),
            "group_vectors" => groups::vectors(cmd),
            // JWT tickets through mosaik's builder and validator
            "jwt_issue" => tickets::issue(cmd),
            "jwt_validate" => tickets::validate(cmd),
            "jwt_signature" => tickets::signature(cmd),
            // benchmarks (benches/run.py)
            "bench_produce" => bench::produce(self.node()?, cmd).await,
            "bench_consume" => bench::consume(cmd).await,
            "bench_converge" => bench::converge(cmd).await,
            "bench_idle_nodes" => bench::idle_nodes(cmd).await,
            "bench_hold_producers" => bench::hold_producers(self.node()?, cmd).await,
            "bench_subscribe" => bench::subscribe(cmd).await,
            "bench_group_join" => group_bench::join(self.node()?, cmd),
            "bench_group_ready" => group_bench::ready(cmd).await,
            "bench_group_latency" => group_bench::latency(cmd).await,
            "bench_group_throughput" => group_bench::throughput(cmd).await,
            "bench_group_probe" => group_bench::probe(cmd).await,
            "bench_group_fill" => group_bench::fill(cmd).await,
            "bench_group_wait_committed" => group_bench::wait_committed(cmd).await,
            "" => bail!("missing string field `cmd`"),
            other => bail!("unknown command `{other}`"),
        }
    }

    /// Starts the in-process relay once; later calls return the same one.
    async fn ensure_relay(&mut self) -> Result<&Relay> {
        if self.relay.is_none() {
            self.relay = Some(node::spawn_relay().await?);
        }
        Ok(self.relay.as_ref().expect("relay just started"))
    }

    /// `start {"network", "relay"?, "tags"?, "secret_key"?, "bootstrap"?}`.
    async fn start(&mut self, cmd: &Value) -> Result<Value> {
        ensure!(self.network.is_none(), "a node is already running");
        let relay_url = match cmd.get("relay").and_then(Value::as_str) {
            Some(url) => url.parse().context("invalid relay url")?,
            None => self.ensure_relay().await?.url.clone(),
        };
        let options = NodeOptions {
            network: wire::str_field(cmd, "network")?.to_owned(),
            relay_url,
            tags: wire::str_list(cmd, "tags")?,
            secret_key: optional_secret_key(cmd)?,
            bootstrap: bootstrap_addrs(cmd)?,
        };

        let started = Instant::now();
        let network = tokio::time::timeout(START_TIMEOUT, node::node_builder(options).build())
            .await
            .context("timed out waiting for the node to come online")?
            .context("failed to build the mosaik node")?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        self.events = Some(EventLog::spawn(network.discovery().events()));

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

    async fn ping(&self, cmd: &Value) -> Result<Value> {
        let endpoint = self.node()?.local().endpoint();
        let target = wire::target_addr(cmd)?;
        let entry = tokio::time::timeout(EXCHANGE_TIMEOUT, node::ping(endpoint, target))
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

    /// `sync_raw {"ticket" | "addr", "hex"}`: one catalog sync from this
    /// node's endpoint sending exactly `hex` (an unframed `CatalogSnapshot`);
    /// answers the acceptor's reply as `reply_hex` plus its decoded
    /// `peer_ids`. Our catalog is not touched.
    async fn sync_raw(&self, cmd: &Value) -> Result<Value> {
        let endpoint = self.node()?.local().endpoint();
        let target = wire::target_addr(cmd)?;
        let snapshot = wire::hex_field(cmd, "hex")?;
        let reply = tokio::time::timeout(EXCHANGE_TIMEOUT, node::sync_raw(endpoint, target, &snapshot))
            .await
            .context("sync timed out")??;
        let reply_hex = hex::encode(&reply);
        let mut answer = vectors::decode_snapshot(&json!({ "hex": reply_hex }))?;
        vectors::extend(&mut answer, json!({ "reply_hex": reply_hex }));
        Ok(answer)
    }

    async fn gossip_join(&mut self, cmd: &Value) -> Result<Value> {
        ensure!(self.spy.is_none(), "the gossip spy already joined");
        let (spy, answer) = Spy::join(cmd).await?;
        self.spy = Some(spy);
        Ok(answer)
    }

    fn node(&self) -> Result<&Network> {
        self.network.as_ref().context(NO_NODE)
    }

    fn spy(&self) -> Result<&Spy> {
        self.spy
            .as_ref()
            .context("no gossip spy; send `gossip_join` first")
    }

    /// Closes the spy, the node's endpoint and the relay gracefully (bounded
    /// in time).
    async fn close(&mut self) {
        if let Some(spy) = self.spy.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, spy.close()).await;
        }
        self.streams = streams::Registry::default();
        // Dropping the group handles broadcasts their `Departure`s while the
        // node still runs.
        self.groups = groups::Registry::default();
        if let Some(network) = self.network.take() {
            let endpoint = network.local().endpoint().clone();
            drop(network); // cancels mosaik's background tasks
            tokio::time::sleep(DEPARTURE_GRACE).await;
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, endpoint.close()).await;
        }
        self.events = None;
        if let Some(relay) = self.relay.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, relay.server.shutdown()).await;
        }
    }
}

/// The optional `secret_key` of `start` (hex, or iroh's base32 form).
fn optional_secret_key(cmd: &Value) -> Result<Option<iroh::SecretKey>> {
    match cmd.get("secret_key").and_then(Value::as_str) {
        Some(key) => Ok(Some(
            key.to_ascii_lowercase().parse().context("invalid secret_key")?,
        )),
        None => Ok(None),
    }
}

/// The optional `bootstrap` list of `start`: `EndpointTicket` strings.
fn bootstrap_addrs(cmd: &Value) -> Result<Vec<iroh::EndpointAddr>> {
    wire::str_list(cmd, "bootstrap")?
        .iter()
        .map(|ticket| wire::target_addr(&json!({ "ticket": ticket })))
        .collect()
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
    vectors::extend(&mut answer, fields);
    answer
}

/// `{"ok": false, "error": "..."}` with the full error chain.
fn failure(error: &anyhow::Error) -> Value {
    json!({ "ok": false, "error": format!("{error:#}") })
}
