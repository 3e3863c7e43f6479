//! `mosaik._mosaik`: the native module behind the `mosaik` package.
//!
//! This crate only converts: it owns the tokio runtime (`runtime`), maps
//! core errors to Python exceptions (`errors`), forwards tracing events to
//! Python logging (`logging`) and wraps core handles (`network`). All
//! protocol logic lives in `mosaik-core`.

mod discovery;
mod errors;
mod logging;
mod network;
mod runtime;
mod streams;

use mosaik_core::Digest;
use pyo3::{prelude::*, types::PyBytes};

/// mosaik's id rule: 64 hex characters are the id, anything else is blake3(utf8).
#[pyfunction]
fn id_of<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, Digest::from_name(name).as_bytes())
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
    module.add_class::<network::PyNode>()?;
    module.add_class::<discovery::PyDiscoveryEvents>()?;
    module.add_class::<streams::PyProducer>()?;
    module.add_class::<streams::PyConsumer>()?;
    module.add_function(wrap_pyfunction!(id_of, module)?)?;
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
