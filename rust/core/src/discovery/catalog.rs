//! `Catalog`: the signed entries this node currently believes in.
//!
//! Entries are keyed by peer id. An entry is accepted only if it belongs to
//! our network, is neither stale (older than `purge_after`) nor dated in the
//! future beyond `max_time_drift`, and is strictly newer than what we hold.
//! A new peer is refused once the catalog holds `max_entries`, unless it is
//! *confirmed*: its entry came from the peer itself, over a connection its
//! key authenticated. A confirmed peer then takes the place of the oldest
//! unconfirmed entry, so entries forged for fresh identities cannot lock
//! live peers out. Our own entry is never stored here; it lives in
//! `LocalPeer`.
//!
//! Every operation on one entry is O(log n): entries are also indexed by
//! `updated_at`, which is what finds stale entries, counts fresh ones, and
//! orders a served snapshot newest first, without walking the catalog.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use iroh::EndpointId;

use super::{
    entry::{PeerEntry, PeerEntryVersion, SignedPeerEntry},
    rejection::Rejection,
};
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

/// What an entry that passes the rules would be to the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fresh {
    /// A peer we do not hold (or hold only as stale): it takes a place.
    New,
    /// A newer entry of a peer we hold.
    Newer,
}

/// The `updated_at` index key: the id's bytes make keys unique and give
/// every `updated_at` a smallest key.
type UpdatedKey = (i64, [u8; 32]);

pub struct Catalog {
    local_id: EndpointId,
    network: Digest,
    purge_after_ms: i64,
    max_drift_ms: i64,
    max_entries: usize,
    signed: BTreeMap<EndpointId, SignedPeerEntry>,
    /// `signed`, ordered by `updated_at`.
    by_update: BTreeMap<UpdatedKey, EndpointId>,
    /// Peers of `signed` whose entry came from themselves.
    confirmed: HashSet<EndpointId>,
    /// Peers that said goodbye, with the version they left at: a late copy
    /// of an older entry must not bring them back. Kept for `purge_after`.
    departed: BTreeMap<EndpointId, PeerEntryVersion>,
    /// Entries inserted locally, unsigned: never synced or gossiped, but they
    /// count as known peers (mosaik's `Discovery::insert`). A signed entry for
    /// the same peer replaces one.
    unsigned: BTreeMap<EndpointId, PeerEntry>,
}

fn updated_key(entry: &PeerEntry) -> UpdatedKey {
    (entry.version.updated_at_ms(), *entry.id().as_bytes())
}

impl Catalog {
    pub fn new(
        local_id: EndpointId,
        network: Digest,
        purge_after: Duration,
        max_drift: Duration,
        max_entries: usize,
    ) -> Self {
        Self {
            local_id,
            network,
            purge_after_ms: purge_after.as_millis() as i64,
            max_drift_ms: max_drift.as_millis() as i64,
            max_entries,
            signed: BTreeMap::new(),
            by_update: BTreeMap::new(),
            confirmed: HashSet::new(),
            departed: BTreeMap::new(),
            unsigned: BTreeMap::new(),
        }
    }

