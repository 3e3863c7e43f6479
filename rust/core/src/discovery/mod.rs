//! Discovery: how nodes of one network learn about each other.
//!
//! Each node publishes a signed [`entry::PeerEntry`]. Entries spread by
//! gossip ([`announce`], run by the [`worker`]) and by full catalog
//! exchanges ([`sync`]); [`service::Discovery`] applies the [`catalog`]'s
//! rules to everything that arrives. [`ping`] asks one peer for its entry.

pub mod announce;
pub mod catalog;
pub mod config;
pub mod dht;
pub mod entry;
pub mod event;
pub mod intake;
pub mod local;
pub mod ping;
pub mod protocol;
pub mod rejection;
pub mod service;
pub mod source_budget;
pub mod sync;
pub mod sync_queue;
pub mod worker;

pub use config::{DiscoveryConfig, DiscoveryConfigError};
pub use entry::{PeerEntry, PeerEntryVersion, SignedPeerEntry, Ticket, UnverifiedEntry};
pub use event::Event;
pub use rejection::Rejection;
pub use service::Discovery;
