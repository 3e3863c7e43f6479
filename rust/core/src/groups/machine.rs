//! What the group layer knows of a state machine: its identity.
//!
//! The core replicates commands as opaque bytes (mosaik's `Encoded<T>`);
//! the machine that applies them lives with the user (a Python object, or
//! mosaik's NoOp). Its signature and, for catch-up, its Rust type name
//! feed the group id, so a member written in any language meets Rust
//! members of the same machine.

use crate::primitives::Digest;

use super::{config::ReplayConfig, id::log_replay_signature};

/// mosaik's `NoOp` signature: `Digest::from("mosaik_noop_state_machine")`.
pub const NOOP_SIGNATURE_NAME: &str = "mosaik_noop_state_machine";
/// `core::any::type_name::<NoOp>()` in mosaik 0.3.13.
pub const NOOP_TYPE_NAME: &str = "mosaik::groups::machine::noop::NoOp";
/// A NoOp command: postcard of `()` inside `Encoded`, i.e. no bytes.
pub const NOOP_COMMAND: &[u8] = &[];

/// The identity of a state machine, as far as the group id is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineSpec {
    /// The user's `signature()`.
    pub signature: Digest,
    /// The Rust type name Rust members' `LogReplaySync<M>` hashes.
    pub type_name: String,
}

impl MachineSpec {
    /// mosaik's built-in `NoOp` machine.
    pub fn noop() -> Self {
        Self {
            signature: Digest::from_name(NOOP_SIGNATURE_NAME),
            type_name: NOOP_TYPE_NAME.to_owned(),
        }
    }

    pub fn state_sync_signature(&self, replay: &ReplayConfig) -> Digest {
        log_replay_signature(&self.type_name, replay.batch_size, replay.fetch_timeout)
    }
}
