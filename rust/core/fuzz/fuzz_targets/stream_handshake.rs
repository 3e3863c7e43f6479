//! The two frames that open a subscription: `ConsumerHandshake` (read by a
//! producer from any peer that connects) and `StartStream` (read by a
//! consumer). Both are 64 bytes of ids; anything shorter must fail, anything
//! longer decodes from its first 64 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    primitives::encoding,
    streams::handshake::{ConsumerHandshake, StartStream},
};
use mosaik_core_fuzz::check_round_trip;

fuzz_target!(|data: &[u8]| {
    let handshake = encoding::decode::<ConsumerHandshake>(data);
    let start = encoding::decode::<StartStream>(data);
    assert_eq!(handshake.is_ok(), data.len() >= 64, "{handshake:?}");
    assert_eq!(start.is_ok(), data.len() >= 64, "{start:?}");
    if let (Ok(handshake), Ok(start)) = (handshake, start) {
        assert_eq!(handshake.network_id, start.0);
        assert_eq!(handshake.stream_id, start.1);
        assert_eq!(&encoding::encode(&handshake).expect("encodes")[..], &data[..64]);
        check_round_trip(&handshake);
        check_round_trip(&start);
    }
});
