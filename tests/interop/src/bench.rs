//! Benchmark commands: the native-mosaik side of `benches/run.py`.
//!
//! Each command runs one bounded measurement with the real `mosaik` 0.3.13
//! crate and answers plain numbers; `benches/_worker.py` answers the same
//! commands for our Python package, so both sides of a row are driven
//! identically. Every wait and every loop is bounded by `timeout_ms` or by
//! the measurement's own duration.
//!
//! Datums are `Vec<u8>` of `size` bytes (at least [`HEADER`]): a little-endian
//! `u64` sequence number, then a `CLOCK_MONOTONIC` time in nanoseconds, then
//! zeros. Paced datums carry their own send time; unpaced ones cycle a pool
//! built once and carry the producer's start time, on which consumers place
//! their windows. Python's `time.monotonic_ns()` reads the same clock.
//!
//! Commands (times on the shared monotonic clock are `*_ns`):
//! - `bench_produce {"stream", "size", "seconds", "rate"?, "consumers"?,
//!   "flow"?, "inflight"?, "timeout_ms"?}` on the started node → `{"sent",
//!   "elapsed_ms", "full_retries", "window_waits", "checkpoints"}`. Waits for
//!   `consumers` (default 1) subscribers, then sends for `seconds`: as fast
//!   as possible, or paced at `rate` datums/s with fresh timestamps.
//!   `flow: "lossless"` (default) keeps at most `inflight - 1` datums between
//!   `send` and the slowest consumer's link (mosaik 0.3.13 has no blocking
//!   lagging policy, so this is the lossless equivalent of our
//!   `lagging="block"` with `buffer_size=inflight`); `flow: "default"` sends
//!   with mosaik's defaults (buffer 1024, lagging consumers disconnected).
//!   `checkpoints` are `[t_ns, sent]` pairs about every [`CHECKPOINT_EVERY`].
//! - `bench_consume {"network", "relay", "bootstrap", "stream", "size",
//!   "nodes"?, "warmup_s", "seconds", "latency"?, "pause_s"?,
//!   "timeout_ms"?}` → `{"consumers": [...], "subscribed_ms"}`. Builds
//!   `nodes` fresh nodes (default 1) that dial `bootstrap`, each with one
//!   consumer of `stream`; each consumer reads until `warmup_s` after the
//!   time in its first datum, optionally stops reading for `pause_s`, then
//!   counts the datums of the next `seconds`. Per consumer: `{"datums",
//!   "window_ns", "window_start_ns", "window_end_ns", "latencies_ns"?,
//!   "pause_start_ns"?, "pause_end_ns"?}`.
//! - `bench_converge {"network", "relay", "nodes", "timeout_ms"?}` →
//!   `{"elapsed_ms"}`: one node, then `nodes - 1` more built at once, each
//!   dialing only the first; the time from the first node being up until
//!   every node's catalog holds all others.
//! - `bench_idle_nodes {"network", "relay", "nodes", "settle_ms"?,
//!   "timeout_ms"?}` → `{"rss_before_kib", "rss_after_kib"}`: resident
//!   memory after one seed node, and after `nodes` more joined it (each
//!   knows at least one peer) and idled for `settle_ms`.
//! - `bench_hold_producers {"prefix", "count", "settle_ms"?,
//!   "timeout_ms"?}` on the started node → `{"rss_open_kib",
//!   "rss_subscribed_kib"}`: opens producers of streams `prefix-0` ..
//!   `prefix-{count-1}`, then waits until each has a subscriber.
//! - `bench_subscribe {"network", "relay", "bootstrap", "prefix", "count",
//!   "settle_ms"?, "timeout_ms"?}` → `{"rss_before_kib",
//!   "rss_subscribed_kib"}`: one fresh node, then one consumer per stream
//!   until each is subscribed.
//!
//! Nodes built here are retired without waiting for their graceful close:
//! the benchmark driver ends the process right after the answer.

