//! The postcard layouts of the built-in datum types, written and read
//! without a serde round trip: `Vec<u8>` and `String` are a varint length
//! followed by the bytes. Trailing bytes after the value are ignored, as
//! postcard's `from_bytes` (mosaik's decoder) ignores them.

use bytes::{BufMut, BytesMut};

use crate::primitives::varint::{self, VarintError};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DatumError {
    #[error("truncated length prefix")]
    TruncatedLength,
    #[error("length prefix overflows 64 bits")]
    BadLength,
    #[error("datum claims {claimed} bytes, has {available}")]
    Truncated { claimed: u64, available: usize },
    #[error("datum is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
}

/// Bytes `encode_prefixed` appends for `len` bytes of data.
pub fn prefixed_len(len: usize) -> usize {
    varint::encoded_len(len as u64) + len
}

/// Appends `varint(len) ‖ data`: postcard's `Vec<u8>` / `String`.
pub fn encode_prefixed(buf: &mut BytesMut, data: &[u8]) {
    buf.reserve(prefixed_len(data.len()));
    varint::encode(buf, data.len() as u64);
    buf.put_slice(data);
}

/// The bytes of a postcard `Vec<u8>` at the start of `frame`.
pub fn decode_prefixed(frame: &[u8]) -> Result<&[u8], DatumError> {
    let (length, rest) = varint::decode(frame).map_err(|e| match e {
        VarintError::Truncated => DatumError::TruncatedLength,
        VarintError::Overflow => DatumError::BadLength,
    })?;
    if length > rest.len() as u64 {
        return Err(DatumError::Truncated {
            claimed: length,
            available: rest.len(),
        });
    }
    Ok(&rest[..length as usize])
}

/// The text of a postcard `String` at the start of `frame`.
pub fn decode_str(frame: &[u8]) -> Result<&str, DatumError> {
    Ok(std::str::from_utf8(decode_prefixed(frame)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_postcard_for_every_length_class() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let data = vec![7u8; len];
            let mut ours = BytesMut::new();
            encode_prefixed(&mut ours, &data);
            assert_eq!(&ours[..], &postcard::to_allocvec(&data).unwrap()[..], "len {len}");
            assert_eq!(ours.len(), prefixed_len(len));
            assert_eq!(decode_prefixed(&ours).unwrap(), &data[..]);
            let text = "é".repeat(len / 2);
            let mut ours = BytesMut::new();
            encode_prefixed(&mut ours, text.as_bytes());
            assert_eq!(&ours[..], &postcard::to_allocvec(&text).unwrap()[..]);
            assert_eq!(decode_str(&ours).unwrap(), text);
        }
    }

    #[test]
    fn refuses_what_postcard_refuses() {
        assert_eq!(decode_prefixed(b""), Err(DatumError::TruncatedLength));
        assert_eq!(decode_prefixed(b"\x80"), Err(DatumError::TruncatedLength));
        assert_eq!(
            decode_prefixed(b"\x05ab"),
            Err(DatumError::Truncated {
                claimed: 5,
                available: 2
            })
        );
        assert_eq!(decode_prefixed(&[0xff; 11]), Err(DatumError::BadLength));
        // Found by the `datum` fuzz target: bits past the 64th were dropped.
        let overflow = b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02";
        assert_eq!(decode_prefixed(overflow), Err(DatumError::BadLength));
        assert!(postcard::from_bytes::<Vec<u8>>(overflow).is_err());
        assert!(matches!(decode_str(b"\x01\xff"), Err(DatumError::NotUtf8(_))));
        for bad in [&b"\x05ab"[..], b"\x80", b"\x01\xff"] {
            assert!(postcard::from_bytes::<String>(bad).is_err());
        }
        // Trailing bytes are ignored by both.
        assert_eq!(decode_prefixed(b"\x02okTRAILING").unwrap(), b"ok");
        assert_eq!(postcard::from_bytes::<Vec<u8>>(b"\x02okTRAILING").unwrap(), b"ok");
    }
}
