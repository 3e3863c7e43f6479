//! Catalog sync frames (`decode_snapshot`): a varint count, then signed
//! entries back to back. Both the initiator's request and the acceptor's
//! answer are snapshots, so this is every frame of `/mosaik/discovery/sync`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaik_core::discovery::sync::{decode_snapshot, encode_snapshot};
use mosaik_core_fuzz::check_verified_entry;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = decode_snapshot(data) else {
        return;
    };
    let (count, _): (u64, _) = postcard::take_from_bytes(data).expect("a snapshot starts with its count");
    assert!((snapshot.entries.len() + snapshot.forged) as u64 <= count);
    for entry in &snapshot.entries {
        check_verified_entry(entry);
    }
    // What we forward (our own snapshot is built the same way) reads back
    // as the same entries, none forged.
    let bytes = encode_snapshot(snapshot.entries.iter());
    let again = decode_snapshot(&bytes).expect("our own snapshot decodes");
    assert_eq!(again.entries, snapshot.entries);
    assert_eq!(again.forged, 0);
});