use {
    crate::{
        node::{self, NodeOptions},
        wire,
    },
    anyhow::{Context, Result, anyhow, bail, ensure},
    futures::{
        SinkExt,
        future::{join_all, try_join_all},
    },
    iroh::{EndpointAddr, RelayUrl},
    mosaik::{
        Network, PeerId, StreamId,
        streams::{Consumer, Producer, producer::Error as ProducerError, status::ChannelInfo},
    },
    serde_json::{Value, json},
    std::{
        collections::HashMap,
        time::{Duration, Instant},
    },
    tokio::time::{sleep, sleep_until, timeout},
};

/// Sequence number and send timestamp at the start of every datum.
const HEADER: usize = 16;
/// Distinct pre-built datums cycled by unpaced producers, so that the
/// measurement is of the transport rather than of building payloads...
const POOL: usize = 1024;
/// ...within this much memory (1 MiB datums get a pool of 64), as in
/// `benches/_payloads.py`.
const POOL_BYTES: usize = 64 << 20;
/// Default `inflight` for `flow: "lossless"` (mosaik's default buffer size).
const DEFAULT_INFLIGHT: usize = 1024;
/// Interval between producer `checkpoints`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);
/// Pause before retrying a send refused with `Full` (see
/// `streams::RetryingSender` for why mosaik refuses it).
const FULL_RETRY: Duration = Duration::from_millis(1);
/// Time given to a lagging consumer's link before polling it again (tokio's
/// timer rounds it up to 1 ms).
const WINDOW_POLL: Duration = Duration::from_micros(200);
/// Bound of the catalog exchange with each bootstrap peer.
const BOOTSTRAP_SYNC_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of every wait whose command has no `timeout_ms`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `bench_produce`.
pub async fn produce(network: &Network, cmd: &Value) -> Result<Value> {
    let size = size_field(cmd)?;
    let seconds = seconds_field(cmd, "seconds")?;
    let rate = optional_f64(cmd, "rate")?;
    let consumers = optional_usize(cmd, "consumers", 1)?;
    let wait = timeout_field(cmd)?;
    let window = match cmd.get("flow").and_then(Value::as_str).unwrap_or("lossless") {
        "lossless" => {
            let inflight = optional_usize(cmd, "inflight", DEFAULT_INFLIGHT)?;
            ensure!(inflight >= 2, "`inflight` must be at least 2");
            Some(inflight)
        }
        "default" => None,
        other => bail!("unknown flow `{other}` (expected `lossless` or `default`)"),
    };

    let mut builder = network
        .streams()
        .producer::<Vec<u8>>()
        .with_stream_id(stream_field(cmd, "stream")?);
    if let Some(inflight) = window {
        builder = builder.with_buffer_size(inflight);
    }
    let producer = builder
        .build()
        .map_err(|_| anyhow!("this node already produces that stream"))?;

    timeout(wait, producer.when().subscribed().minimum_of(consumers))
        .await
        .with_context(|| format!("timed out waiting for {consumers} consumers"))?;

    // One datum fewer than the buffer: mosaik's sink keeps one channel slot
    // reserved, and the lagging check must never see a full buffer.
    let mut sender = FlowSender::new(producer, window.map(|inflight| inflight - 1));
    let started = Instant::now();
    let started_ns = monotonic_ns();
    // Every pooled datum carries the start time: consumers align their
    // windows on it.
    let pool_len = (POOL_BYTES / size).clamp(1, POOL);
    let pool: Vec<Vec<u8>> = (0..pool_len as u64)
        .map(|seq| datum(seq, size, started_ns))
        .collect();
    let period = rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
    let deadline = started + seconds;
    let mut checkpoints = vec![json!([started_ns, 0])];
    let mut last_checkpoint = started;

    let sending = async {
        let mut seq: u64 = 0;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now - last_checkpoint >= CHECKPOINT_EVERY {
                checkpoints.push(json!([monotonic_ns(), sender.sent]));
                last_checkpoint = now;
            }
            let item = match period {
                Some(period) => {
                    sleep_until((started + period.mul_f64(seq as f64)).into()).await;
                    datum(seq, size, monotonic_ns())
                }
                None => pool[seq as usize % pool_len].clone(),
            };
            sender.send(item).await?;
            seq += 1;
        }
        anyhow::Ok(())
    };
    // The sink waits while no consumer is connected; the deadline bounds it.
    if let Ok(outcome) = tokio::time::timeout_at(deadline.into(), sending).await {
        outcome?;
    }
    checkpoints.push(json!([monotonic_ns(), sender.sent]));

    Ok(json!({
        "sent": sender.sent,
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "full_retries": sender.full_retries,
        "window_waits": sender.window_waits,
        "checkpoints": checkpoints,
    }))
}

