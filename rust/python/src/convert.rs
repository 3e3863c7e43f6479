//! Conversions at the boundary: core values become frozen Python classes
//! (`PeerInfo`, `ChannelInfo`, `Stats`, `DiscoveryEvent`), and option
//! strings and seconds become core types, each parsed here once.
//!
//! Arguments reach the binding already checked by `mosaik/_checks.py` (the
//! one place for argument checks). The option tables below are what those
//! checks read (`CHOICES`), and the core's defaults are what the Python
//! signatures show (`DEFAULTS`), so neither is written twice.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mosaik_core::{
    Digest, RelayChoice,
    discovery::{DiscoveryConfig, Event, SignedPeerEntry, Ticket},
    network::format_address,
    streams::{
        BackoffConfig, Channel, ConsumerConfig, Lagging, Overflow, ProducerConfig, datum::DatumLayout,
    },
    tickets,
};
use pyo3::{
    prelude::*,
    types::{PyDict, PyFrozenSet, PyTuple},
};

use mosaik_core::primitives::rust_types::{RustType, Value};
use pyo3::{
    exceptions::PyTypeError,
    types::{PyBool, PyBytes, PyFloat, PyInt, PyString},
};

use crate::errors::{DecodeError, value_error};

/// A peer as its signed entry describes it. Tags and streams are hex ids.
#[pyclass(module = "mosaik._mosaik", name = "PeerInfo", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// The peer's id: its Ed25519 public key in hex.
    #[pyo3(get)]
    peer_id: String,
    #[pyo3(get)]
    network_id: String,
    /// Everything needed to reach the peer (an iroh `endpoint…` ticket).
    #[pyo3(get)]
    address: String,
    /// The mosaik protocol version the peer speaks (semver, e.g. "0.3.13").
    #[pyo3(get)]
    protocol_version: String,
    tags: BTreeSet<String>,
    streams: BTreeSet<String>,
    groups: BTreeSet<String>,
    tickets: Vec<TicketInfo>,
    /// `(started_at_ms, updated_at_ms)`: a newer entry compares greater.
    #[pyo3(get)]
    version: (i64, i64),
}

impl PeerInfo {
    pub fn of(signed: &SignedPeerEntry) -> Self {
        let entry = signed.entry();
        Self {
            peer_id: entry.id().to_string(),
            network_id: entry.network.to_hex(),
            address: format_address(&entry.address),
            protocol_version: entry.protocol.to_string(),
            tags: entry.tags.iter().map(Digest::to_hex).collect(),
            streams: entry.streams.iter().map(Digest::to_hex).collect(),
            groups: entry.groups.iter().map(Digest::to_hex).collect(),
            tickets: entry
                .tickets
                .iter()
                .map(|(id, t)| TicketInfo::of(id, t))
                .collect(),
            version: (entry.version.started_at_ms(), entry.version.updated_at_ms()),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A ticket a peer carries, as listed in its entry: not validated here
/// (a validator decides what it is worth).
#[pyclass(module = "mosaik._mosaik", name = "TicketInfo", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TicketInfo {
    /// Its id in the entry: `class.derive(data)`, in hex.
    #[pyo3(get)]
    id: String,
    /// The ticket class id, in hex.
    #[pyo3(get)]
    class_id: String,
    /// `"jwt"`, `"tdx"` (shown as opaque) or `"other"`.
    #[pyo3(get)]
    kind: &'static str,
    data: Vec<u8>,
}

impl TicketInfo {
    fn of(id: &Digest, ticket: &Ticket) -> Self {
        let kind = if ticket.class == tickets::jwt_class() {
            "jwt"
        } else if ticket.class == tickets::tdx_class() {
            "tdx"
        } else {
            "other"
        };
        Self {
            id: id.to_hex(),
            class_id: ticket.class.to_hex(),
            kind,
            data: ticket.data.clone(),
        }
    }
}

#[pymethods]
impl TicketInfo {
    /// The ticket's bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The compact JWT of a `"jwt"` ticket; `None` for other kinds.
    #[getter]
    fn token(&self) -> Option<&str> {
        (self.kind == "jwt")
            .then(|| std::str::from_utf8(&self.data).ok())
            .flatten()
    }

    fn __repr__(&self) -> String {
        format!(
            "<TicketInfo {} {}, {} bytes>",
            self.kind,
            &self.id[..10],
            self.data.len()
        )
    }
}

#[pymethods]
impl PeerInfo {
    /// Role tags, as hex ids.
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, &self.tags)
    }

