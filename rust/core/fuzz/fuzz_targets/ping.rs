//! Ping (`/mosaik/discovery/ping/1.0`), as the bytes arrive on the link: the
//! input is the stream of the link, cut into frames by the link's codec with
//! the Ping frame limit. The acceptor reads the first frame as the `()`
//! request, which every frame satisfies (postcard ignores trailing bytes, as
//! mosaik does); the initiator reads it as the peer's `SignedPeerEntry`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    discovery::SignedPeerEntry,
    discovery::ping::Ping,
    network::{Protocol, link::codec},
    primitives::encoding,
};
use mosaik_core_fuzz::check_verified_entry;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = codec(Ping::MAX_FRAME);
    let mut buffer = BytesMut::from(data);
    let Ok(Some(frame)) = codec.decode_eof(&mut buffer) else {
        return;
    };
    assert!(frame.len() <= Ping::MAX_FRAME);
    encoding::decode::<()>(&frame).expect("any frame is a ping request");
    if let Ok(reply) = encoding::decode::<SignedPeerEntry>(&frame) {
        let same = SignedPeerEntry::decode(&frame).expect("Deserialize and decode agree");
        assert_eq!(same, reply);
        check_verified_entry(&reply);
    }
});
