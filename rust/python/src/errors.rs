//! Python exception types and the conversions from core errors.
//!
//! The classes live here so Rust can raise them; `mosaik.errors` re-exports
//! them. Wrong types are `TypeError` and bad values `ValueError`, each
//! naming the argument.

use mosaik_core::network::{ConfigError, LinkError, NodeError};
use pyo3::{
    create_exception,
    exceptions::{PyException, PyValueError},
    prelude::*,
};

create_exception!(
    mosaik,
    MosaikError,
    PyException,
    "Base class of every mosaik error."
);
create_exception!(
    mosaik,
    Closed,
    MosaikError,
    "The node, producer or consumer is closed."
);
create_exception!(mosaik, Full, MosaikError, "A bounded buffer is full.");
create_exception!(
    mosaik,
    Offline,
    MosaikError,
    "The producer has no subscribers yet."
);
create_exception!(mosaik, Empty, MosaikError, "Nothing is ready to receive.");
create_exception!(
    mosaik,
    DecodeError,
    MosaikError,
    "A frame or datum failed to decode."
);
create_exception!(
    mosaik,
    ConnectError,
    MosaikError,
    "A peer could not be reached or refused the link."
);

pub fn value_error(argument: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{argument}: {message}"))
}

pub fn node_error(error: NodeError) -> PyErr {
    match error {
        NodeError::Config(ConfigError::NotLoopback { option, value }) => value_error(
            option,
            format!("must be a loopback address when local=True, got {value}"),
        ),
        NodeError::Config(ConfigError::NotLocal { option }) => value_error(
            option,
            "reaches beyond loopback, so it cannot be combined with local=True",
        ),
        NodeError::Config(e @ ConfigError::Bind(_)) => ConnectError::new_err(e.to_string()),
        NodeError::Closed => Closed::new_err("the network is closed"),
    }
}

pub fn link_error(error: LinkError) -> PyErr {
    match error {
        LinkError::Decode(e) => DecodeError::new_err(e.to_string()),
        other => ConnectError::new_err(other.to_string()),
    }
}

pub fn register(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("MosaikError", py.get_type::<MosaikError>())?;
    module.add("Closed", py.get_type::<Closed>())?;
    module.add("Full", py.get_type::<Full>())?;
    module.add("Offline", py.get_type::<Offline>())?;
    module.add("Empty", py.get_type::<Empty>())?;
    module.add("DecodeError", py.get_type::<DecodeError>())?;
    module.add("ConnectError", py.get_type::<ConnectError>())?;
    Ok(())
}
