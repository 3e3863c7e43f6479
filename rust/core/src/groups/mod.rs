//! Groups: members sharing a secret key replicate one state machine through
//! mosaik's Raft variant, over bonds (one QUIC connection per pair of
//! members on ALPN `/mosaik/groups/1`).
//!
//! - [`key`], [`id`], [`config`], [`machine`]: what a group is and how its
//!   id is derived;
//! - [`bond`]: the handshake with its key proof, heartbeats, bond frames;
//! - [`raft`]: the consensus core, deterministic and free of I/O;
//! - [`replay`]: catch-up by log replay (mosaik's `LogReplaySync`);
//! - [`group`]: a member (its handle and its worker), [`service`]: the
//!   groups a node runs, [`protocol`]: how the node serves bonds.

pub mod bond;
pub mod config;
pub mod error;
pub mod group;
pub mod id;
pub mod key;
pub mod machine;
pub mod protocol;
pub mod raft;
pub mod rejection;
pub mod replay;
pub mod service;

pub use config::{ConsensusConfig, ConsensusConfigError, ReplayConfig};
pub use error::GroupError;
pub use group::{Group, QueryTask, Status, Work};
pub use id::GroupId;
pub use key::GroupKey;
pub use machine::MachineSpec;
pub use raft::{RoleKind, SafetyRules};
pub use service::{Groups, JoinOptions};

/// The groups ALPN, byte for byte as mosaik registers it.
pub const GROUPS_ALPN: &[u8] = b"/mosaik/groups/1";
