//! `Catalog`: the signed entries this node currently believes in.
//!
//! Entries are keyed by peer id. An entry is accepted only if it belongs to
//! our network, is neither stale (older than `purge_after`) nor dated in the
//! future beyond `max_time_drift`, and is strictly newer than what we hold.
//! Our own entry is never stored here; it lives in `LocalPeer`.

use std::{collections::BTreeMap, time::Duration};

use iroh::EndpointId;

use super::{
    entry::{PeerEntry, PeerEntryVersion, SignedPeerEntry},
    rejection::Rejection,
};
//ENTRYUSE::{PeerEntry, PeerEntryVersion, SignedPeerEntry};
use crate::primitives::Digest;

/// Where an entry came from: gossiped entries must also be fresh (±drift).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Gossip,
    Sync,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upsert {
    New,
    Updated,
    Rejected(Rejection),
}

pub struct Catalog {
    local_id: EndpointId,
    network: Digest,
    purge_after_ms: i64,
    max_drift_ms: i64,
    signed: BTreeMap<EndpointId, SignedPeerEntry>,
    /// Peers that said goodbye, with the version they left at: a late copy
    /// of an older entry must not bring them back. Kept for `purge_after`.
    departed: BTreeMap<EndpointId, PeerEntryVersion>,
    /// Entries inserted locally, unsigned: never synced or gossiped, but they
    /// count as known peers (mosaik's `Discovery::insert`). A signed entry for
    /// the same peer replaces one.
    unsigned: BTreeMap<EndpointId, PeerEntry>,
}

impl Catalog {
    pub fn new(local_id: EndpointId, network: Digest, purge_after: Duration, max_drift: Duration) -> Self {
        Self {
            local_id,
            network,
            purge_after_ms: purge_after.as_millis() as i64,
            max_drift_ms: max_drift.as_millis() as i64,
            signed: BTreeMap::new(),
            departed: BTreeMap::new(),
            unsigned: BTreeMap::new(),
        }
    }

    /// Checks an entry against the catalog's rules without storing it.
    pub fn check(&self, entry: &SignedPeerEntry, now_ms: i64) -> Result<(), Rejection> {
        let e = entry.entry();
        if e.id() == self.local_id {
            return Err(Rejection::OwnEntry);
        }
        if e.network != self.network {
            return Err(Rejection::OtherNetwork);
        }
        let updated = e.version.updated_at_ms();
        if updated < now_ms - self.purge_after_ms {
            return Err(Rejection::Stale);
        }
        if updated > now_ms + self.max_drift_ms {
            return Err(Rejection::FromTheFuture);
        }
        Ok(())
    }

    /// Stores `entry` if it passes the rules and is strictly newer.
    pub fn upsert(&mut self, entry: SignedPeerEntry, now_ms: i64) -> Upsert {
        if let Err(rejection) = self.check(&entry, now_ms) {
            return Upsert::Rejected(rejection);
        }
        let id = entry.entry().id();
        if let Some(left_at) = self.departed.get(&id) {
            if entry.entry().version <= *left_at {
                return Upsert::Rejected(Rejection::NotNewer);
            }
            self.departed.remove(&id);
        }
        match self.signed.get(&id) {
            Some(held) if !self.is_stale(held, now_ms) && entry.entry().version <= held.entry().version => {
                Upsert::Rejected(Rejection::NotNewer)
            }
            Some(held) => {
                let was_stale = self.is_stale(held, now_ms);
                self.signed.insert(id, entry);
                if was_stale { Upsert::New } else { Upsert::Updated }
            }
            None => {
                self.unsigned.remove(&id);
                self.signed.insert(id, entry);
                Upsert::New
            }
        }
    }

    /// Inserts a local, unsigned entry; refused for our own id, another
    /// network, or a peer we hold a signed entry for.
    pub fn insert_unsigned(&mut self, entry: PeerEntry) -> bool {
        let id = entry.id();
        if id == self.local_id || entry.network != self.network || self.signed.contains_key(&id) {
            return false;
        }
        self.unsigned.insert(id, entry);
        true
    }

    pub fn remove_unsigned(&mut self, id: &EndpointId) -> Option<PeerEntry> {
        self.unsigned.remove(id)
    }

    pub fn unsigned(&self) -> impl Iterator<Item = &PeerEntry> {
        self.unsigned.values()
    }

    /// Whether `id` is a known peer, signed (and fresh) or inserted locally.
    pub fn knows(&self, id: &EndpointId, now_ms: i64) -> bool {
        self.get(id, now_ms).is_some() || self.unsigned.contains_key(id)
    }

    /// Removes `id` if `last_version` is at least what we hold (a departure).
    pub fn depart(&mut self, id: &EndpointId, last_version: PeerEntryVersion) -> Option<SignedPeerEntry> {
        match self.signed.get(id) {
            Some(held) if last_version >= held.entry().version => {
                self.departed.insert(*id, last_version);
                self.signed.remove(id)
            }
            _ => None,
        }
    }

    /// Removes every stale entry and returns them.
    pub fn purge_stale(&mut self, now_ms: i64) -> Vec<SignedPeerEntry> {
        let horizon = now_ms - self.purge_after_ms;
        self.departed
            .retain(|_, version| version.updated_at_ms() >= horizon);
        let stale: Vec<EndpointId> = self
            .signed
            .iter()
            .filter(|(_, e)| self.is_stale(e, now_ms))
            .map(|(id, _)| *id)
            .collect();
        stale.iter().filter_map(|id| self.signed.remove(id)).collect()
    }