/// `bench_consume`.
pub async fn consume(cmd: &Value) -> Result<Value> {
    let stream = stream_field(cmd, "stream")?;
    let count = optional_usize(cmd, "nodes", 1)?;
    let wait = timeout_field(cmd)?;
    let plan = Window {
        warmup: seconds_field(cmd, "warmup_s")?,
        pause: optional_f64(cmd, "pause_s")?.map(Duration::from_secs_f64),
        length: seconds_field(cmd, "seconds")?,
        latency: cmd.get("latency").and_then(Value::as_bool).unwrap_or(false),
        first_datum: wait,
    };

    let nodes = build_nodes(&Joining::from_cmd(cmd)?, count, wait).await?;
    let started = Instant::now();
    let consumers: Vec<Consumer<Vec<u8>>> = nodes
        .iter()
        .map(|n| n.streams().consumer::<Vec<u8>>().with_stream_id(stream).build())
        .collect();
    timeout(
        wait,
        join_all(consumers.iter().map(|c| c.when().subscribed().minimum_of(1))),
    )
    .await
    .context("timed out waiting for the consumers to subscribe")?;
    let subscribed_ms = started.elapsed().as_millis() as u64;

    let tasks = consumers
        .into_iter()
        .map(|consumer| tokio::spawn(plan.clone().measure(consumer)));
    let reports = try_join_all(tasks)
        .await
        .context("a consumer task failed")?
        .into_iter()
        .collect::<Result<Vec<Value>>>()?;
    retire(nodes);
    Ok(json!({ "consumers": reports, "subscribed_ms": subscribed_ms }))
}

/// `bench_converge`.
pub async fn converge(cmd: &Value) -> Result<Value> {
    let joining = Joining::from_cmd(cmd)?;
    let count = optional_usize(cmd, "nodes", 32)?;
    ensure!(count >= 2, "`nodes` must be at least 2");
    let wait = timeout_field(cmd)?;

    let first = build_nodes(&joining, 1, wait).await?;
    let started = Instant::now();
    let bootstrap = Joining {
        bootstrap: vec![first[0].local().addr()],
        ..joining
    };
    let rest = build_nodes(&bootstrap, count - 1, wait).await?;
    let everyone: Vec<Network> = first.into_iter().chain(rest).collect();
    let converged = timeout(
        wait,
        join_all(everyone.iter().map(|n| wait_for_peers(n, count - 1))),
    )
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let slowest = everyone
        .iter()
        .map(|n| n.discovery().catalog().signed_peers_count())
        .min()
        .unwrap_or_default();
    retire(everyone);
    ensure!(
        converged.is_ok(),
        "timed out after {elapsed_ms} ms; the emptiest catalog has {slowest} of {} peers",
        count - 1
    );
    Ok(json!({ "elapsed_ms": elapsed_ms }))
}

/// `bench_idle_nodes`.
pub async fn idle_nodes(cmd: &Value) -> Result<Value> {
    let joining = Joining::from_cmd(cmd)?;
    let count = optional_usize(cmd, "nodes", 16)?;
    let settle = settle_field(cmd)?;
    let wait = timeout_field(cmd)?;

    let seed = build_nodes(&joining, 1, wait).await?;
    sleep(settle).await;
    let rss_before_kib = rss_kib()?;
    let bootstrap = Joining {
        bootstrap: vec![seed[0].local().addr()],
        ..joining
    };
    let rest = build_nodes(&bootstrap, count, wait).await?;
    let everyone: Vec<Network> = seed.into_iter().chain(rest).collect();
    // Joined means knowing someone: a full mesh of 16 fresh nodes is the
    // convergence row's business (and native mosaik does not always reach it).
    timeout(wait, join_all(everyone.iter().map(|n| wait_for_peers(n, 1))))
        .await
        .context("timed out waiting for the idle nodes to meet")?;
    sleep(settle).await;
    let rss_after_kib = rss_kib()?;
    retire(everyone);
    Ok(json!({ "rss_before_kib": rss_before_kib, "rss_after_kib": rss_after_kib }))
}

