//! Consensus groups on the running node, through mosaik's own
//! `Network::groups()` API.
//!
//! A group is named by its `group_id` (64 lowercase hex), as answered by
//! `group_join`. Two state machines are available: mosaik's `NoOp`
//! (`"machine": "noop"`, commands and queries are `()`, written as JSON
//! `null` or left out) and [`Counter`] (`"machine": "counter"`, commands are
//! JSON integers (`i64`) added to a running total, the query is `()` and
//! answers the total).
//!
//! Commands:
//! - `group_join {"key", "machine"?, "consensus"?}` →
//!   `{"group_id", "machine", "type_name", "consensus"}`: joins
//!   `groups().with_key(GroupKey::from_secret(key))` (mosaik's string rule:
//!   64 hex characters are the secret itself, anything else is hashed with
//!   blake3). `machine` is `noop` (the default; `.join()`) or `counter`
//!   (`.with_state_machine(Counter)`). `consensus` overrides fields of the
//!   default `ConsensusConfig`, all in milliseconds except the count:
//!   `heartbeat_interval_ms`, `heartbeat_jitter_ms`, `max_missed_heartbeats`,
//!   `election_timeout_ms`, `election_timeout_jitter_ms`,
//!   `bootstrap_delay_ms`, `forward_timeout_ms`, `query_timeout_ms`; the
//!   answer echoes the effective values. `type_name` is the Rust type name of
//!   the machine, which mosaik folds into the group id through
//!   `LogReplaySync`. Joining a group this process already holds is refused
//!   (mosaik would hand out a second handle whose drop stops the group).
//! - `group_status {"group_id"}` → `{"leader": hex | null, "is_leader",
//!   "online", "committed", "log_position": [term, index], "bonds": [peer
//!   hex]}` (`bonds` are the local bonds, ordered by peer id).
//! - `group_wait_leader {"group_id", "leader"?, "timeout_ms"?}` →
//!   `{"leader", "elapsed_ms"}` once `when().leader_elected()` resolves (at
//!   once if a leader is known), or, with `leader` (peer id hex), once
//!   `when().leader_is(leader)` does.
//! - `group_wait_bonds {"group_id", "minimum"?, "maximum"?, "timeout_ms"?}`
//!   → `{"bonds", "elapsed_ms"}` once the number of local bonds is within
//!   `minimum` (default 1) and `maximum` (default unbounded); follows
//!   `Bonds::changed()` and re-checks every [`POLL`].
//! - `group_wait_online {"group_id", "timeout_ms"?}` → `{"elapsed_ms"}` once
//!   `when().online()` resolves.
//! - `group_wait_committed {"group_id", "index", "timeout_ms"?}` →
//!   `{"committed", "elapsed_ms"}` once `when().committed().reaches(index)`.
//! - `group_execute {"group_id", "command"?, "timeout_ms"?}` → `{"index"}`:
//!   `Group::execute` (the index is assigned, then committed locally).
//! - `group_execute_many {"group_id", "commands" | "count", "timeout_ms"?}`
//!   → `{"start", "end"}` (inclusive): `Group::execute_many`. `count` stands
//!   for that many `()` commands and is only valid for `noop`.
//! - `group_feed {"group_id", "command"?, "timeout_ms"?}` → `{"index"}`:
//!   `Group::feed` (resolves once the leader assigned an index, before the
//!   commit).
//! - `group_feed_many {"group_id", "commands" | "count", "timeout_ms"?}` →
//!   `{"start", "end"}`: `Group::feed_many`.
//! - `group_query {"group_id", "consistency"?, "timeout_ms"?}` →
//!   `{"result", "at"}`: `Group::query((), Weak | Strong)` (`consistency` is
//!   `weak`, the default, or `strong`). `result` is the counter's total, or
//!   `null` for `NoOp`; `at` is the committed index the query ran at.
//! - `group_leave {"group_id"}` → `{}`: drops the `Group` handle (mosaik
//!   broadcasts a `Departure` on every bond and stops the group worker; the
//!   group id stays listed in the node's discovery entry).
//! - `group_vectors {"key", "consensus"?}` → identity numbers, no node
//!   needed: `secret`, `secret_hashed`, `consensus_digest`,
//!   `noop_signature`, `noop_sync_signature`, `noop_type_name`, `group_id`
//!   (the `NoOp` group's id), `counter_signature`, `counter_sync_signature`,
//!   `counter_type_name`, `counter_group_id`. mosaik keeps `GroupConfig`
//!   (which derives the id) and `ConsensusConfig::digest` crate-private, so
//!   the chain of `GroupConfig::new` is replayed here with mosaik's public
//!   `Digest` primitives and the machines' own signatures; `group_join`
//!   answers the id of mosaik's own derivation, so tests can compare both.
//!
//! Errors of mosaik's `execute`, `feed` and `query` (`Offline`,
//! `NoCommands`, `GroupTerminated`, ...) are answered as `ok: false` with
//! their `Display` text. Every wait is bounded by `timeout_ms` (default
//! [`wire::DEFAULT_TIMEOUT`]); a command that timed out may still be
//! committed later.

