//! `LocalPeer`: this node's own identity and its current entry.
//!
//! Every signed entry this node hands out (ping replies now, announces and
//! catalog syncs later) is made here, so versions only ever grow.

use std::sync::Mutex;

use iroh::{EndpointAddr, SecretKey};

use super::entry::{EntryError, PeerEntry, SignedPeerEntry};
use crate::primitives::Digest;

pub struct LocalPeer {
    key: SecretKey,
    entry: Mutex<PeerEntry>,
}

impl LocalPeer {
    pub fn new(
        key: SecretKey,
        network: Digest,
        address: EndpointAddr,
        tags: impl IntoIterator<Item = Digest>,
    ) -> Self {
        let mut entry = PeerEntry::new(network, address);
        entry.tags.extend(tags);
        Self {
            key,
            entry: Mutex::new(entry),
        }
    }

    pub fn network(&self) -> Digest {
        self.entry.lock().expect("entry lock").network
    }

    /// A copy of the current, unsigned entry.
    pub fn entry(&self) -> PeerEntry {
        self.entry.lock().expect("entry lock").clone()
    }

    /// Bumps the version, refreshes the address and signs. mosaik does not
    /// store a ping's bump; we do, so a later update can never tie with it.
    pub fn signed_fresh(&self, address: EndpointAddr) -> Result<SignedPeerEntry, EntryError> {
        let mut entry = self.entry.lock().expect("entry lock");
        entry.version = entry.version.increment();
        entry.address = address;
        entry.clone().sign(&self.key)
    }
}