/// `bench_hold_producers`.
pub async fn hold_producers(network: &Network, cmd: &Value) -> Result<Value> {
    let prefix = wire::str_field(cmd, "prefix")?;
    let count = optional_usize(cmd, "count", 32)?;
    let settle = settle_field(cmd)?;
    let wait = timeout_field(cmd)?;

    let producers = (0..count)
        .map(|i| {
            network
                .streams()
                .producer::<Vec<u8>>()
                .with_stream_id(StreamId::from(format!("{prefix}-{i}").as_str()))
                .build()
                .map_err(|_| anyhow!("this node already produces stream {prefix}-{i}"))
        })
        .collect::<Result<Vec<Producer<Vec<u8>>>>>()?;
    sleep(settle).await;
    let rss_open_kib = rss_kib()?;
    timeout(
        wait,
        join_all(producers.iter().map(|p| p.when().subscribed().minimum_of(1))),
    )
    .await
    .context("timed out waiting for a subscriber on every stream")?;
    sleep(settle).await;
    let rss_subscribed_kib = rss_kib()?;
    Ok(json!({ "rss_open_kib": rss_open_kib, "rss_subscribed_kib": rss_subscribed_kib }))
}

/// `bench_subscribe`.
pub async fn subscribe(cmd: &Value) -> Result<Value> {
    let prefix = wire::str_field(cmd, "prefix")?;
    let count = optional_usize(cmd, "count", 32)?;
    let settle = settle_field(cmd)?;
    let wait = timeout_field(cmd)?;

    let nodes = build_nodes(&Joining::from_cmd(cmd)?, 1, wait).await?;
    sleep(settle).await;
    let rss_before_kib = rss_kib()?;
    let consumers: Vec<Consumer<Vec<u8>>> = (0..count)
        .map(|i| {
            nodes[0]
                .streams()
                .consumer::<Vec<u8>>()
                .with_stream_id(StreamId::from(format!("{prefix}-{i}").as_str()))
                .build()
        })
        .collect();
    timeout(
        wait,
        join_all(consumers.iter().map(|c| c.when().subscribed().minimum_of(1))),
    )
    .await
    .context("timed out waiting for every consumer to subscribe")?;
    sleep(settle).await;
    let rss_subscribed_kib = rss_kib()?;
    drop(consumers);
    retire(nodes);
    Ok(json!({ "rss_before_kib": rss_before_kib, "rss_subscribed_kib": rss_subscribed_kib }))
}

/// A producer handle that retries `Full` and, given a window, never lets
/// more than that many datums wait between `send` and the slowest
/// consumer's link.
struct FlowSender {
    producer: Producer<Vec<u8>>,
    window: Option<usize>,
    sent: u64,
    /// Lower bound of the datums every connected consumer's link has taken.
    written: u64,
    /// Per channel, `sent` minus its own count when it was first seen, so a
    /// consumer that joins late does not count as lagging (one seen late
    /// with datums still queued for it is taken as caught up).
    baselines: HashMap<PeerId, u64>,
    full_retries: u64,
    window_waits: u64,
}

impl FlowSender {
    /// Call once the first consumers are subscribed: they are seen here
    /// with nothing sent yet.
    fn new(producer: Producer<Vec<u8>>, window: Option<usize>) -> Self {
        let mut sender = Self {
            producer,
            window,
            sent: 0,
            written: 0,
            baselines: HashMap::new(),
            full_retries: 0,
            window_waits: 0,
        };
        sender.slowest_written();
        sender
    }