use {
    crate::{tickets, wire},
    anyhow::{Context, Result, anyhow, bail, ensure},
    futures::FutureExt,
    mosaik::{
        Digest, Network, UniqueId,
        groups::{
            ApplyContext, ConsensusConfig, Consistency, Group, GroupBuilder, GroupKey, LogReplaySync, NoOp,
            StateMachine, StateSync, Storage,
        },
        tickets::Jwt,
    },
    serde_json::{Value, json},
    std::{
        collections::HashMap,
        time::{Duration, Instant},
    },
};

/// Re-check interval of `group_wait_bonds` between bond changes
/// (`Bonds::changed` subscribes anew on each call and could miss a change).
const POLL: Duration = Duration::from_millis(20);

/// Test state machine: a running total of `i64` commands.
///
/// Its Rust type name (`mosaik_interop_peer::groups::Counter`) is part of
/// the group id through `LogReplaySync`, so another implementation joining
/// its group must use that exact string.
#[derive(Debug, Default)]
pub struct Counter {
    total: i64,
}

impl StateMachine for Counter {
    type Command = i64;
    type Query = ();
    type QueryResult = i64;
    type StateSync = LogReplaySync<Self>;

    fn signature(&self) -> UniqueId {
        UniqueId::from("counter-v1")
    }

    fn apply(&mut self, command: i64, _: &dyn ApplyContext) {
        self.total = self.total.wrapping_add(command);
    }

    fn query(&self, (): ()) -> i64 {
        self.total
    }

    fn state_sync(&self) -> Self::StateSync {
        LogReplaySync::default()
    }
}

/// What these commands need from a state machine beyond mosaik's trait.
trait Machine: StateMachine<Query = ()> + Default {
    const NAME: &'static str;

    /// One command from its JSON form (`Null` when absent).
    fn command(value: &Value) -> Result<Self::Command>;

    /// `count` commands, if the machine has a natural one (`()`).
    fn repeated(count: usize) -> Result<Vec<Self::Command>>;

    fn result_json(result: &Self::QueryResult) -> Value;
}

impl Machine for NoOp {
    const NAME: &'static str = "noop";

    fn command(value: &Value) -> Result<()> {
        ensure!(
            value.is_null(),
            "a noop command is `null` (or left out), not {value}"
        );
        Ok(())
    }

    fn repeated(count: usize) -> Result<Vec<()>> {
        Ok(vec![(); count])
    }

    fn result_json((): &()) -> Value {
        Value::Null
    }
}

impl Machine for Counter {
    const NAME: &'static str = "counter";

    fn command(value: &Value) -> Result<i64> {
        value
            .as_i64()
            .with_context(|| format!("a counter command is an i64, not {value}"))
    }

    fn repeated(_: usize) -> Result<Vec<i64>> {
        bail!("`count` is only for noop groups; give counter `commands`")
    }

    fn result_json(total: &i64) -> Value {
        json!(total)
    }
}

/// A group handle of either machine.
enum AnyGroup {
    NoOp(Group<NoOp>),
    Counter(Group<Counter>),
}

/// Runs `$body` with `$g` bound to the typed `Group` of `$group`.
macro_rules! on_group {
    ($group:expr, $g:ident => $body:expr) => {
        match $group {
            AnyGroup::NoOp($g) => $body,
            AnyGroup::Counter($g) => $body,
        }
    };
}

/// The groups joined by commands, by group id hex.
#[derive(Default)]
pub struct Registry {
    groups: HashMap<String, AnyGroup>,
}

/// `builder`, gated by `gate` when the command asked for a validator.
fn gated<'g, S, M>(builder: GroupBuilder<'g, S, M>, gate: Option<Jwt>) -> GroupBuilder<'g, S, M>
where
    S: Storage<M::Command>,
    M: StateMachine,
{
    match gate {
        Some(jwt) => builder.require_ticket(jwt),
        None => builder,
    }
}

