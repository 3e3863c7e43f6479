//! Shared pieces of the fuzz targets in `fuzz_targets/`: fixed keys, real
//! sample messages (the seed corpus is made from them by
//! `examples/seed_corpus.rs`), and the checks that several targets make.
//!
//! Signed messages stop a blind fuzzer at the signature check, so the targets
//! that decode them also decode the same bytes without verifying, re-sign the
//! result with [`fuzz_key`], and push it back through the real decoder. That
//! way every shape the structural decoder accepts also reaches the code behind
//! the signature check.

use std::{collections::BTreeMap, net::SocketAddr};

use iroh::{EndpointAddr, RelayUrl, SecretKey, TransportAddr};
use mosaik_core::{
    Digest,
    discovery::{PeerEntry, PeerEntryVersion, SignedPeerEntry, entry::Ticket},
    primitives::encoding,
};

/// The key of discovery-protocol.md's worked example: seed bytes 00..1f.
pub fn spec_key() -> SecretKey {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretKey::from_bytes(&seed)
}

/// The key fuzzed entries are re-signed with.
pub fn fuzz_key() -> &'static SecretKey {
    static KEY: std::sync::OnceLock<SecretKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SecretKey::from_bytes(&[0xf0; 32]))
}

/// discovery-protocol.md §10.2: one Ip address, no sets.
pub fn spec_entry() -> (SecretKey, PeerEntry) {
    let key = spec_key();
    let addr: SocketAddr = "127.0.0.1:4433".parse().expect("socket address");
    let address = EndpointAddr::from_parts(key.public(), [TransportAddr::Ip(addr)]);
    let mut entry = PeerEntry::new(Digest::from_name("demo"), address);
    entry.version = PeerEntryVersion(1767225600000, 1767225600001);
    (key, entry)
}

/// An entry with every field populated: relay and both IP families, tags,
/// streams, groups and a ticket.
pub fn full_entry(seed: u8) -> (SecretKey, PeerEntry) {
    let key = SecretKey::from_bytes(&[seed; 32]);
    let relay: RelayUrl = "https://relay.example.org./".parse().expect("relay url");
    let v4: SocketAddr = "192.0.2.7:50000".parse().expect("socket address");
    let v6: SocketAddr = "[2001:db8::1]:4433".parse().expect("socket address");
    let address = EndpointAddr::from_parts(
        key.public(),
        [
            TransportAddr::Relay(relay),
            TransportAddr::Ip(v4),
            TransportAddr::Ip(v6),
        ],
    );
    let mut entry = PeerEntry::new(Digest::from_name("demo"), address);
    entry.version = PeerEntryVersion(1767225600000 + i64::from(seed), 1767225609999);
    entry.tags.insert(Digest::from_name("sensor"));
    entry.tags.insert(Digest::from_name("edge"));
    entry.streams.insert(Digest::from_name("alloc::string::String"));
    entry.groups.insert(Digest::from_name("raft"));
    entry.tickets = BTreeMap::from([(
        Digest::from_name("jwt"),
        Ticket {
            class: Digest::from_name("jwt"),
            data: b"header.payload.signature".to_vec(),
        },
    )]);
    (key, entry)
}

/// Signed sample entries: the spec's worked example, a full one, a bare one.
pub fn sample_entries() -> Vec<SignedPeerEntry> {
    let (key, spec) = spec_entry();
    let (full_key, full) = full_entry(2);
    let bare_key = SecretKey::from_bytes(&[3; 32]);
    let mut bare = PeerEntry::new(Digest::from_name("demo"), EndpointAddr::new(bare_key.public()));
    bare.version = PeerEntryVersion(1767225600000, 1767225600000);
    vec![
        spec.sign(&key).expect("sign"),
        full.sign(&full_key).expect("sign"),
        bare.sign(&bare_key).expect("sign"),
    ]
}

/// What must hold for every entry that decoded and verified: its exact bytes
/// decode to it again, and so does its canonical re-encoding, which is stable.
pub fn check_verified_entry(entry: &SignedPeerEntry) {
    let again = SignedPeerEntry::decode(entry.wire()).expect("an entry's own wire bytes decode");
    assert_eq!(&again, entry);
    assert_eq!(again.wire(), entry.wire());
    let canonical = encoding::encode(entry).expect("a decoded entry encodes");
    let from_canonical = SignedPeerEntry::decode(&canonical).expect("the canonical form verifies");
    assert_eq!(&from_canonical, entry);
    assert_eq!(
        encoding::encode(&from_canonical).expect("encodes"),
        canonical,
        "re-encoding is not stable"
    );
}

/// Re-signs a structurally decoded entry with [`fuzz_key`] and checks that
/// the real decoder takes it back unchanged. Returns the signed entry.
pub fn resign(mut entry: PeerEntry) -> SignedPeerEntry {
    entry.address.id = fuzz_key().public();
    let signed = entry
        .clone()
        .sign(fuzz_key())
        .expect("signing with the entry's own key");
    assert_eq!(signed.entry(), &entry);
    let decoded = SignedPeerEntry::decode(&signed.encode()).expect("a freshly signed entry decodes");
    assert_eq!(decoded, signed);
    check_verified_entry(&decoded);
    signed
}

/// A value that decoded once re-encodes to bytes that decode to the same
/// value, and re-encoding that is stable.
pub fn check_round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = encoding::encode(value).expect("a decoded value encodes");
    let again: T = encoding::decode(&bytes).expect("its encoding decodes");
    assert_eq!(&again, value);
    assert_eq!(
        encoding::encode(&again).expect("encodes"),
        bytes,
        "re-encoding is not stable"
    );
}