    async fn send(&mut self, mut item: Vec<u8>) -> Result<()> {
        if let Some(window) = self.window {
            self.wait_for_room(window as u64).await;
        }
        loop {
            match self.producer.send(item).await {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err(ProducerError::Full(back)) => {
                    item = back;
                    self.full_retries += 1;
                    sleep(FULL_RETRY).await;
                }
                Err(e) => bail!("send of datum {} failed: {e}", self.sent),
            }
        }
    }

    /// With `window` datums in flight, waits until at most half of them
    /// are; the hysteresis keeps the polling of channel stats rare.
    async fn wait_for_room(&mut self, window: u64) {
        if self.sent - self.written < window {
            return;
        }
        self.written = self.slowest_written();
        if self.sent - self.written < window {
            return;
        }
        self.window_waits += 1;
        while self.sent - self.written > window / 2 {
            sleep(WINDOW_POLL).await;
            self.written = self.slowest_written();
        }
    }

    fn slowest_written(&mut self) -> u64 {
        let channels: Vec<ChannelInfo> = self
            .producer
            .consumers()
            .filter(ChannelInfo::is_connected)
            .collect();
        let sent = self.sent;
        channels
            .iter()
            .map(|channel| {
                let datums = channel.stats().datums() as u64;
                let baseline = *self
                    .baselines
                    .entry(*channel.consumer_id())
                    .or_insert_with(|| sent.saturating_sub(datums));
                baseline + datums
            })
            .min()
            .unwrap_or(sent)
    }
}

/// What one consumer measures, and when.
#[derive(Clone)]
struct Window {
    warmup: Duration,
    pause: Option<Duration>,
    length: Duration,
    latency: bool,
    first_datum: Duration,
}

impl Window {
    /// The window is placed on the producer's clock: it starts `warmup`
    /// (plus `pause`) after the time stamped into the first datum, so all
    /// consumers of a fan-out count over the same interval, under the same
    /// load, however late each one joined.
    async fn measure(self, mut consumer: Consumer<Vec<u8>>) -> Result<Value> {
        let first = timeout(self.first_datum, consumer.recv())
            .await
            .context("timed out waiting for the first datum")?
            .context("the consumer closed before the first datum")?;
        let origin = sent_at(&first);
        let warmup_end = origin + self.warmup.as_nanos() as u64;
        let pause = self.pause.unwrap_or_default().as_nanos() as u64;
        let window_end_ns = warmup_end + pause + self.length.as_nanos() as u64;
        drain_until(&mut consumer, instant_at(warmup_end), None).await;

        let mut answer = json!({});
        if pause > 0 {
            answer["pause_start_ns"] = json!(monotonic_ns());
            sleep_until(instant_at(warmup_end + pause).into()).await;
            answer["pause_end_ns"] = json!(monotonic_ns());
        }

        let window_start_ns = monotonic_ns();
        ensure!(
            window_start_ns < window_end_ns,
            "the first datum came after the measuring window"
        );
        let mut latencies = self.latency.then(Vec::new);
        let datums = drain_until(&mut consumer, instant_at(window_end_ns), latencies.as_mut()).await;
        let window_end_ns = monotonic_ns();
        answer["datums"] = json!(datums);
        answer["window_ns"] = json!(window_end_ns - window_start_ns);
        answer["window_start_ns"] = json!(window_start_ns);
        answer["window_end_ns"] = json!(window_end_ns);
        if let Some(latencies) = latencies {
            answer["latencies_ns"] = json!(latencies);
        }
        Ok(answer)
    }
}

/// The `Instant` at monotonic time `ns` (now, if that has passed).
fn instant_at(ns: u64) -> Instant {
    Instant::now() + Duration::from_nanos(ns.saturating_sub(monotonic_ns()))
}

/// Receives until `end` (or the consumer closes); with `latencies`, records
/// each datum's one-way latency. Returns the number of datums.
async fn drain_until(
    consumer: &mut Consumer<Vec<u8>>,
    end: Instant,
    mut latencies: Option<&mut Vec<u64>>,
) -> u64 {
    let deadline = sleep_until(end.into());
    tokio::pin!(deadline);
    let mut datums = 0;
    loop {
        tokio::select! {
            biased;
            () = &mut deadline => return datums,
            datum = consumer.recv() => {
                let Some(datum) = datum else { return datums };
                datums += 1;
                if let Some(latencies) = latencies.as_deref_mut() {
                    latencies.push(monotonic_ns().saturating_sub(sent_at(&datum)));
                }
            }
        }
    }
}