impl Registry {
    /// `group_join`.
    pub fn join(&mut self, network: &Network, cmd: &Value) -> Result<Value> {
        let key = GroupKey::from_secret(wire::str_field(cmd, "key")?);
        let machine = Kind::from_cmd(cmd)?;
        let consensus = consensus_field(cmd)?;
        let builder = network.groups().with_key(key);
        let gate = tickets::gate(cmd)?;
        let (group, type_name) = match machine {
            Kind::NoOp => (
                AnyGroup::NoOp(
                    gated(
                        builder
                            .with_state_machine(NoOp)
                            .with_consensus_config(consensus.clone()),
                        gate.clone(),
                    )
                    .join(),
                ),
                std::any::type_name::<NoOp>(),
            ),
            Kind::Counter => (
                AnyGroup::Counter(
                    gated(
                        builder
                            .with_state_machine(Counter::default())
                            .with_consensus_config(consensus.clone()),
                        gate.clone(),
                    )
                    .join(),
                ),
                std::any::type_name::<Counter>(),
            ),
        };
        let key = on_group!(&group, g => wire::hex(g.id()));
        if self.groups.contains_key(&key) {
            // mosaik handed out a second handle to our group's worker; its
            // drop would stop the group for the first one too.
            std::mem::forget(group);
            bail!("group {key} is already joined here");
        }
        self.groups.insert(key.clone(), group);
        Ok(json!({
            "group_id": key,
            "machine": machine.name(),
            "type_name": type_name,
            "consensus": consensus_json(&consensus),
        }))
    }

    /// `group_status`.
    pub fn status(&self, cmd: &Value) -> Result<Value> {
        Ok(on_group!(self.group(cmd)?, g => status(g)))
    }

    /// `group_wait_leader`.
    pub async fn wait_leader(&self, cmd: &Value) -> Result<Value> {
        let group = self.group(cmd)?;
        let started = Instant::now();
        let leader = match cmd.get("leader") {
            None | Some(Value::Null) => {
                let elected = on_group!(group, g => g.when().leader_elected());
                bounded(cmd, "a leader", elected).await?
            }
            Some(_) => {
                let expected = wire::peer_id_field(cmd, "leader")?;
                let is = on_group!(group, g => g.when().leader_is(expected));
                bounded(cmd, &format!("leader {expected}"), is).await?;
                expected
            }
        };
        Ok(json!({
            "leader": leader.to_string(),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }))
    }

    /// `group_wait_bonds`.
    pub async fn wait_bonds(&self, cmd: &Value) -> Result<Value> {
        let minimum = optional_u64(cmd, "minimum")?.unwrap_or(1);
        let maximum = optional_u64(cmd, "maximum")?.unwrap_or(u64::MAX);
        let group = self.group(cmd)?;
        let started = Instant::now();
        let within = || {
            let count = on_group!(group, g => g.bonds().len()) as u64;
            (minimum..=maximum).contains(&count)
        };
        let settled = async {
            while !within() {
                let changed = on_group!(group, g => {
                    let bonds = g.bonds();
                    async move { bonds.changed().await }.boxed()
                });
                let _ = tokio::time::timeout(POLL, changed).await;
            }
        };
        bounded(cmd, &format!("{minimum}..={maximum} bonds"), settled).await?;
        let status = on_group!(group, g => status(g));
        Ok(json!({
            "bonds": status["bonds"],
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }))
    }

    /// `group_wait_online`.
    pub async fn wait_online(&self, cmd: &Value) -> Result<Value> {
        let online = on_group!(self.group(cmd)?, g => g.when().online());
        let started = Instant::now();
        bounded(cmd, "the group to be online", online).await?;
        Ok(json!({ "elapsed_ms": started.elapsed().as_millis() as u64 }))
    }

    /// `group_wait_committed`.
    pub async fn wait_committed(&self, cmd: &Value) -> Result<Value> {
        let index = optional_u64(cmd, "index")?.context("missing field `index`")?;
        let reached = on_group!(self.group(cmd)?, g => g.when().committed().reaches(index));
        let started = Instant::now();
        let committed = bounded(cmd, &format!("commit index {index}"), reached).await?;
        Ok(json!({
            "committed": committed.0,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }))
    }

    /// `group_execute` (`wait_commit`) or `group_feed`.
    pub async fn one(&self, cmd: &Value, wait_commit: bool) -> Result<Value> {
        on_group!(self.group(cmd)?, g => one(g, cmd, wait_commit).await)
    }

    /// `group_execute_many` (`wait_commit`) or `group_feed_many`.
    pub async fn many(&self, cmd: &Value, wait_commit: bool) -> Result<Value> {
        on_group!(self.group(cmd)?, g => many(g, cmd, wait_commit).await)
    }

