//! Python exception types, and the one map from core errors to them.
//!
//! The classes live here so Rust can raise them; `mosaik.errors` re-exports
//! them. Every core error reaches Python through [`Error`]: the binding
//! wraps what failed (`py_err(e)`), and `From<Error> for PyErr` decides the
//! exception class and the message in one place, as polars' `PyPolarsErr`
//! does. Configuration errors display as `field: rule`, so each `ValueError`
//! names its argument.

use mosaik_core::{
    ConfigError, NodeError,
    discovery::sync::SyncError,
    groups::GroupError,
    network::{AddressError, LinkError},
    streams::{SendError, StreamsError},
};
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
    "Nobody can take it now: a producer without subscribers, a group without a leader."
);
create_exception!(
    mosaik,
    OutcomeUnknown,
    Offline,
    "A command reached a leader that did not confirm it in time: it may still be committed."
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

/// A core error on its way to Python.
#[derive(Debug)]
pub enum Error {
    Node(NodeError),
    Sync(SyncError),
    Send(SendError),
    Streams(StreamsError),
    Group(GroupError),
    /// An address string that does not parse, with the argument it came in.
    Address(&'static str, AddressError),
}

macro_rules! from_core {
    ($($variant:ident($error:ty),)*) => {
        $(impl From<$error> for Error {
            fn from(error: $error) -> Self {
                Error::$variant(error)
            }
        })*
    };
}

from_core! {
    Group(GroupError),
    Node(NodeError),
    Sync(SyncError),
    Send(SendError),
    Streams(StreamsError),
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Error::Node(NodeError::Config(error))
    }
}

/// `error` as the Python exception it maps to.
pub fn py_err(error: impl Into<Error>) -> PyErr {
    PyErr::from(error.into())
}

/// Speaks of `local=True` where the core says "local mode".
fn config_message(error: &ConfigError) -> String {
    error.to_string().replace("local mode", "local=True")
}

impl From<Error> for PyErr {
    fn from(error: Error) -> PyErr {
        match error {
            Error::Node(NodeError::Config(ConfigError::Bind(reason))) => {
                ConnectError::new_err(format!("could not bind the endpoint: {reason}"))
            }
            Error::Node(NodeError::Config(config)) => PyValueError::new_err(config_message(&config)),
            Error::Node(NodeError::Closed) => Closed::new_err("the network is closed"),
            Error::Node(NodeError::Link(link)) => match link {
                LinkError::Decode(e) => DecodeError::new_err(e.to_string()),
                other => ConnectError::new_err(other.to_string()),
            },
            Error::Node(NodeError::Ping(ping)) => ConnectError::new_err(ping.to_string()),
            Error::Sync(sync) => ConnectError::new_err(sync.to_string()),
            Error::Send(SendError::Offline(_)) => Offline::new_err("the producer has no subscribers yet"),
            Error::Send(SendError::Full(_)) => Full::new_err("the producer's buffer is full"),
            Error::Send(SendError::Closed(_)) => Closed::new_err("the producer is closed"),
            Error::Send(too_large @ SendError::TooLarge(_)) => value_error("datum", too_large),
            Error::Streams(duplicate @ StreamsError::DuplicateProducer(_)) => {
                value_error("stream", duplicate)
            }
            // Configuration errors name their field themselves.
            Error::Streams(other) => PyValueError::new_err(other.to_string()),
            Error::Address(argument, e) => value_error(argument, e),
            Error::Group(group) => match group {
                GroupError::Offline | GroupError::Lost => Offline::new_err(group.to_string()),
                GroupError::OutcomeUnknown => OutcomeUnknown::new_err(group.to_string()),
                GroupError::Closed => Closed::new_err(group.to_string()),
                GroupError::AlreadyJoined(_) => value_error("key", group),
                GroupError::NoCommands => value_error("commands", group),
                GroupError::Config(e) => value_error("consensus", e),
            },
        }
    }
}

/// A `ValueError` naming `argument`: `"{argument}: {message}"`.
pub fn value_error(argument: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{argument}: {message}"))
}

pub fn register(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("MosaikError", py.get_type::<MosaikError>())?;
    module.add("Closed", py.get_type::<Closed>())?;
    module.add("Full", py.get_type::<Full>())?;
    module.add("Offline", py.get_type::<Offline>())?;
    module.add("Empty", py.get_type::<Empty>())?;
    module.add("OutcomeUnknown", py.get_type::<OutcomeUnknown>())?;
    module.add("DecodeError", py.get_type::<DecodeError>())?;
    module.add("ConnectError", py.get_type::<ConnectError>())?;
    Ok(())
}
