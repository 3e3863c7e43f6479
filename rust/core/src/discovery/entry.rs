//! `PeerEntry`: the record a node publishes about itself, and its signature.
//!
//! Field order is wire order (postcard, no names, no lengths for fixed
//! fields). A `SignedPeerEntry` is the entry followed by an Ed25519
//! signature over `blake3(postcard(entry))`, made with the key behind
//! `address.id`. Receivers re-encode the decoded entry to check the
//! signature, so our types must re-encode canonically: they are the same
//! serde shapes mosaik uses, built from iroh's own address types.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use iroh::{EndpointAddr, EndpointId, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::primitives::{
    Digest,
    encoding::{self, EncodingError},
};

/// The mosaik version whose protocol we speak; peers never check it, but
/// it must parse as semver.
pub const PROTOCOL_VERSION: &str = "0.3.13";

/// Milliseconds since the Unix epoch, as mosaik stamps entries.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `(started_at_ms, updated_at_ms)`, compared lexicographically, so a
/// restarted node supersedes every entry of its previous run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerEntryVersion(pub i64, pub i64);

impl PeerEntryVersion {
    pub fn now() -> Self {
        let started = now_ms();
        Self(started, started)
    }

    pub fn started_at_ms(&self) -> i64 {
        self.0
    }

    pub fn updated_at_ms(&self) -> i64 {
        self.1
    }

    /// Keeps `started_at`; `updated_at` becomes `max(updated_at, now) + 1`,
    /// so every re-signed entry is strictly newer than the last.
    pub fn increment(self) -> Self {
        Self(self.0, self.1.max(now_ms()) + 1)
    }
}

/// A credential attached to an entry: opaque here, read by the ticket
/// validators of its class (`crate::tickets`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub class: Digest,
    pub data: Vec<u8>,
}

impl Ticket {
    /// Its key in an entry: `class.derive(data)`, as mosaik's `Ticket::id`.
    pub fn id(&self) -> Digest {
        Digest::hash(&[self.class.as_bytes().as_slice(), &self.data].concat())
    }
}

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    pub protocol: semver::Version,
    pub network: Digest,
    pub version: PeerEntryVersion,
    pub address: EndpointAddr,
    pub tags: BTreeSet<Digest>,
    pub streams: BTreeSet<Digest>,
    pub groups: BTreeSet<Digest>,
    pub tickets: BTreeMap<Digest, Ticket>,
}