    /// The tickets the peer carries (unvalidated), in id order.
    #[getter]
    fn tickets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.tickets.iter().cloned())
    }

    /// Streams the peer produces, as hex ids.
    #[getter]
    fn streams<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, &self.streams)
    }

    /// Groups the peer is a member of, as hex group ids.
    #[getter]
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, &self.groups)
    }

    /// When the peer last signed this entry, as a Unix timestamp in seconds.
    #[getter]
    fn updated_at(&self) -> f64 {
        self.version.1 as f64 / 1000.0
    }

    /// When the peer's process started (its run), as a Unix timestamp in seconds.
    #[getter]
    fn started_at(&self) -> f64 {
        self.version.0 as f64 / 1000.0
    }

    /// Seconds since the peer started, by its own clock's `started_at` and ours.
    #[getter]
    fn uptime(&self) -> f64 {
        ((now_ms() - self.version.0).max(0)) as f64 / 1000.0
    }

    /// Whether the peer is a member of group `group_id` (64 hex).
    fn in_group(&self, group_id: &str) -> bool {
        self.groups.contains(&group_id.to_ascii_lowercase())
    }

    /// Whether the peer carries tag `name` (a tag name or a 64-hex id).
    fn has_tag(&self, name: &str) -> bool {
        self.tags.contains(&Digest::from_name(name).to_hex())
    }

    /// Whether the peer produces `stream_name` (a stream name or a 64-hex id).
    fn produces(&self, stream_name: &str) -> bool {
        self.streams.contains(&Digest::from_name(stream_name).to_hex())
    }

    fn __repr__(&self) -> String {
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let age = (now_ms() - self.version.1).max(0) / 1000;
        format!(
            "<PeerInfo {} {}, {}, updated {age}s ago>",
            &self.peer_id[..10],
            count(self.tags.len(), "tag"),
            count(self.streams.len(), "stream"),
        )
    }
}

/// Datums and encoded payload bytes, counted as mosaik counts them.
#[pyclass(module = "mosaik._mosaik", name = "Stats", frozen, eq, hash)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stats {
    #[pyo3(get)]
    datums: u64,
    #[pyo3(get)]
    bytes: u64,
}

impl Stats {
    pub fn of(stats: &mosaik_core::streams::Stats) -> Self {
        Self {
            datums: stats.datums(),
            bytes: stats.bytes(),
        }
    }
}

#[pymethods]
impl Stats {
    #[new]
    #[pyo3(signature = (datums = 0, bytes = 0))]
    fn new(datums: u64, bytes: u64) -> Self {
        Self { datums, bytes }
    }

    fn __repr__(&self) -> String {
        format!("Stats(datums={}, bytes={})", self.datums, self.bytes)
    }
}

/// One live subscription: a producer's consumer, or a consumer's producer.
#[pyclass(module = "mosaik._mosaik", name = "ChannelInfo", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelInfo {
    #[pyo3(get)]
    peer_id: String,
    #[pyo3(get)]
    stream_id: String,
    /// `"connecting"` or `"connected"`.
    #[pyo3(get)]
    state: &'static str,
    #[pyo3(get)]
    stats: Stats,
    /// Seconds connected this time; `None` while connecting.
    uptime_ms: Option<u64>,
    /// The peer as the catalog lists it (`None` if it is not listed now).
    #[pyo3(get)]
    peer: Option<PeerInfo>,
}

impl ChannelInfo {
    /// `entry` is the catalog's entry for the channel's peer, if any.
    pub fn of(channel: &Channel, entry: Option<SignedPeerEntry>) -> Self {
        Self {
            peer_id: channel.peer().to_string(),
            stream_id: channel.stream().to_hex(),
            state: channel.state().as_str(),
            stats: Stats::of(channel.stats()),
            uptime_ms: channel.uptime().map(|d| d.as_millis() as u64),
            peer: entry.as_ref().map(PeerInfo::of),
        }
    }
}

#[pymethods]
impl ChannelInfo {
    /// Seconds this subscription has been connected this time; `None`
    /// while connecting (mosaik's `Stats::uptime`).
    #[getter]
    fn uptime(&self) -> Option<f64> {
        self.uptime_ms.map(|ms| ms as f64 / 1000.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ChannelInfo {} {}, {} datums>",
            &self.peer_id[..10],
            self.state,
            self.stats.datums
        )
    }
}

/// A change in the catalog: `kind` is "discovered", "updated" or "departed".
#[pyclass(module = "mosaik._mosaik", name = "DiscoveryEvent", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiscoveryEvent {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    peer: PeerInfo,
}

impl DiscoveryEvent {
    pub fn of(event: &Event) -> Self {
        Self {
            kind: event.kind(),
            peer: PeerInfo::of(event.entry()),
        }
    }
}