    /// Checks an entry against the catalog's rules without storing it.
    pub fn check(&self, e: &PeerEntry, now_ms: i64) -> Result<(), Rejection> {
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

    /// What `entry` would be to the catalog, or why it would be refused;
    /// nothing is stored, and the signature is not looked at (callers verify
    /// only what would be taken).
    pub fn classify(&self, entry: &PeerEntry, now_ms: i64) -> Result<Fresh, Rejection> {
        self.check(entry, now_ms)?;
        let id = entry.id();
        if self
            .departed
            .get(&id)
            .is_some_and(|left_at| entry.version <= *left_at)
        {
            return Err(Rejection::NotNewer);
        }
        match self.signed.get(&id) {
            Some(held) if self.is_stale(held, now_ms) => Ok(Fresh::Newer),
            Some(held) if entry.version <= held.entry().version => Err(Rejection::NotNewer),
            Some(_) => Ok(Fresh::Newer),
            None if self.signed.len() >= self.max_entries => Err(Rejection::CatalogFull),
            None => Ok(Fresh::New),
        }
    }

    /// Stores `entry` if it passes the rules, is strictly newer, and (for a
    /// new peer) the catalog has room.
    pub fn upsert(&mut self, entry: SignedPeerEntry, now_ms: i64) -> Upsert {
        if let Err(rejection) = self.classify(entry.entry(), now_ms) {
            return Upsert::Rejected(rejection);
        }
        let id = entry.entry().id();
        self.departed.remove(&id);
        self.unsigned.remove(&id);
        let key = updated_key(entry.entry());
        match self.signed.insert(id, entry) {
            Some(held) => {
                self.by_update.remove(&updated_key(held.entry()));
                self.by_update.insert(key, id);
                if self.is_stale(&held, now_ms) {
                    Upsert::New
                } else {
                    Upsert::Updated
                }
            }
            None => {
                self.by_update.insert(key, id);
                Upsert::New
            }
        }
    }

    fn remove_signed(&mut self, id: &EndpointId) -> Option<SignedPeerEntry> {
        let removed = self.signed.remove(id)?;
        self.by_update.remove(&updated_key(removed.entry()));
        self.confirmed.remove(id);
        Some(removed)
    }

    /// Marks `id`, which we hold, as confirmed by the peer itself.
    pub fn confirm(&mut self, id: EndpointId) {
        if self.signed.contains_key(&id) {
            self.confirmed.insert(id);
        }
    }

    /// When full, makes room for `entry`, which its own peer just sent us:
    /// removes the least recently updated unconfirmed entry and returns it.
    pub fn make_room_for_confirmed(&mut self, entry: &PeerEntry, now_ms: i64) -> Option<SignedPeerEntry> {
        if self.classify(entry, now_ms) != Err(Rejection::CatalogFull) {
            return None;
        }
        let oldest = self
            .by_update
            .values()
            .find(|id| !self.confirmed.contains(*id))
            .copied()?;
        self.remove_signed(&oldest)
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
                self.remove_signed(id)
            }
            _ => None,
        }
    }

    /// The smallest index key of a fresh entry.
    fn horizon(&self, now_ms: i64) -> UpdatedKey {
        (now_ms - self.purge_after_ms, [0; 32])
    }

    /// Removes every stale entry and returns them.
    pub fn purge_stale(&mut self, now_ms: i64) -> Vec<SignedPeerEntry> {
        let horizon = self.horizon(now_ms);
        self.departed
            .retain(|_, version| version.updated_at_ms() >= horizon.0);
        let fresh = self.by_update.split_off(&horizon);
        let stale = std::mem::replace(&mut self.by_update, fresh);
        stale
            .into_values()
            .filter_map(|id| {
                self.confirmed.remove(&id);
                self.signed.remove(&id)
            })
            .collect()
    }

    fn is_stale(&self, entry: &SignedPeerEntry, now_ms: i64) -> bool {
        entry.entry().version.updated_at_ms() < now_ms - self.purge_after_ms
    }

    /// Current (non-stale) peers, in peer-id order.
    pub fn peers(&self, now_ms: i64) -> impl Iterator<Item = &SignedPeerEntry> {
        self.signed.values().filter(move |e| !self.is_stale(e, now_ms))
    }

    /// Current (non-stale) peers, most recently updated first.
    pub fn newest_first(&self, now_ms: i64) -> impl Iterator<Item = &SignedPeerEntry> {
        self.by_update
            .range(self.horizon(now_ms)..)
            .rev()
            .filter_map(|(_, id)| self.signed.get(id))
    }

    pub fn get(&self, id: &EndpointId, now_ms: i64) -> Option<&SignedPeerEntry> {
        self.signed.get(id).filter(|e| !self.is_stale(e, now_ms))
    }

    /// Current peers; costs as many steps as there are stale entries not
    /// purged yet (purges run every second), not one per entry.
    pub fn len(&self, now_ms: i64) -> usize {
        self.signed.len() - self.by_update.range(..self.horizon(now_ms)).count()
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
            3,
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

    #[test]
    fn a_full_catalog_refuses_new_peers_but_takes_updates() {
        let (_, mut cat) = catalog();
        let keys: Vec<SecretKey> = (10..14).map(|seed| SecretKey::from_bytes(&[seed; 32])).collect();
        for key in &keys[..3] {
            assert_eq!(cat.upsert(signed(key, "demo", (NOW, NOW)), NOW), Upsert::New);
        }
        assert_eq!(
            cat.upsert(signed(&keys[3], "demo", (NOW, NOW)), NOW),
            Upsert::Rejected(Rejection::CatalogFull)
        );
        assert_eq!(
            cat.upsert(signed(&keys[0], "demo", (NOW, NOW + 1)), NOW),
            Upsert::Updated
        );
        assert_eq!(cat.len(NOW), 3);
        // Once an entry goes stale and is purged, there is room again.
        cat.upsert(signed(&keys[1], "demo", (NOW, NOW + 200_000)), NOW + 150_000);
        let later = NOW + 300_002;
        assert_eq!(cat.len(later), 1);
        assert_eq!(cat.purge_stale(later).len(), 2);
        assert_eq!(
            cat.upsert(signed(&keys[3], "demo", (later, later)), later),
            Upsert::New
        );
    }

    #[test]
    fn a_confirmed_peer_displaces_the_oldest_unconfirmed_entry() {
        let (_, mut cat) = catalog();
        let keys: Vec<SecretKey> = (10..15).map(|seed| SecretKey::from_bytes(&[seed; 32])).collect();
        for (i, key) in keys[..3].iter().enumerate() {
            cat.upsert(signed(key, "demo", (NOW, NOW + i as i64)), NOW);
        }
        cat.confirm(keys[0].public());
        let live = signed(&keys[3], "demo", (NOW, NOW));
        let evicted = cat.make_room_for_confirmed(live.entry(), NOW).unwrap();
        assert_eq!(
            evicted.entry().id(),
            keys[1].public(),
            "the oldest unconfirmed goes"
        );
        assert_eq!(cat.upsert(live, NOW), Upsert::New);
        let second = signed(&keys[4], "demo", (NOW, NOW + 5));
        assert!(cat.make_room_for_confirmed(second.entry(), NOW).is_some());
        assert_eq!(cat.upsert(second, NOW), Upsert::New);
        for key in &keys {
            cat.confirm(key.public());
        }
        assert_eq!(cat.len(NOW), 3);
        let other = signed(&keys[1], "demo", (NOW, NOW + 9));
        assert!(
            cat.make_room_for_confirmed(other.entry(), NOW).is_none(),
            "only confirmed peers left"
        );
    }

    #[test]
    fn newest_first_orders_by_updated_at() {
        let (_, mut cat) = catalog();
        for (seed, at) in [(10u8, NOW - 5), (11, NOW), (12, NOW - 9)] {
            let key = SecretKey::from_bytes(&[seed; 32]);
            cat.upsert(signed(&key, "demo", (at, at)), NOW);
        }
        let order: Vec<i64> = cat
            .newest_first(NOW)
            .map(|e| e.entry().version.updated_at_ms())
            .collect();
        assert_eq!(order, vec![NOW, NOW - 5, NOW - 9]);
    }
}