impl PeerEntry {
    /// A fresh entry for a node starting now.
    pub fn new(network: Digest, address: EndpointAddr) -> Self {
        Self {
            protocol: semver::Version::parse(PROTOCOL_VERSION).expect("valid semver"),
            network,
            version: PeerEntryVersion::now(),
            address,
            tags: BTreeSet::new(),
            streams: BTreeSet::new(),
            groups: BTreeSet::new(),
            tickets: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> EndpointId {
        self.address.id
    }

    /// A digest of what others grant access by: our tags and tickets. It
    /// changes when a ticket or tag is added or removed, not when the entry
    /// is merely re-signed (every announce and ping reply bumps `version`).
    pub fn credentials(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        for tag in &self.tags {
            hasher.update(tag.as_bytes());
        }
        hasher.update(b"|");
        for id in self.tickets.keys() {
            hasher.update(id.as_bytes());
        }
        Digest::from_bytes(*hasher.finalize().as_bytes())
    }

    /// `blake3(postcard(self))`: the message that gets signed.
    pub fn digest(&self) -> Result<Digest, EncodingError> {
        Ok(Digest::hash(&encoding::encode(self)?))
    }

    /// Signs with `key`, which must be the key of `address.id`.
    pub fn sign(self, key: &SecretKey) -> Result<SignedPeerEntry, EntryError> {
        if key.public() != self.address.id {
            return Err(EntryError::WrongKey);
        }
        let digest = self.digest()?;
        let signature = key.sign(digest.as_bytes());
        Ok(SignedPeerEntry::signed(self, signature)?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the signing key does not match the entry's peer id")]
    WrongKey,
    #[error("the signature does not verify against the entry's peer id")]
    BadSignature,
    /// A well-formed entry with a bad signature, followed by `rest_len` bytes.
    #[error("the signature does not verify against the entry's peer id")]
    BadSignatureIn { rest_len: usize },
    #[error("entry encoding: {0}")]
    Encoding(#[from] EncodingError),
}

/// A `PeerEntry` with a valid signature by its own peer. It can only be
/// made by signing or by decoding with verification. It keeps the exact
/// bytes it was made from, so forwarding it never re-encodes.
#[derive(Clone, Debug)]
pub struct SignedPeerEntry {
    entry: PeerEntry,
    signature: Signature,
    wire: Bytes,
}

impl PartialEq for SignedPeerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.entry == other.entry && self.signature == other.signature
    }
}

impl Eq for SignedPeerEntry {}

impl SignedPeerEntry {
    pub fn entry(&self) -> &PeerEntry {
        &self.entry
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// `postcard(entry) ‖ signature`, exactly as received or signed.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// Decodes `entry ‖ signature` and verifies it, as mosaik does on
    /// every receive path. Trailing bytes are ignored, as postcard does.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        Self::take_from(bytes).map(|(entry, _)| entry)
    }

    /// Decodes one signed entry from the front of `bytes`, verifies it, and
    /// returns the rest. A structurally valid entry whose signature fails
    /// is reported as `BadSignature` together with the rest, so a reader of
    /// a list can skip just that entry.
    pub fn take_from(bytes: &[u8]) -> Result<(Self, &[u8]), EntryError> {
        let (unverified, rest) = UnverifiedEntry::take_from(bytes)?;
        let entry = unverified
            .verify()
            .map_err(|_| EntryError::BadSignatureIn { rest_len: rest.len() })?;
        Ok((entry, rest))
    }

    fn signed(entry: PeerEntry, signature: Signature) -> Result<Self, EncodingError> {
        let wire = encoding::encode(&(&entry, &signature))?;
        Ok(Self {
            entry,
            signature,
            wire,
        })
    }

    pub fn encode(&self) -> Bytes {
        self.wire.clone()
    }
}

/// A decoded entry whose signature is not checked yet. Verifying costs far
/// more than decoding, so a batch (a catalog snapshot) is decoded first and
/// only the entries the catalog would take are verified.
#[derive(Clone, Debug)]
pub struct UnverifiedEntry {
    entry: PeerEntry,
    signature: Signature,
    wire: Bytes,
}

impl UnverifiedEntry {
    /// Decodes one `entry ‖ signature` from the front of `bytes`; returns
    /// the rest. Nothing is verified.
    pub fn take_from(bytes: &[u8]) -> Result<(Self, &[u8]), EntryError> {
        let ((entry, signature), rest): ((PeerEntry, Signature), &[u8]) = postcard::take_from_bytes(bytes)?;
        let wire = Bytes::copy_from_slice(&bytes[..bytes.len() - rest.len()]);
        Ok((
            Self {
                entry,
                signature,
                wire,
            },
            rest,
        ))
    }

    /// What the entry claims, unverified.
    pub fn entry(&self) -> &PeerEntry {
        &self.entry
    }

    /// Its exact bytes, as received.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// Checks the signature against the entry's own peer id.
    pub fn verify(self) -> Result<SignedPeerEntry, EntryError> {
        let digest = self.entry.digest()?;
        self.entry
            .address
            .id
            .verify(digest.as_bytes(), &self.signature)
            .map_err(|_| EntryError::BadSignature)?;
        Ok(SignedPeerEntry {
            entry: self.entry,
            signature: self.signature,
            wire: self.wire,
        })
    }
}

impl Serialize for SignedPeerEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.entry, &self.signature).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedPeerEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (entry, signature) = <(PeerEntry, Signature)>::deserialize(deserializer)?;
        let digest = entry.digest().map_err(serde::de::Error::custom)?;
        entry
            .address
            .id
            .verify(digest.as_bytes(), &signature)
            .map_err(|_| serde::de::Error::custom(EntryError::BadSignature))?;
        Self::signed(entry, signature).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use iroh::TransportAddr;

    use super::*;

    /// discovery-protocol.md §10.2: seed 00..1f, one Ip address, no sets.
    fn worked_example() -> (SecretKey, PeerEntry) {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        let key = SecretKey::from_bytes(&seed);
        let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let address = EndpointAddr::from_parts(key.public(), [TransportAddr::Ip(addr)]);
        let mut entry = PeerEntry::new(Digest::from_name("demo"), address);
        entry.version = PeerEntryVersion(1767225600000, 1767225600001);
        (key, entry)
    }

    #[test]
    fn entry_encoding_matches_the_spec_vector() {
        let (key, entry) = worked_example();
        assert_eq!(
            key.public().to_string(),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        assert_eq!(
            hex::encode(encoding::encode(&entry).unwrap()),
            "06302e332e3133811717648744df4f18656c5f4a833b7b09a90be78205a0e0eeff8b9dbb0202fe\
             80a0d5edee6682a0d5edee6603a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc86\
             64125531b80101007f000001d12200000000"
        );
        assert_eq!(
            entry.digest().unwrap().to_hex(),
            "14e22cb99e5d9ce6c8447f6fd7231fe99c7e2e65c6fa52ef523c793ca0bddf31"
        );
    }

    #[test]
    fn signature_round_trips_and_matches_the_spec_vector() {
        let (key, entry) = worked_example();
        let signed = entry.sign(&key).unwrap();
        let sig = hex::encode(signed.signature().to_bytes());
        assert!(sig.starts_with("3313bdcd") && sig.ends_with("39ec09"), "{sig}");
        let bytes = signed.encode();
        assert_eq!(bytes.len(), 160);
        assert_eq!(encoding::encode(&signed).unwrap(), bytes);
        assert_eq!(SignedPeerEntry::decode(&bytes).unwrap(), signed);
    }

    #[test]
    fn a_tampered_entry_is_rejected() {
        let (key, entry) = worked_example();
        let mut bytes = entry.sign(&key).unwrap().encode().to_vec();
        bytes[45] ^= 0x02; // updated_at
        assert!(SignedPeerEntry::decode(&bytes).is_err());
    }

    #[test]
    fn signing_with_another_key_is_refused() {
        let (_, entry) = worked_example();
        let other = SecretKey::from_bytes(&[7u8; 32]);
        assert!(matches!(entry.sign(&other), Err(EntryError::WrongKey)));
    }

    #[test]
    fn increment_is_strictly_newer_and_keeps_start() {
        let v = PeerEntryVersion(5, i64::MAX / 2);
        let next = v.increment();
        assert_eq!(next.0, 5);
        assert!(next > v);
    }
}
