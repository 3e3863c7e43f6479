//! `mosaik._mosaik`: the native module behind the `mosaik` package.
//!
//! This crate only converts; all protocol logic lives in `mosaik-core`:
//! - `runtime`: owns the tokio runtime and the bridge to asyncio;
//! - `errors`: the exception classes and the one map from core errors;
//! - `convert`: frozen value classes (`PeerInfo`, `ChannelInfo`, `Stats`,
//!   `DiscoveryEvent`), option parsing, the core's defaults;
//! - `node`: the node handle, with one handle per subsystem: `discovery`,
//!   `streams` (which makes `producer`s and `consumer`s), `groups`;
//! - `tickets`: the JWT validator and issuer (`Jwt`, `JwtIssuer`) and
//!   `validators_from` for `require_ticket=` arguments;
//! - `logging`: tracing events into Python `logging`.

mod bridge;
mod consumer;
mod convert;
mod discovery;
mod errors;
mod groups;
mod logging;
mod node;
mod producer;
mod runtime;
mod streams;
mod tickets;

use mosaik_core::Digest;
use pyo3::{prelude::*, types::PyBytes};

/// mosaik's id rule: 64 hex characters are the id, anything else is blake3(utf8).
#[pyfunction]
fn id_of<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, Digest::from_name(name).as_bytes())
}

/// `datum` as a frame payload in `layout` (what `send` puts on the wire).
#[pyfunction]
fn encode_datum<'py>(
    py: Python<'py>,
    layout: &str,
    datum: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let payload = producer::payload_of(convert::layout(layout)?, datum)?;
    Ok(PyBytes::new(py, &payload))
}

/// The value a frame payload in `layout` holds; `DecodeError` if it holds none.
#[pyfunction]
fn decode_datum<'py>(py: Python<'py>, layout: &str, payload: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    consumer::decode(py, convert::layout(layout)?, payload).map_err(errors::DecodeError::new_err)
}

/// `value` as postcard of the Rust type `type_name` (`"i64"`, `"str"`, ...).
#[pyfunction]
fn encode_value<'py>(
    py: Python<'py>,
    type_name: &str,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let encoded = convert::encode_value(type_name, value)?;
    Ok(PyBytes::new(py, &encoded))
}

/// The value of Rust type `type_name` that postcard `encoded` holds.
#[pyfunction]
fn decode_value<'py>(py: Python<'py>, type_name: &str, encoded: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    convert::decode_value(py, type_name, encoded)
}

/// Closes live nodes and stops the runtime and the log forwarder. Called
/// at interpreter exit; idempotent.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    runtime::shutdown(py);
    py.detach(logging::stop);
}

/// Rust futures currently awaited from Python.
#[pyfunction]
fn _inflight() -> usize {
    runtime::inflight()
}

/// Tasks alive on the runtime (0 before it starts): what leak tests watch.
#[pyfunction]
fn _alive_tasks() -> usize {
    runtime::alive_tasks()
}

/// Sets the level (a Python logging level number) of forwarded Rust events.
#[pyfunction]
fn _set_log_level(level: u8) {
    logging::set_level(level);
}

/// Log events dropped because the forwarder fell behind.
#[pyfunction]
fn _dropped_log_events() -> u64 {
    logging::dropped()
}

#[pymodule]
fn _mosaik(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::init();
    errors::register(py, module)?;
    module.add_class::<node::PyNode>()?;
    module.add_class::<discovery::PyDiscovery>()?;
    module.add_class::<discovery::PyDiscoveryEvents>()?;
    module.add_class::<streams::PyStreams>()?;
    module.add_class::<producer::PyProducer>()?;
    module.add_class::<consumer::PyConsumer>()?;
    module.add_class::<consumer::Batch>()?;
    module.add_class::<convert::PeerInfo>()?;
    module.add_class::<convert::TicketInfo>()?;
    module.add_class::<convert::Stats>()?;
    module.add_class::<convert::ChannelInfo>()?;
    module.add_class::<convert::DiscoveryEvent>()?;
    module.add_class::<groups::PyGroups>()?;
    module.add_class::<groups::PyGroup>()?;
    module.add_class::<groups::GroupStatus>()?;
    module.add_class::<groups::QueryWork>()?;
    module.add_class::<tickets::PyJwt>()?;
    module.add_class::<tickets::PyJwtIssuer>()?;
    module.add("CHOICES", convert::choices(py)?)?;
    module.add("DEFAULTS", convert::defaults(py)?)?;
    module.add_function(wrap_pyfunction!(id_of, module)?)?;
    module.add_function(wrap_pyfunction!(encode_datum, module)?)?;
    module.add_function(wrap_pyfunction!(decode_datum, module)?)?;
    module.add_function(wrap_pyfunction!(encode_value, module)?)?;
    module.add_function(wrap_pyfunction!(decode_value, module)?)?;
    module.add_function(wrap_pyfunction!(tickets::_ticket_signatures, module)?)?;
    module.add_function(wrap_pyfunction!(_shutdown, module)?)?;
    module.add_function(wrap_pyfunction!(_inflight, module)?)?;
    module.add_function(wrap_pyfunction!(_alive_tasks, module)?)?;
    module.add_function(wrap_pyfunction!(_set_log_level, module)?)?;
    module.add_function(wrap_pyfunction!(_dropped_log_events, module)?)?;
    module.add(
        "PROTOCOL_VERSION",
        mosaik_core::discovery::entry::PROTOCOL_VERSION,
    )?;
    Ok(())
}