    /// `group_query`.
    pub async fn query(&self, cmd: &Value) -> Result<Value> {
        let consistency = match cmd.get("consistency").and_then(Value::as_str) {
            None | Some("weak") => Consistency::Weak,
            Some("strong") => Consistency::Strong,
            Some(other) => bail!("unknown consistency `{other}` (expected `weak` or `strong`)"),
        };
        on_group!(self.group(cmd)?, g => query(g, cmd, consistency).await)
    }

    /// `group_leave`.
    pub fn leave(&mut self, cmd: &Value) -> Result<Value> {
        let key = group_key(cmd)?;
        let group = self
            .groups
            .remove(&key)
            .with_context(|| format!("no group {key} joined here"))?;
        drop(group);
        Ok(json!({}))
    }

    fn group(&self, cmd: &Value) -> Result<&AnyGroup> {
        let key = group_key(cmd)?;
        self.groups
            .get(&key)
            .with_context(|| format!("no group {key}; send `group_join` first"))
    }
}

/// `group_vectors`.
pub fn vectors(cmd: &Value) -> Result<Value> {
    let key = GroupKey::from_secret(wire::str_field(cmd, "key")?);
    let consensus = consensus_field(cmd)?;
    Ok(json!({
        "secret": wire::hex(key.secret()),
        "secret_hashed": wire::hex(&key.secret().hashed()),
        "consensus_digest": wire::hex(&consensus_digest(&consensus)),
        "consensus": consensus_json(&consensus),
        "noop_signature": wire::hex(&NoOp.signature()),
        "noop_sync_signature": wire::hex(&NoOp.state_sync().signature()),
        "noop_type_name": std::any::type_name::<NoOp>(),
        "group_id": wire::hex(&group_id::<NoOp>(&key, &consensus)),
        "counter_signature": wire::hex(&Counter::default().signature()),
        "counter_sync_signature": wire::hex(&Counter::default().state_sync().signature()),
        "counter_type_name": std::any::type_name::<Counter>(),
        "counter_group_id": wire::hex(&group_id::<Counter>(&key, &consensus)),
    }))
}

/// mosaik's `GroupConfig::new` derivation (`groups/config.rs`) for a group
/// without ticket validators.
fn group_id<M: Machine>(key: &GroupKey, consensus: &ConsensusConfig) -> Digest {
    let machine = M::default();
    key.secret()
        .hashed()
        .derive(consensus_digest(consensus))
        .derive(machine.signature())
        .derive(machine.state_sync().signature())
}

/// mosaik's crate-private `ConsensusConfig::digest` (`groups/builder.rs`):
/// blake3 of three u128 little-endian values.
fn consensus_digest(consensus: &ConsensusConfig) -> Digest {
    Digest::from_parts(&[
        consensus.heartbeat_interval.as_millis().to_le_bytes(),
        consensus.heartbeat_jitter.as_millis().to_le_bytes(),
        u128::from(consensus.max_missed_heartbeats).to_le_bytes(),
    ])
}

fn status<M: Machine>(group: &Group<M>) -> Value {
    let position = group.log_position();
    json!({
        "leader": group.leader().map(|leader| leader.to_string()),
        "is_leader": group.is_leader(),
        // `online()` resolves on its first poll when the group is online.
        "online": group.when().online().now_or_never().is_some(),
        "committed": group.committed().0,
        "log_position": [position.term().0, position.index().0],
        "bonds": group
            .bonds()
            .iter()
            .map(|bond| bond.peer().id().to_string())
            .collect::<Vec<_>>(),
    })
}

async fn one<M: Machine>(group: &Group<M>, cmd: &Value, wait_commit: bool) -> Result<Value> {
    let command = M::command(cmd.get("command").unwrap_or(&Value::Null))?;
    let (what, outcome) = if wait_commit {
        ("the command to commit", group.execute(command).boxed())
    } else {
        ("the command's index", group.feed(command).boxed())
    };
    let index = bounded(cmd, what, outcome).await?.map_err(|e| anyhow!("{e}"))?;
    Ok(json!({ "index": index.0 }))
}

async fn many<M: Machine>(group: &Group<M>, cmd: &Value, wait_commit: bool) -> Result<Value> {
    let commands = match (cmd.get("commands"), cmd.get("count")) {
        (Some(Value::Array(items)), None) => items.iter().map(M::command).collect::<Result<_>>()?,
        (None, Some(count)) => {
            let count = count.as_u64().context("`count` must be a non-negative integer")?;
            M::repeated(count as usize)?
        }
        _ => bail!("give either a `commands` list or a `count`"),
    };
    let (what, outcome) = if wait_commit {
        ("the commands to commit", group.execute_many(commands).boxed())
    } else {
        ("the commands' indices", group.feed_many(commands).boxed())
    };
    let range = bounded(cmd, what, outcome).await?.map_err(|e| anyhow!("{e}"))?;
    Ok(json!({ "start": range.start().0, "end": range.end().0 }))
}