#[pymethods]
impl DiscoveryEvent {
    fn __repr__(&self) -> String {
        format!("<DiscoveryEvent {} {}>", self.kind, &self.peer.peer_id[..10])
    }
}

// ---- options ---------------------------------------------------------------------

/// Every option that takes one of a few names, with the core value of each.
/// `mosaik/_checks.py` reads the names from `CHOICES`.
const LAGGING: &[(&str, Lagging)] = &[
    ("disconnect", Lagging::Disconnect),
    ("drop", Lagging::Drop),
    ("block", Lagging::Block),
];
const OVERFLOW: &[(&str, Overflow)] = &[
    ("block", Overflow::Block),
    ("drop_oldest", Overflow::DropOldest),
    ("drop_newest", Overflow::DropNewest),
];
/// How the native side lays out a datum (`codecs.Plan.layout`).
const LAYOUT: &[(&str, DatumLayout)] = &[
    ("raw", DatumLayout::Raw),
    ("bytes", DatumLayout::Bytes),
    ("str", DatumLayout::Str),
];
/// `relay=` also takes a URL; these are its named choices.
const RELAY: &[(&str, RelayChoice)] = &[
    ("default", RelayChoice::Default),
    ("disabled", RelayChoice::Disabled),
];

/// Finds `value` in an option table. The Python checks ran first, so a miss
/// means the private API was called directly.
fn choose<T: Copy>(argument: &str, value: &str, table: &[(&str, T)]) -> PyResult<T> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| value_error(argument, format!("not a valid choice: {value:?}")))
}

pub fn lagging(value: &str) -> PyResult<Lagging> {
    choose("lagging", value, LAGGING)
}

pub fn overflow(value: &str) -> PyResult<Overflow> {
    choose("overflow", value, OVERFLOW)
}

pub fn layout(value: &str) -> PyResult<DatumLayout> {
    choose("layout", value, LAYOUT)
}

pub fn relay(value: &str) -> PyResult<RelayChoice> {
    if let Some((_, named)) = RELAY.iter().find(|(name, _)| *name == value) {
        return Ok(named.clone());
    }
    value
        .parse()
        .map(RelayChoice::Url)
        .map_err(|e| value_error("relay", format!("not a relay URL ({e}): {value:?}")))
}

/// The option names, per argument, for the Python checks.
pub fn choices(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let names = |table: Vec<&'static str>| PyTuple::new(py, table);
    let choices = PyDict::new(py);
    choices.set_item("lagging", names(LAGGING.iter().map(|(n, _)| *n).collect())?)?;
    choices.set_item(
        "type_name",
        names(RustType::NAMES.iter().map(|(n, _)| *n).collect())?,
    )?;
    choices.set_item("consistency", names(vec!["weak", "strong"])?)?;
    choices.set_item("overflow", names(OVERFLOW.iter().map(|(n, _)| *n).collect())?)?;
    choices.set_item("layout", names(LAYOUT.iter().map(|(n, _)| *n).collect())?)?;
    choices.set_item("relay", names(RELAY.iter().map(|(n, _)| *n).collect())?)?;
    Ok(choices)
}

/// `seconds` as a duration (the Python checks made it finite and >= 0).
pub fn seconds(argument: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| value_error(argument, format!("not a number of seconds: {seconds}")))
}

/// The core's defaults, as the Python signatures and dataclasses show them.
pub fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let discovery = DiscoveryConfig::default();
    let backoff = BackoffConfig::default();
    let defaults = PyDict::new(py);
    defaults.set_item("buffer_size", ProducerConfig::DEFAULT_BUFFER_SIZE)?;
    defaults.set_item("queue_size", ConsumerConfig::DEFAULT_QUEUE_SIZE)?;
    defaults.set_item("queue_bytes", ConsumerConfig::DEFAULT_QUEUE_BYTES)?;
    defaults.set_item(
        "max_subscriptions_per_peer",
        ProducerConfig::DEFAULT_SUBSCRIPTIONS_PER_PEER,
    )?;
    defaults.set_item(
        "ping_timeout",
        mosaik_core::discovery::ping::DEFAULT_TIMEOUT.as_secs_f64(),
    )?;
    defaults.set_item("purge_after", discovery.purge_after.as_secs_f64())?;
    defaults.set_item("announce_interval", discovery.announce_interval.as_secs_f64())?;
    defaults.set_item("announce_jitter", discovery.announce_jitter)?;
    defaults.set_item("max_time_drift", discovery.max_time_drift.as_secs_f64())?;
    defaults.set_item("sync_timeout", discovery.sync_timeout.as_secs_f64())?;
    defaults.set_item("events_backlog", discovery.events_backlog)?;
    defaults.set_item("backoff_initial", backoff.initial.as_secs_f64())?;
    defaults.set_item("backoff_factor", f64::from(backoff.factor))?;
    defaults.set_item("backoff_max_delay", backoff.max_delay.as_secs_f64())?;
    defaults.set_item("backoff_max_elapsed", backoff.max_elapsed.as_secs_f64())?;
    defaults.set_item("backoff_jitter", backoff.jitter)?;
    crate::groups::defaults(&defaults)?;
    Ok(defaults)
}