    fn is_stale(&self, entry: &SignedPeerEntry, now_ms: i64) -> bool {
        entry.entry().version.updated_at_ms() < now_ms - self.purge_after_ms
    }

    /// Current (non-stale) peers, in peer-id order.
    pub fn peers(&self, now_ms: i64) -> impl Iterator<Item = &SignedPeerEntry> {
        self.signed.values().filter(move |e| !self.is_stale(e, now_ms))
    }

    pub fn get(&self, id: &EndpointId, now_ms: i64) -> Option<&SignedPeerEntry> {
        self.signed.get(id).filter(|e| !self.is_stale(e, now_ms))
    }

    pub fn len(&self, now_ms: i64) -> usize {
        self.peers(now_ms).count()
    }

    pub fn is_empty(&self, now_ms: i64) -> bool {
        self.len(now_ms) == 0
    }
}

#[cfg(test)]
mod tests {
    use iroh::{EndpointAddr, SecretKey};

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn signed(key: &SecretKey, network: &str, version: (i64, i64)) -> SignedPeerEntry {
        let mut entry = PeerEntry::new(Digest::from_name(network), EndpointAddr::new(key.public()));
        entry.version = PeerEntryVersion(version.0, version.1);
        entry.sign(key).unwrap()
    }

    fn catalog() -> (SecretKey, Catalog) {
        let me = SecretKey::from_bytes(&[1; 32]);
        let cat = Catalog::new(
            me.public(),
            Digest::from_name("demo"),
            Duration::from_secs(300),
            Duration::from_secs(50),
        );
        (me, cat)
    }

    #[test]
    fn new_then_newer_then_older() {
        let (_, mut cat) = catalog();
        let peer = SecretKey::from_bytes(&[2; 32]);
        assert_eq!(cat.upsert(signed(&peer, "demo", (NOW, NOW)), NOW), Upsert::New);
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (NOW, NOW + 1)), NOW),
            Upsert::Updated
        );
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (NOW, NOW + 1)), NOW),
            Upsert::Rejected(Rejection::NotNewer)
        );
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (NOW, NOW)), NOW),
            Upsert::Rejected(Rejection::NotNewer)
        );
        // A restart (newer started_at) supersedes even with an older updated_at.
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (NOW + 5, NOW - 10)), NOW),
            Upsert::Updated
        );
        assert_eq!(cat.len(NOW), 1);
    }

    #[test]
    fn rejects_own_foreign_stale_and_future_entries() {
        let (me, mut cat) = catalog();
        let peer = SecretKey::from_bytes(&[2; 32]);
        assert_eq!(
            cat.upsert(signed(&me, "demo", (NOW, NOW)), NOW),
            Upsert::Rejected(Rejection::OwnEntry)
        );
        assert_eq!(
            cat.upsert(signed(&peer, "other", (NOW, NOW)), NOW),
            Upsert::Rejected(Rejection::OtherNetwork)
        );
        let old = NOW - 301_000;
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (old, old)), NOW),
            Upsert::Rejected(Rejection::Stale)
        );
        let future = NOW + 51_000;
        assert_eq!(
            cat.upsert(signed(&peer, "demo", (future, future)), NOW),
            Upsert::Rejected(Rejection::FromTheFuture)
        );
        assert!(cat.is_empty(NOW));
    }

    #[test]
    fn stale_entries_are_hidden_then_purged() {
        let (_, mut cat) = catalog();
        let peer = SecretKey::from_bytes(&[2; 32]);
        cat.upsert(signed(&peer, "demo", (NOW, NOW)), NOW);
        let later = NOW + 300_001;
        assert!(cat.get(&peer.public(), later).is_none());
        assert_eq!(cat.purge_stale(later).len(), 1);
        assert!(cat.is_empty(later));
    }

    #[test]
    fn unsigned_entries_are_known_until_a_signed_one_arrives() {
        let (me, mut cat) = catalog();
        let peer = SecretKey::from_bytes(&[2; 32]);
        let unsigned = signed(&peer, "demo", (NOW, NOW)).entry().clone();
        assert!(!cat.insert_unsigned(signed(&me, "demo", (NOW, NOW)).entry().clone()));
        assert!(!cat.insert_unsigned(signed(&peer, "other", (NOW, NOW)).entry().clone()));
        assert!(cat.insert_unsigned(unsigned));
        assert!(cat.knows(&peer.public(), NOW));
        assert!(cat.is_empty(NOW), "unsigned entries are not signed peers");
        assert_eq!(cat.upsert(signed(&peer, "demo", (NOW, NOW)), NOW), Upsert::New);
        assert_eq!(cat.unsigned().count(), 0);
        assert!(cat.knows(&peer.public(), NOW));
    }

    #[test]
    fn departure_needs_a_version_at_least_as_new() {
        let (_, mut cat) = catalog();
        let peer = SecretKey::from_bytes(&[2; 32]);
        cat.upsert(signed(&peer, "demo", (NOW, NOW + 5)), NOW);
        assert!(
            cat.depart(&peer.public(), PeerEntryVersion(NOW, NOW + 4))
                .is_none()
        );
        assert!(
            cat.depart(&peer.public(), PeerEntryVersion(NOW, NOW + 5))
                .is_some()
        );
        assert!(cat.is_empty(NOW));
    }
}