/// Where fresh nodes go: network name, relay, and bootstrap peers.
#[derive(Clone)]
struct Joining {
    network: String,
    relay_url: RelayUrl,
    bootstrap: Vec<EndpointAddr>,
}

impl Joining {
    fn from_cmd(cmd: &Value) -> Result<Self> {
        let bootstrap = wire::str_list(cmd, "bootstrap")?
            .iter()
            .map(|ticket| wire::target_addr(&json!({ "ticket": ticket })))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            network: wire::str_field(cmd, "network")?.to_owned(),
            relay_url: wire::str_field(cmd, "relay")?
                .parse()
                .context("invalid relay url")?,
            bootstrap,
        })
    }
}

/// Builds `count` nodes at once with the reference peer's node settings
/// (loopback only, the given local relay, no mDNS, no DHT); each then meets
/// the bootstrap peers as the `dial` and `sync` commands do: a gossip join
/// plus a full catalog exchange.
///
/// Why both: passing the peers to `with_bootstrap`, or `dial` alone, only
/// joins gossip, whose neighbours then dial each other by id; without
/// iroh's DNS address lookup (none on loopback) those dials find no
/// address, and of 16 or 32 concurrent nodes some never meet anyone. The
/// catalog exchange carries every known entry with its addresses.
///
/// The bootstrap peers are dialled at their direct addresses only (see
/// [`direct_only`]); everything else still learns, and uses, full addresses.
async fn build_nodes(joining: &Joining, count: usize, wait: Duration) -> Result<Vec<Network>> {
    let joining = &Joining {
        bootstrap: joining.bootstrap.iter().map(direct_only).collect(),
        ..joining.clone()
    };
    let builds = (0..count).map(|_| {
        let options = NodeOptions {
            network: joining.network.clone(),
            relay_url: joining.relay_url.clone(),
            tags: Vec::new(),
            secret_key: None,
            bootstrap: Vec::new(),
        };
        async move {
            let network = timeout(wait, node::node_builder(options).build())
                .await
                .context("timed out waiting for a node to come online")?
                .context("failed to build a mosaik node")?;
            if !joining.bootstrap.is_empty() {
                timeout(wait, network.discovery().dial(joining.bootstrap.clone()))
                    .await
                    .context("timed out dialing the bootstrap peers")?;
                for peer in &joining.bootstrap {
                    // Best effort, as `dial` is: a stalled exchange (iroh 0.97
                    // now and then stalls a connection to a peer, see
                    // `direct_only`) leaves gossip to it.
                    let synced = timeout(
                        BOOTSTRAP_SYNC_TIMEOUT,
                        network.discovery().sync_with(peer.clone()),
                    )
                    .await;
                    if !matches!(synced, Ok(Ok(_))) {
                        tracing::warn!(peer = %peer.id, "bench: catalog sync with a bootstrap peer failed");
                    }
                }
            }
            anyhow::Ok(network)
        }
    });
    try_join_all(builds).await
}

/// `addr` without its relay URL, when it has a direct address to use instead.
///
/// A first dial to a peer with no path yet sends its QUIC Initials on every
/// known path at once, relay and direct (iroh 0.97
/// `socket/remote_map/remote_state.rs:406-440`). When the bootstrap peer, busy
/// with many joining nodes, reads the relay copy before the direct one, the
/// connection is bound to the relay path; the late direct copy then sets that
/// path's local IP before it is dropped (noq-proto 0.16
/// `connection/mod.rs:2136-2189`, then 3887-3903), so every later relay packet
/// of the handshake is dropped too. The joining node believes it is connected;
/// the bootstrap peer never completes the handshake: the catalog sync stalls
/// (5 s) and the node may never meet anyone. With direct addresses only, the
/// first connection is direct and later dials to that peer reuse its path. On
/// loopback the direct path is the one every connection ends up on anyway.
fn direct_only(addr: &EndpointAddr) -> EndpointAddr {
    if addr.ip_addrs().next().is_none() {
        return addr.clone();
    }
    EndpointAddr::from_parts(addr.id, addr.addrs.iter().filter(|a| a.is_ip()).cloned())
}

