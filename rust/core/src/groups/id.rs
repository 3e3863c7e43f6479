//! `GroupId`: the identity of a group, derived exactly as mosaik 0.3.13 does.
//!
//! A chain of `derive(prev, x) = blake3(prev ‖ x)` steps over the hashed key
//! secret, the consensus digest (the three heartbeat parameters), the state
//! machine's signature, the catch-up signature and each ticket validator's
//! signature in order (groups spec §1.2). Two members cooperate only if all
//! of these agree.

use std::time::Duration;

use crate::primitives::Digest;

use super::key::GroupKey;

/// A group's 32-byte id.
pub type GroupId = Digest;

/// `blake3(prev ‖ next)`: mosaik's `Digest::derive`.
pub fn derive(prev: &Digest, next: &[u8]) -> Digest {
    prev.derive(next)
}

/// The digest of the consensus parameters that are part of the id: each
/// as whole milliseconds (or a count) in 16 little-endian bytes.
pub fn consensus_digest(heartbeat_interval: Duration, heartbeat_jitter: Duration, max_missed: u32) -> Digest {
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(&heartbeat_interval.as_millis().to_le_bytes());
    bytes.extend_from_slice(&heartbeat_jitter.as_millis().to_le_bytes());
    bytes.extend_from_slice(&u128::from(max_missed).to_le_bytes());
    Digest::hash(&bytes)
}

/// The signature of mosaik's `LogReplaySync<M>`: it names the machine's
/// Rust type, so a member of another language must know that name.
pub fn log_replay_signature(machine_type_name: &str, batch_size: u64, fetch_timeout: Duration) -> Digest {
    let base = Digest::hash(b"mosaik_log_replay_sync");
    let named = derive(&base, machine_type_name.as_bytes());
    let batched = derive(&named, &batch_size.to_le_bytes());
    derive(&batched, &fetch_timeout.as_secs().to_le_bytes())
}

/// Everything a group id is made of.
#[derive(Clone, Debug)]
pub struct GroupIdentity {
    pub key: GroupKey,
    pub consensus: Digest,
    pub machine: Digest,
    pub state_sync: Digest,
    pub validators: Vec<Digest>,
}

impl GroupIdentity {
    pub fn group_id(&self) -> GroupId {
        let mut id = self.key.hashed();
        id = derive(&id, self.consensus.as_bytes());
        id = derive(&id, self.machine.as_bytes());
        id = derive(&id, self.state_sync.as_bytes());
        for validator in &self.validators {
            id = derive(&id, validator.as_bytes());
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::machine::{NOOP_SIGNATURE_NAME, NOOP_TYPE_NAME};

    /// groups spec §8, checked against the real crate.
    #[test]
    fn noop_group_id_matches_mosaik() {
        let consensus = consensus_digest(Duration::from_millis(500), Duration::from_millis(150), 10);
        assert_eq!(
            consensus.to_hex(),
            "adfe74a86dd01a601b37bf2fa5b6bb292ac49656393b7e0ad47f7766c5bb8022"
        );
        let machine = Digest::from_name(NOOP_SIGNATURE_NAME);
        assert_eq!(
            machine.to_hex(),
            "8149f518646f75ad984e3d0256bff30e9256ec4659057f2bfe8f57282bb0cf61"
        );
        let sync = log_replay_signature(NOOP_TYPE_NAME, 2000, Duration::from_secs(25));
        assert_eq!(
            sync.to_hex(),
            "eaaef1b2c7c7717fda72accddba9b23ba259f2b149ceb20e365253e58f667d64"
        );
        let identity = GroupIdentity {
            key: GroupKey::from_secret("demo-group-secret"),
            consensus,
            machine,
            state_sync: sync,
            validators: vec![],
        };
        assert_eq!(
            identity.group_id().to_hex(),
            "2f3948c78d20f9c6b5486a51b426137f90f2c3e935d3d21ce2537b7555fa8f03"
        );
    }

    #[test]
    fn sub_millisecond_parts_do_not_change_the_digest() {
        assert_eq!(
            consensus_digest(Duration::from_micros(500_900), Duration::from_millis(150), 10),
            consensus_digest(Duration::from_millis(500), Duration::from_millis(150), 10)
        );
    }
}
