//! `SignedPeerEntry`: the record inside every gossip announcement, catalog
//! snapshot and ping reply.
//!
//! Gossip and sync read entries with `take_from`; ping replies go through
//! serde's `Deserialize` (`Link::recv`). Both must agree on every input. The
//! bytes are also decoded as a bare `(PeerEntry, Signature)` so that what
//! the signature check would hide is round-tripped and re-signed.
#![no_main]

use iroh::Signature;
use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    discovery::{PeerEntry, SignedPeerEntry, entry::EntryError},
    primitives::encoding,
};
use mosaik_core_fuzz::{check_round_trip, check_verified_entry, resign};

fuzz_target!(|data: &[u8]| {
    let taken = SignedPeerEntry::take_from(data);
    let via_serde = encoding::decode::<SignedPeerEntry>(data);
    match (&taken, &via_serde) {
        (Ok((entry, rest)), Ok(same)) => {
            assert_eq!(entry, same, "take_from and Deserialize disagree");
            assert!(data.ends_with(rest));
            assert_eq!(&entry.wire()[..], &data[..data.len() - rest.len()]);
            check_verified_entry(entry);
        }
        (Err(EntryError::BadSignatureIn { rest_len }), Err(_)) => assert!(*rest_len < data.len()),
        (Err(_), Err(_)) => {}
        _ => panic!("take_from ({taken:?}) and Deserialize ({via_serde:?}) disagree"),
    }

    if let Ok(((entry, signature), _)) = postcard::take_from_bytes::<(PeerEntry, Signature)>(data) {
        // Whatever the signature, checking it must not panic.
        let digest = entry.digest().expect("a decoded entry encodes");
        let _ = entry.address.id.verify(digest.as_bytes(), &signature);
        check_round_trip(&(entry.clone(), signature));
        resign(entry);
    }
});
