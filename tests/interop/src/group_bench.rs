//! Consensus group benchmark commands: the native-mosaik side of
//! `benches/groups.py`.
//!
//! `benches/_group_worker.py` answers the same commands for our package
//! and for PySyncObj, so every side of a row is driven by the same code.
//! The loops run here, in Rust, and answer only their samples or counts:
//! no JSON round trip is inside a measurement. The machine is [`Counter`]
//! (`i64` commands, each `1`) or mosaik's `NoOp`, with mosaik's default
//! `ConsensusConfig`.
//! Every wait and loop is bounded by `timeout_ms`, a count or a duration.
//!
//! Commands (times on the shared monotonic clock are `*_ns`):
//! - `bench_group_join {"key", "machine"?}` on the started node →
//!   `{"group_id"}`; `machine` is `counter` (the default) or `noop`.
//! - `bench_group_ready {"group_id", "bonds"?, "leader"?, "strict"?,
//!   "timeout_ms"?}` → `{"settled", "leader", "is_leader", "bonds", "peers",
//!   "elapsed_ms"}` once `bonds` (default 2) peers are bonded and, unless
//!   `leader` is false, a leader is known and this member is online. On
//!   timeout it fails, or with `strict: false` answers `settled: false`;
//!   `peers` are the bonded peer ids.
//! - `bench_group_latency {"group_id", "count", "warmup"?, "seconds"?}` →
//!   `{"latencies_ns"}`: `warmup` then `count` sequential `execute(1)`;
//!   fewer (at least 20) once `seconds` have passed since the warm-up.
//! - `bench_group_throughput {"group_id", "seconds", "warmup_s", "batch",
//!   "concurrency"}` → `{"commands", "window_ns"}`: `concurrency` loops of
//!   `execute_many` with `batch` commands (`execute` for `batch: 1`); the
//!   commands whose call returned inside the window.
//! - `bench_group_probe {"group_id", "old_leader"?, "every_ms"?,
//!   "seconds"?}` → `{"probes": [[start_ns, end_ns | null, ok]],
//!   "changed_ns"}`: an `execute(1)` every `every_ms`, each bounded by
//!   `seconds`, until one that started after this member saw a leader other
//!   than `old_leader` succeeds (or `seconds` pass).
//! - `bench_group_fill {"group_id", "entries", "batch"?, "concurrency"?}` →
//!   `{"committed", "elapsed_ms"}`.
//! - `bench_group_wait_committed {"group_id", "index", "timeout_ms"?}` →
//!   `{"committed"}`.
//!
//! The groups live in this module's own registry (the `group_*` commands'
//! registry keeps its handles private); a group joined here is only known
//! to these commands.

use {
    crate::{bench::monotonic_ns, groups::Counter, wire},
    anyhow::{Context, Result, anyhow, bail, ensure},
    futures::{FutureExt, StreamExt, future::join_all, stream::FuturesUnordered},
    mosaik::{
        Network,
        groups::{Group, GroupKey, NoOp, StateMachine},
    },
    serde_json::{Value, json},
    std::{
        collections::HashMap,
        sync::{Arc, LazyLock, Mutex},
        time::{Duration, Instant},
    },
    tokio::time::timeout,
};

/// Re-check interval of `bench_group_ready`.
const POLL: Duration = Duration::from_millis(10);
/// Latency samples taken whatever the time budget.
const MIN_SAMPLES: usize = 20;
/// Bound of the probes one failover run starts.
const MAX_PROBES: usize = 2000;
/// Time given to probes in flight once a failover run has its answer.
const PROBE_TAIL: Duration = Duration::from_millis(50);
/// Bound of every wait whose command has no `timeout_ms`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The machines these commands run, and the command each sends.
trait Machine: StateMachine + Default {
    fn one() -> Self::Command;

    fn many(count: usize) -> Vec<Self::Command> {
        (0..count).map(|_| Self::one()).collect()
    }
}

impl Machine for Counter {
    fn one() -> i64 {
        1
    }
}

impl Machine for NoOp {
    fn one() {}
}

/// A joined group of either machine.
#[derive(Clone)]
enum Handle {
    Counter(Arc<Group<Counter>>),
    NoOp(Arc<Group<NoOp>>),
}

/// Runs `$body` with `$g` bound to the typed `Group` of `$handle`.
macro_rules! on_group {
    ($handle:expr, $g:ident => $body:expr) => {
        match $handle {
            Handle::Counter($g) => $body,
            Handle::NoOp($g) => $body,
        }
    };
}

/// The groups joined by `bench_group_join`, by group id hex.
static GROUPS: LazyLock<Mutex<HashMap<String, Handle>>> = LazyLock::new(Mutex::default);

fn group(cmd: &Value) -> Result<Handle> {
    let id = wire::str_field(cmd, "group_id")?;
    GROUPS
        .lock()
        .expect("groups")
        .get(id)
        .cloned()
        .with_context(|| format!("no group {id}; send `bench_group_join` first"))
}