/// Waits until `network`'s catalog holds at least `peers` signed entries.
async fn wait_for_peers(network: &Network, peers: usize) {
    let mut catalog = network.discovery().catalog_watch();
    let _ = catalog
        .wait_for(|catalog| catalog.signed_peers_count() >= peers)
        .await;
}

/// Drops the nodes and closes their endpoints in the background, bounded,
/// so the answer does not wait for close handshakes.
fn retire(nodes: Vec<Network>) {
    for network in nodes {
        let endpoint = network.local().endpoint().clone();
        drop(network);
        tokio::spawn(async move {
            let _ = timeout(Duration::from_secs(5), endpoint.close()).await;
        });
    }
}

/// A datum of `size` bytes: `seq`, then the monotonic time `stamp`, then
/// zeros.
fn datum(seq: u64, size: usize, stamp: u64) -> Vec<u8> {
    let mut datum = vec![0; size];
    datum[..8].copy_from_slice(&seq.to_le_bytes());
    datum[8..HEADER].copy_from_slice(&stamp.to_le_bytes());
    datum
}

/// The send time stamped into a datum (0 if it is too short).
fn sent_at(datum: &[u8]) -> u64 {
    datum
        .get(8..HEADER)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of Python's
/// `time.monotonic_ns()`, shared by every process on the machine (Rust's
/// `Instant` reads it too but does not expose its value).
#[cfg(target_os = "linux")]
pub(crate) fn monotonic_ns() -> u64 {
    use std::ffi::{c_int, c_long};

    #[repr(C)]
    struct Timespec {
        tv_sec: c_long,
        tv_nsec: c_long,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: c_int, now: *mut Timespec) -> c_int;
    }
    const CLOCK_MONOTONIC: c_int = 1;

    let mut now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the
    // call, and CLOCK_MONOTONIC always exists on Linux.
    let status = unsafe { clock_gettime(CLOCK_MONOTONIC, &raw mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Elsewhere only this process's own clock: latencies across processes are
/// then meaningless, everything else still works.
#[cfg(not(target_os = "linux"))]
pub(crate) fn monotonic_ns() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// This process's resident set size, from `/proc/self/status`.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("no /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

fn stream_field(cmd: &Value, name: &str) -> Result<StreamId> {
    Ok(StreamId::from(wire::str_field(cmd, name)?))
}

fn size_field(cmd: &Value) -> Result<usize> {
    let size = cmd
        .get("size")
        .and_then(Value::as_u64)
        .context("missing integer field `size`")? as usize;
    ensure!(size >= HEADER, "`size` must be at least {HEADER} bytes");
    Ok(size)
}

fn seconds_field(cmd: &Value, name: &str) -> Result<Duration> {
    let seconds = cmd
        .get(name)
        .and_then(Value::as_f64)
        .with_context(|| format!("missing number field `{name}`"))?;
    ensure!(
        seconds.is_finite() && seconds >= 0.0,
        "`{name}` must be a non-negative number"
    );
    Ok(Duration::from_secs_f64(seconds))
}

fn settle_field(cmd: &Value) -> Result<Duration> {
    Ok(Duration::from_millis(
        optional_usize(cmd, "settle_ms", 1000)? as u64
    ))
}

fn optional_f64(cmd: &Value, name: &str) -> Result<Option<f64>> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let number = value
                .as_f64()
                .filter(|n| n.is_finite() && *n > 0.0)
                .with_context(|| format!("`{name}` must be a positive number"))?;
            Ok(Some(number))
        }
    }
}

fn optional_usize(cmd: &Value, name: &str, default: usize) -> Result<usize> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .map(|n| n as usize)
            .with_context(|| format!("`{name}` must be a non-negative integer")),
    }
}

fn timeout_field(cmd: &Value) -> Result<Duration> {
    match cmd.get("timeout_ms") {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT),
        Some(_) => wire::timeout_field(cmd),
    }
}
