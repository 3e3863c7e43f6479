//! `LocalPeer`: this node's own identity and its current signed entry.
//!
//! Every signed entry this node hands out (gossip, catalog sync, ping
//! replies) is made here, so versions only ever grow and every change is
//! signed exactly once. Answers to others (ping replies, our entry in a
//! served snapshot) are bumped copies that are not stored, as mosaik's: a
//! peer asking 3000 times a second must not push our `updated_at` ahead of
//! the clock (peers drop entries dated too far in the future).

use std::sync::Mutex;

use iroh::{EndpointAddr, SecretKey};

use super::entry::{EntryError, PeerEntry, PeerEntryVersion, SignedPeerEntry};
use crate::primitives::Digest;

pub struct LocalPeer {
    key: SecretKey,
    network: Digest,
    signed: Mutex<Signed>,
}

struct Signed {
    /// The entry as last changed and published.
    current: SignedPeerEntry,
    /// The newest version handed out, copies included: the next change
    /// must be newer than any copy a peer may hold.
    newest_handed_out: PeerEntryVersion,
}

impl LocalPeer {
    pub fn new(
        key: SecretKey,
        network: Digest,
        address: EndpointAddr,
        tags: impl IntoIterator<Item = Digest>,
    ) -> Result<Self, EntryError> {
        let mut entry = PeerEntry::new(network, address);
        entry.tags.extend(tags);
        let current = entry.sign(&key)?;
        Ok(Self {
            key,
            network,
            signed: Mutex::new(Signed {
                newest_handed_out: current.entry().version,
                current,
            }),
        })
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    pub fn network(&self) -> Digest {
        self.network
    }

    /// The current signed entry, as last published.
    pub fn current(&self) -> SignedPeerEntry {
        self.signed.lock().expect("local entry").current.clone()
    }

    pub fn version(&self) -> PeerEntryVersion {
        self.signed.lock().expect("local entry").current.entry().version
    }

    /// The newest version any peer may hold of our entry, copies included:
    /// what a goodbye must cover, or a peer holding a copy keeps us.
    pub fn newest_handed_out(&self) -> PeerEntryVersion {
        self.signed.lock().expect("local entry").newest_handed_out
    }

    /// Applies `change`, bumps the version and re-signs. Returns the new
    /// entry, or `None` when `change` reports that nothing changed.
    pub fn update(&self, change: impl FnOnce(&mut PeerEntry) -> bool) -> Option<SignedPeerEntry> {
        let mut signed = self.signed.lock().expect("local entry");
        let mut entry = signed.current.entry().clone();
        if !change(&mut entry) {
            return None;
        }
        entry.version = entry.version.max(signed.newest_handed_out).increment();
        let next = entry.sign(&self.key).expect("our own key signs our own entry");
        signed.newest_handed_out = next.entry().version;
        signed.current = next.clone();
        Some(next)
    }

    /// A freshly bumped entry with `address`, stored (periodic announces).
    pub fn refreshed(&self, address: EndpointAddr) -> SignedPeerEntry {
        self.update(|entry| {
            entry.address = address;
            true
        })
        .expect("refresh always changes the version")
    }

    /// A freshly signed copy of our entry for one answer (a ping reply, our
    /// entry in a snapshot), dated now and not stored: however often peers
    /// ask, `updated_at` stays within a millisecond of the clock. A changed
    /// `address` is a real change and is stored.
    pub fn signed_copy(&self, address: EndpointAddr) -> SignedPeerEntry {
        let mut signed = self.signed.lock().expect("local entry");
        if signed.current.entry().address != address {
            drop(signed);
            return self.refreshed(address);
        }
        let mut entry = signed.current.entry().clone();
        entry.version = entry.version.increment();
        signed.newest_handed_out = signed.newest_handed_out.max(entry.version);
        drop(signed);
        entry.sign(&self.key).expect("our own key signs our own entry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalPeer {
        let key = SecretKey::from_bytes(&[3; 32]);
        let address = EndpointAddr::new(key.public());
        LocalPeer::new(key, Digest::from_name("demo"), address, []).unwrap()
    }

    #[test]
    fn copies_stay_at_the_clock_and_changes_stay_newer_than_copies() {
        let local = local();
        let address = local.current().entry().address.clone();
        let mut newest = local.version();
        // 3000 pings a second for 5 s.
        for _ in 0..15_000 {
            let copy = local.signed_copy(address.clone());
            assert!(copy.entry().version >= newest, "copies never go back");
            newest = copy.entry().version;
        }
        assert!(
            newest.updated_at_ms() <= super::super::entry::now_ms() + 1,
            "dated at the clock"
        );
        assert!(local.version() < newest, "copies are not stored");
        let changed = local.update(|e| e.tags.insert(Digest::from_name("t"))).unwrap();
        assert!(changed.entry().version > newest, "a change supersedes every copy");
    }
}
