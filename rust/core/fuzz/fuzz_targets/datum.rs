//! Datum frames of the built-in codecs (`streams::datum::DatumLayout`): a
//! producer's `Vec<u8>` or `String` as postcard writes it, read without serde.
//!
//! The decoder must accept exactly what postcard (mosaik's decoder) accepts,
//! with the same value, and what it decodes must re-encode to the bytes it
//! read.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mosaik_core::streams::datum::DatumLayout;

const BYTES: DatumLayout = DatumLayout::Bytes;
const STR: DatumLayout = DatumLayout::Str;

fuzz_target!(|frame: &[u8]| {
    let ours = BYTES.decode(frame);
    let postcard = postcard::take_from_bytes::<&[u8]>(frame);
    match (&ours, &postcard) {
        (Ok(data), Ok((same, rest))) => {
            assert_eq!(data, same);
            let mut encoded = BytesMut::new();
            BYTES.encode_into(&mut encoded, data);
            assert_eq!(encoded.len(), BYTES.encoded_len(data.len()));
            // postcard accepts over-long varints, so compare lengths read, not bytes.
            assert!(encoded.len() <= frame.len() - rest.len());
            assert_eq!(BYTES.decode(&encoded).expect("our own frame decodes"), *data);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("datum decoder ({ours:?}) and postcard ({postcard:?}) disagree on {frame:02x?}"),
    }

    let text = STR.decode_str(frame);
    let postcard_text = postcard::from_bytes::<&str>(frame);
    match (&text, &postcard_text) {
        (Ok(text), Ok(same)) => assert_eq!(text, same),
        (Err(_), Err(_)) => {}
        _ => panic!("decode_str ({text:?}) and postcard ({postcard_text:?}) disagree on {frame:02x?}"),
    }
});
