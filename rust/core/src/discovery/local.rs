//! `LocalPeer`: this node's own identity and its current signed entry.
//!
//! Every signed entry this node hands out (gossip, catalog sync, ping
//! replies) is made here, so versions only ever grow and every change is
//! signed exactly once.

use std::sync::Mutex;

use iroh::{EndpointAddr, SecretKey};

use super::entry::{EntryError, PeerEntry, PeerEntryVersion, SignedPeerEntry};
use crate::primitives::Digest;

pub struct LocalPeer {
    key: SecretKey,
    network: Digest,
    signed: Mutex<SignedPeerEntry>,
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
        let signed = entry.sign(&key)?;
        Ok(Self {
            key,
            network,
            signed: Mutex::new(signed),
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
        self.signed.lock().expect("local entry").clone()
    }

    pub fn version(&self) -> PeerEntryVersion {
        self.signed.lock().expect("local entry").entry().version
    }

    /// Applies `change`, bumps the version and re-signs. Returns the new
    /// entry, or `None` when `change` reports that nothing changed.
    pub fn update(&self, change: impl FnOnce(&mut PeerEntry) -> bool) -> Option<SignedPeerEntry> {
        let mut signed = self.signed.lock().expect("local entry");
        let mut entry = signed.entry().clone();
        if !change(&mut entry) {
            return None;
        }
        entry.version = entry.version.increment();
        let next = entry.sign(&self.key).expect("our own key signs our own entry");
        *signed = next.clone();
        Some(next)
    }

    /// A freshly bumped entry with `address` (ping replies, periodic announces).
    pub fn refreshed(&self, address: EndpointAddr) -> SignedPeerEntry {
        self.update(|entry| {
            entry.address = address;
            true
        })
        .expect("refresh always changes the version")
    }
}