/// `bench_group_join`.
pub fn join(network: &Network, cmd: &Value) -> Result<Value> {
    let builder = network
        .groups()
        .with_key(GroupKey::from_secret(wire::str_field(cmd, "key")?));
    let (id, handle) = match cmd.get("machine").and_then(Value::as_str) {
        None | Some("counter") => {
            let group = builder.with_state_machine(Counter::default()).join();
            (wire::hex(group.id()), Handle::Counter(Arc::new(group)))
        }
        Some("noop") => {
            let group = builder.with_state_machine(NoOp).join();
            (wire::hex(group.id()), Handle::NoOp(Arc::new(group)))
        }
        Some(other) => bail!("unknown machine `{other}` (expected `counter` or `noop`)"),
    };
    let mut groups = GROUPS.lock().expect("groups");
    if groups.contains_key(&id) {
        // A second handle's drop would stop the group for the first one too.
        std::mem::forget(handle);
        bail!("group {id} is already joined here");
    }
    groups.insert(id.clone(), handle);
    Ok(json!({ "group_id": id }))
}

/// `bench_group_ready`.
pub async fn ready(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => ready_of(&g, cmd).await)
}

async fn ready_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let bonds = usize_field(cmd, "bonds", 2)?;
    let with_leader = cmd.get("leader").and_then(Value::as_bool).unwrap_or(true);
    let strict = cmd.get("strict").and_then(Value::as_bool).unwrap_or(true);
    let started = Instant::now();
    let settled = async {
        loop {
            let online = group.when().online().now_or_never().is_some();
            let led = !with_leader || (group.leader().is_some() && online);
            if group.bonds().len() >= bonds && led {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    };
    let settled = timeout(timeout_field(cmd)?, settled).await.is_ok();
    ensure!(
        settled || !strict,
        "timed out waiting for {bonds} bonds (and a leader)"
    );
    let peers: Vec<String> = group
        .bonds()
        .iter()
        .map(|bond| bond.peer().id().to_string())
        .collect();
    Ok(json!({
        "settled": settled,
        "leader": group.leader().map(|leader| leader.to_string()),
        "is_leader": group.is_leader(),
        "bonds": peers.len(),
        "peers": peers,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
}

/// `bench_group_latency`.
pub async fn latency(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => latency_of(&g, cmd).await)
}

async fn latency_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let count = usize_field(cmd, "count", 1000)?;
    let bound = timeout_field(cmd)?;
    let one = || {
        let execute = group.execute(M::one());
        async move {
            timeout(bound, execute)
                .await
                .context("an execute timed out")?
                .map_err(|e| anyhow!("execute failed: {e}"))
        }
    };
    for _ in 0..usize_field(cmd, "warmup", 0)? {
        one().await?;
    }
    let budget = optional_seconds(cmd, "seconds")?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    while samples.len() < count
        && (samples.len() < MIN_SAMPLES || budget.is_none_or(|budget| started.elapsed() < budget))
    {
        let started = monotonic_ns();
        one().await?;
        samples.push(monotonic_ns() - started);
    }
    Ok(json!({ "latencies_ns": samples }))
}

/// Completions counted at the edges of a window placed after a warm-up.
struct Window {
    done: u64,
    start_ns: u64,
    end_ns: u64,
    at_start: Option<(u64, u64)>,
    at_end: Option<(u64, u64)>,
}

impl Window {
    fn new(warmup: Duration, length: Duration) -> Self {
        let start_ns = monotonic_ns() + warmup.as_nanos() as u64;
        Self {
            done: 0,
            start_ns,
            end_ns: start_ns + length.as_nanos() as u64,
            at_start: None,
            at_end: None,
        }
    }

    /// One completed call of `count` commands; the clock is read here, so
    /// the window's edges fall on completions.
    fn add(&mut self, count: u64) {
        let now = monotonic_ns();
        if self.at_start.is_none() && now >= self.start_ns {
            self.at_start = Some((self.done, now));
        }
        self.done += count;
        if self.at_end.is_none() && now >= self.end_ns {
            self.at_end = Some((self.done, now));
        }
    }

    const fn finished(&self) -> bool {
        self.at_end.is_some()
    }

    fn result(&self) -> Result<Value> {
        let ((first, start), (last, end)) = self
            .at_start
            .zip(self.at_end)
            .with_context(|| format!("the window did not close ({} commands in all)", self.done))?;
        Ok(json!({ "commands": last - first, "window_ns": end - start }))
    }
}

/// `bench_group_throughput`.
pub async fn throughput(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => throughput_of(&g, cmd).await)
}

async fn throughput_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let batch = usize_field(cmd, "batch", 1)?.max(1);
    let concurrency = usize_field(cmd, "concurrency", 1)?.max(1);
    let warmup = seconds_field(cmd, "warmup_s")?;
    let length = seconds_field(cmd, "seconds")?;
    let bound = timeout_field(cmd)?;
    let window = Mutex::new(Window::new(warmup, length));
    let lanes = (0..concurrency).map(|_| async {
        while !window.lock().expect("window").finished() {
            let outcome = if batch == 1 {
                group.execute(M::one()).map(|r| r.map(|_| ())).boxed()
            } else {
                group.execute_many(M::many(batch)).map(|r| r.map(|_| ())).boxed()
            };
            timeout(bound, outcome)
                .await
                .context("an execute timed out")?
                .map_err(|e| anyhow!("execute failed: {e}"))?;
            window.lock().expect("window").add(batch as u64);
        }
        anyhow::Ok(())
    });
    timeout(warmup + length + bound, join_all(lanes))
        .await
        .context("the throughput run did not end")?
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    window.into_inner().expect("window").result()
}

