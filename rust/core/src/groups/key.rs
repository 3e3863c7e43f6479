//! `GroupKey`: the shared secret of a group, and the bond proof made from it.
//!
//! The secret never crosses the wire. Each side of a bond proves it holds
//! the key with `blake3(blake3(secret ‖ ekm) ‖ sender_id)`, where `ekm` is
//! 32 bytes of TLS exported keying material of that very connection (label
//! = the GroupId, context = the groups ALPN): the proof cannot be replayed
//! on another connection or reflected back (groups spec §2.3).

use std::fmt;

use iroh::{EndpointId, endpoint::Connection};

use crate::primitives::Digest;

use super::id::GroupId;

/// The 32-byte secret shared by a group's members.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GroupKey {
    secret: Digest,
}

impl GroupKey {
    /// The secret as given.
    pub const fn new(secret: Digest) -> Self {
        Self { secret }
    }

    /// mosaik's `GroupKey::from_secret(&str)`: 64 hex characters are the
    /// secret itself, anything else is hashed.
    pub fn from_secret(secret: &str) -> Self {
        Self::new(Digest::from_name(secret))
    }

    pub fn secret(&self) -> &Digest {
        &self.secret
    }

    /// The first step of the group id: `blake3(secret)`.
    pub fn hashed(&self) -> Digest {
        Digest::hash(self.secret.as_bytes())
    }

    /// The proof `sender` gives over a connection whose exported keying
    /// material is `ekm`.
    pub fn proof(&self, ekm: &Digest, sender: &EndpointId) -> Digest {
        let keyed = Digest::hash(&[self.secret.as_bytes().as_slice(), ekm.as_bytes()].concat());
        Digest::hash(&[keyed.as_bytes().as_slice(), sender.as_bytes()].concat())
    }
}

impl fmt::Debug for GroupKey {
    /// Masked, as mosaik's `Display`: first byte, stars, last byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.secret.as_bytes();
        write!(f, "GroupKey({:02x}****{:02x})", bytes[0], bytes[31])
    }
}

/// The ALPN the groups protocol exports keying material under.
pub const EKM_CONTEXT: &[u8] = super::GROUPS_ALPN;
/// The label of the bond id (local only; both ends derive the same value).
pub const BOND_ID_LABEL: &[u8] = b"group_bond_id";

/// 32 bytes of keying material exported from `connection`'s TLS session
/// under `label` (mosaik's `Link::shared_random`).
pub fn shared_random(connection: &Connection, label: &[u8]) -> Digest {
    let mut out = [0u8; 32];
    connection
        .export_keying_material(&mut out, label, EKM_CONTEXT)
        .expect("a 32-byte export never fails on an established connection");
    Digest::from_bytes(out)
}

/// The keying material a bond proof for `group` is made from.
pub fn proof_material(connection: &Connection, group: &GroupId) -> Digest {
    shared_random(connection, group.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_secret_hashes_text_and_takes_hex() {
        let key = GroupKey::from_secret("demo-group-secret");
        assert_eq!(
            key.secret().to_hex(),
            "6f900cd7c4f5fb89d70c8f9eafd82e48d7c4df26e2c8f5302dd7a460567bb8c2"
        );
        assert_eq!(
            key.hashed().to_hex(),
            "1d1b8d7c35d39dacaf05931f1e00ffc9267d50d9b0edeeef78e294df5c6573a4"
        );
        let hex = key.secret().to_hex();
        assert_eq!(GroupKey::from_secret(&hex), key);
    }

    #[test]
    fn debug_masks_the_secret() {
        let shown = format!("{:?}", GroupKey::from_secret("demo-group-secret"));
        assert_eq!(shown, "GroupKey(6f****c2)");
    }
}
