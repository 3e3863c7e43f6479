//! Groups: members sharing a secret key replicate one state machine through
//! mosaik's Raft variant, over bonds (one QUIC connection per pair of
//! members on ALPN `/mosaik/groups/1`).
//!
//! - [`key`], [`id`], [`config`], [`machine`]: what a group is and how its
//!   id is derived;
//! - [`bond`]: the handshake with its key proof, heartbeats, bond frames;
//! - [`raft`]: the consensus core, deterministic and free of I/O;
//! - [`replay`]: catch-up by log replay (mosaik's `LogReplaySync`).

pub mod config;
pub mod id;
pub mod key;
pub mod machine;
pub mod raft;
pub mod replay;
pub mod bond {
    pub mod protocol;
}

/// The groups ALPN, byte for byte as mosaik registers it.
pub const GROUPS_ALPN: &[u8] = b"/mosaik/groups/1";