/// `bench_group_probe`.
pub async fn probe(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => probe_of(&g, cmd).await)
}

async fn probe_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let old = cmd.get("old_leader").and_then(Value::as_str).map(str::to_owned);
    let every = Duration::from_millis(usize_field(cmd, "every_ms", 10)? as u64);
    let bound = seconds_field(cmd, "seconds")?;
    let deadline = Instant::now() + bound;
    let mut probes: Vec<(u64, Option<u64>, Option<bool>)> = Vec::new();
    let mut changed_ns: Option<u64> = None;
    let mut running = FuturesUnordered::new();
    let mut ticks = tokio::time::interval(every);
    'probing: while Instant::now() < deadline && probes.len() < MAX_PROBES {
        tokio::select! {
            _ = ticks.tick() => {
                let leader = group.leader().map(|leader| leader.to_string());
                if changed_ns.is_none() && leader.is_some() && leader != old {
                    changed_ns = Some(monotonic_ns());
                }
                let slot = probes.len();
                probes.push((monotonic_ns(), None, None));
                let execute = group.execute(M::one());
                running.push(async move {
                    let ok = matches!(timeout(bound, execute).await, Ok(Ok(_)));
                    (slot, monotonic_ns(), ok)
                });
            }
            Some((slot, end, ok)) = running.next() => {
                probes[slot].1 = Some(end);
                probes[slot].2 = Some(ok);
                if ok && changed_ns.is_some_and(|changed| probes[slot].0 >= changed) {
                    break 'probing;
                }
            }
        }
    }
    let _ = timeout(PROBE_TAIL, async {
        while let Some((slot, end, ok)) = running.next().await {
            probes[slot].1 = Some(end);
            probes[slot].2 = Some(ok);
        }
    })
    .await;
    let probes: Vec<Value> = probes
        .into_iter()
        .map(|(start, end, ok)| json!([start, end, ok]))
        .collect();
    Ok(json!({ "probes": probes, "changed_ns": changed_ns }))
}

/// `bench_group_fill`.
pub async fn fill(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => fill_of(&g, cmd).await)
}

async fn fill_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let entries = usize_field(cmd, "entries", 0)?;
    let batch = usize_field(cmd, "batch", 1000)?.max(1);
    let concurrency = usize_field(cmd, "concurrency", 4)?.max(1);
    let bound = timeout_field(cmd)?;
    let started = Instant::now();
    let remaining = Mutex::new(entries);
    let lanes = (0..concurrency).map(|_| async {
        loop {
            let size = {
                let mut remaining = remaining.lock().expect("remaining");
                let size = batch.min(*remaining);
                *remaining -= size;
                size
            };
            if size == 0 {
                return anyhow::Ok(());
            }
            group
                .execute_many(M::many(size))
                .await
                .map_err(|e| anyhow!("execute failed: {e}"))?;
        }
    });
    timeout(bound, join_all(lanes))
        .await
        .context("the fill did not end")?
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    Ok(json!({
        "committed": group.committed().0,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
}

/// `bench_group_wait_committed`.
pub async fn wait_committed(cmd: &Value) -> Result<Value> {
    on_group!(group(cmd)?, g => wait_committed_of(&g, cmd).await)
}

async fn wait_committed_of<M: Machine>(group: &Group<M>, cmd: &Value) -> Result<Value> {
    let index = usize_field(cmd, "index", 0)? as u64;
    let reached = group.when().committed().reaches(index);
    let committed = timeout(timeout_field(cmd)?, reached)
        .await
        .map_err(|_| anyhow!("timed out waiting for commit index {index}"))?;
    Ok(json!({ "committed": committed.0 }))
}

fn usize_field(cmd: &Value, name: &str, default: usize) -> Result<usize> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .map(|n| n as usize)
            .with_context(|| format!("`{name}` must be a non-negative integer")),
    }
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

fn optional_seconds(cmd: &Value, name: &str) -> Result<Option<Duration>> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => seconds_field(cmd, name).map(Some),
    }
}

fn timeout_field(cmd: &Value) -> Result<Duration> {
    match cmd.get("timeout_ms") {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT),
        Some(_) => wire::timeout_field(cmd),
    }
}
