//! DHT bootstrap records (`dht::parse_record`): anyone who knows a network
//! id can write its slots, so a slot's DNS packet is hostile input.
//!
//! The input is the DNS packet a slot holds (pkarr's `v`, at most 1000
//! bytes). It is wrapped as pkarr wraps what the DHT returns (the slot's
//! public key, a signature, a timestamp) and parsed by pkarr exactly as
//! `resolve_most_recent` does; the signature is not checked here, since the
//! writer of a slot can always sign.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    Digest,
    discovery::dht::{parse_record, slot_seeds},
};
use pkarr::{Keypair, SignedPacket};

/// The most a mainline mutable item holds, and so a slot's DNS packet.
const MAX_PACKET: usize = 1000;

fn slot_public_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let seed = slot_seeds(Digest::from_name("demo"), 1)[0];
        Keypair::from_secret_key(&seed).public_key().to_bytes()
    })
}

fuzz_target!(|data: &[u8]| {
    let packet = &data[..data.len().min(MAX_PACKET)];
    // `SignedPacket::serialize`'s layout: last_seen, then what the DHT holds.
    let mut stored = Vec::with_capacity(8 + 104 + packet.len());
    stored.extend_from_slice(&[0; 8]);
    stored.extend_from_slice(slot_public_key());
    stored.extend_from_slice(&[0; 64]);
    stored.extend_from_slice(&1_767_225_600_000_000u64.to_be_bytes());
    stored.extend_from_slice(packet);
    let Ok(signed) = SignedPacket::deserialize(&stored) else {
        return;
    };
    let first = parse_record(&signed);
    assert_eq!(
        first,
        parse_record(&signed),
        "parsing a record is not deterministic"
    );
});
