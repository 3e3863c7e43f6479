//! Pure-Rust core of mosaik for Python.
//!
//! This crate speaks mosaik 0.3.13's wire protocol on real iroh 0.97
//! endpoints and knows nothing about Python: the PyO3 crate in
//! `rust/python` only converts types and errors. Modules mirror the
//! concepts of the protocol specs:
//!
//! - [`primitives`]: 32-byte ids (`Digest`), postcard helpers, the varint;
//! - [`network`]: transport only: the `Link` framing, close reasons, the
//!   protocol traits, route repair;
//! - [`discovery`]: signed peer entries, catalog, gossip, sync, ping, DHT;
//! - [`streams`]: producers, consumers and the subscription acceptor;
//! - [`tickets`]: credentials in discovery entries and the validators
//!   that gate streams and groups (JWT);
//! - [`groups`]: members replicating a state machine through mosaik's Raft
//!   variant, over bonds;
//! - [`node`]: composes a running [`Node`] from the endpoint and the
//!   subsystems, each installing its own protocols.
//!
//! Imports point down only: `node` may use every subsystem, a subsystem
//! uses `network` and `primitives`, and `network` uses nothing above it.

pub mod discovery;
pub mod groups;
pub mod network;
pub mod node;
pub mod primitives;
pub mod streams;
pub mod tickets;

pub use node::{ConfigError, Node, NodeConfig, NodeError, RelayChoice};
pub use primitives::Digest;