async fn query<M: Machine>(group: &Group<M>, cmd: &Value, consistency: Consistency) -> Result<Value> {
    let answer = bounded(cmd, "the query result", group.query((), consistency))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    Ok(json!({
        "result": M::result_json(answer.result()),
        "at": answer.state_position().0,
    }))
}

/// Awaits `future` within the command's `timeout_ms`.
async fn bounded<T>(cmd: &Value, what: &str, future: impl Future<Output = T>) -> Result<T> {
    let timeout = wire::timeout_field(cmd)?;
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| anyhow!("timed out after {} ms waiting for {what}", timeout.as_millis()))
}

/// The state machines `group_join` offers.
#[derive(Clone, Copy)]
enum Kind {
    NoOp,
    Counter,
}

impl Kind {
    /// The `machine` field: `noop` (default) or `counter`.
    fn from_cmd(cmd: &Value) -> Result<Self> {
        match cmd.get("machine").and_then(Value::as_str) {
            None | Some("noop") => Ok(Self::NoOp),
            Some("counter") => Ok(Self::Counter),
            Some(other) => bail!("unknown machine `{other}` (expected `noop` or `counter`)"),
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::NoOp => NoOp::NAME,
            Self::Counter => Counter::NAME,
        }
    }
}

/// The default `ConsensusConfig` with the overrides of the optional
/// `consensus` object. Values that would make mosaik's timers panic (a zero
/// heartbeat interval or jitter, a zero election jitter) are refused.
fn consensus_field(cmd: &Value) -> Result<ConsensusConfig> {
    let mut config = ConsensusConfig::default();
    let overrides = match cmd.get("consensus") {
        None | Some(Value::Null) => return Ok(config),
        Some(Value::Object(fields)) => fields,
        Some(_) => bail!("`consensus` must be an object"),
    };
    for (name, value) in overrides {
        let number = value
            .as_u64()
            .with_context(|| format!("`consensus.{name}` must be a non-negative integer"))?;
        let ms = Duration::from_millis(number);
        match name.as_str() {
            "heartbeat_interval_ms" => config.heartbeat_interval = ms,
            "heartbeat_jitter_ms" => config.heartbeat_jitter = ms,
            "max_missed_heartbeats" => {
                config.max_missed_heartbeats =
                    u32::try_from(number).context("`consensus.max_missed_heartbeats` does not fit in u32")?;
            }
            "election_timeout_ms" => config.election_timeout = ms,
            "election_timeout_jitter_ms" => config.election_timeout_jitter = ms,
            "bootstrap_delay_ms" => config.bootstrap_delay = ms,
            "forward_timeout_ms" => config.forward_timeout = ms,
            "query_timeout_ms" => config.query_timeout = ms,
            other => bail!("unknown consensus field `{other}`"),
        }
    }
    ensure!(
        !config.heartbeat_interval.is_zero(),
        "`heartbeat_interval_ms` must be positive"
    );
    ensure!(
        config.heartbeat_jitter.as_millis() > 0,
        "`heartbeat_jitter_ms` must be positive (mosaik takes a random value modulo it)"
    );
    ensure!(
        !config.election_timeout_jitter.is_zero(),
        "`election_timeout_jitter_ms` must be positive (mosaik draws from an empty range otherwise)"
    );
    Ok(config)
}

/// The effective consensus values, in the shape of the `consensus` field.
fn consensus_json(config: &ConsensusConfig) -> Value {
    let ms = |d: Duration| d.as_millis() as u64;
    json!({
        "heartbeat_interval_ms": ms(config.heartbeat_interval),
        "heartbeat_jitter_ms": ms(config.heartbeat_jitter),
        "max_missed_heartbeats": config.max_missed_heartbeats,
        "election_timeout_ms": ms(config.election_timeout),
        "election_timeout_jitter_ms": ms(config.election_timeout_jitter),
        "bootstrap_delay_ms": ms(config.bootstrap_delay),
        "forward_timeout_ms": ms(config.forward_timeout),
        "query_timeout_ms": ms(config.query_timeout),
    })
}

/// An optional non-negative integer field.
fn optional_u64(cmd: &Value, name: &str) -> Result<Option<u64>> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .with_context(|| format!("`{name}` must be a non-negative integer")),
    }
}

/// The required `group_id` field, normalized to lowercase.
fn group_key(cmd: &Value) -> Result<String> {
    Ok(wire::str_field(cmd, "group_id")?.to_ascii_lowercase())
}