/// A `mosaik.DiscoveryConfig`, read by attribute name.
#[derive(FromPyObject)]
pub struct DiscoveryOptions {
    #[pyo3(attribute)]
    purge_after: f64,
    #[pyo3(attribute)]
    announce_interval: f64,
    #[pyo3(attribute)]
    announce_jitter: f64,
    #[pyo3(attribute)]
    max_time_drift: f64,
    #[pyo3(attribute)]
    sync_timeout: f64,
    #[pyo3(attribute)]
    events_backlog: usize,
}

impl DiscoveryOptions {
    pub fn into_config(self) -> PyResult<DiscoveryConfig> {
        Ok(DiscoveryConfig {
            purge_after: seconds("purge_after", self.purge_after)?,
            announce_interval: seconds("announce_interval", self.announce_interval)?,
            announce_jitter: self.announce_jitter,
            max_time_drift: seconds("max_time_drift", self.max_time_drift)?,
            sync_timeout: seconds("sync_timeout", self.sync_timeout)?,
            events_backlog: self.events_backlog,
            ..DiscoveryConfig::default()
        })
    }
}

/// A `mosaik.Backoff`, read by attribute name.
#[derive(FromPyObject)]
pub struct BackoffOptions {
    #[pyo3(attribute)]
    initial: f64,
    #[pyo3(attribute)]
    factor: f64,
    #[pyo3(attribute)]
    max_delay: f64,
    #[pyo3(attribute)]
    max_elapsed: f64,
    #[pyo3(attribute)]
    jitter: bool,
}

impl BackoffOptions {
    pub fn into_config(self) -> PyResult<BackoffConfig> {
        Ok(BackoffConfig {
            initial: seconds("backoff.initial", self.initial)?,
            factor: self.factor as f32,
            max_delay: seconds("backoff.max_delay", self.max_delay)?,
            max_elapsed: seconds("backoff.max_elapsed", self.max_elapsed)?,
            jitter: self.jitter,
        })
    }
}

fn rust_type(type_name: &str) -> PyResult<RustType> {
    RustType::from_name(type_name).ok_or_else(|| {
        let names: Vec<&str> = RustType::NAMES.iter().map(|(n, _)| *n).collect();
        value_error(
            "type_name",
            format!("expected one of {names:?}, got {type_name:?}"),
        )
    })
}

/// A Python value of the Rust type `type_name`, encoded as postcard.
pub fn encode_value(type_name: &str, value: &Bound<'_, PyAny>) -> PyResult<bytes::Bytes> {
    let ty = rust_type(type_name)?;
    let wrong = || {
        PyTypeError::new_err(format!(
            "value: expected a value of Rust type {type_name}, got {}",
            value.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    };
    let value = match ty {
        RustType::Unit if value.is_none() => Value::Unit,
        RustType::Bool if value.is_instance_of::<PyBool>() => Value::Bool(value.extract()?),
        RustType::F64
            if value.is_instance_of::<PyFloat>()
                || (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>()) =>
        {
            Value::F64(value.extract()?)
        }
        RustType::Str if value.is_instance_of::<PyString>() => Value::Str(value.extract()?),
        RustType::Bytes if value.is_instance_of::<PyBytes>() => Value::Bytes(value.extract()?),
        ty if ty.is_integer() && value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() => {
            let int: i128 = value
                .extract()
                .map_err(|_| value_error("value", format!("{value} is out of range for {type_name}")))?;
            Value::Int(int)
        }
        _ => return Err(wrong()),
    };
    ty.encode(&value).map_err(|e| value_error("value", e))
}

/// The Python value postcard `encoded` holds as the Rust type `type_name`.
pub fn decode_value<'py>(py: Python<'py>, type_name: &str, encoded: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let ty = rust_type(type_name)?;
    let value = ty
        .decode(encoded)
        .map_err(|e| DecodeError::new_err(format!("not a postcard {type_name}: {e}")))?;
    Ok(match value {
        Value::Unit => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::F64(f) => PyFloat::new(py, f).into_any(),
        Value::Str(s) => PyString::new(py, &s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
    })
}
