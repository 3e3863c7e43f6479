//! Discovery: how nodes of one network learn about each other.
//!
//! So far this holds the signed [`entry::PeerEntry`] every node publishes
//! and the [`ping`] protocol, which returns a peer's freshly signed entry.

pub mod entry;
pub mod local;
pub mod ping;

pub use entry::{PeerEntry, PeerEntryVersion, SignedPeerEntry};
