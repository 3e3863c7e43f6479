//! Pure-Rust core of mosaik for Python.
//!
//! This crate speaks mosaik 0.3.13's wire protocol on real iroh 0.97
//! endpoints and knows nothing about Python: the PyO3 crate in
//! `rust/python` only converts types and errors. Modules mirror the
//! concepts of the protocol specs:
//!
//! - [`primitives`]: 32-byte ids (`Digest`) and postcard helpers;
//! - [`network`]: the endpoint builder, the `Link` framing, close reasons
//!   and the running [`network::Node`];
//! - [`discovery`]: signed peer entries, catalog, gossip, sync, ping, DHT;
//! - [`streams`]: producers, consumers and the subscription acceptor.

pub mod discovery;
pub mod network;
pub mod primitives;
pub mod streams;

pub use network::{Node, NodeConfig, NodeError, RelayChoice};
pub use primitives::Digest;
