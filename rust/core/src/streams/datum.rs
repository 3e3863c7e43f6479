//! The postcard layouts of the built-in datum types, written and read
//! without a serde round trip: `Vec<u8>` and `String` are a varint length
//! followed by the bytes. Trailing bytes after the value are ignored, as
//! postcard's `from_bytes` (mosaik's decoder) ignores them.

use bytes::{BufMut, BytesMut};

/// Longest varint postcard writes for a `usize` length (u64, 7 bits a byte).
const MAX_VARINT: usize = 10;

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
    let mut n = len as u64;
    let mut size = 1;
    while n >= 0x80 {
        n >>= 7;
        size += 1;
    }
    size + len
}

/// Appends `varint(len) ‖ data`: postcard's `Vec<u8>` / `String`.
pub fn encode_prefixed(buf: &mut BytesMut, data: &[u8]) {
    buf.reserve(prefixed_len(data.len()));
    let mut n = data.len() as u64;
    while n >= 0x80 {
        buf.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
    buf.put_slice(data);
}

/// The bytes of a postcard `Vec<u8>` at the start of `frame`.
pub fn decode_prefixed(frame: &[u8]) -> Result<&[u8], DatumError> {
    let mut length: u64 = 0;
    let mut pos = 0;
    loop {
        let Some(&byte) = frame.get(pos) else {
            return Err(DatumError::TruncatedLength);
        };
        if pos == MAX_VARINT {
            return Err(DatumError::TruncatedLength);
        }
        // The 10th byte holds the 64th bit only: postcard refuses more.
        if pos == MAX_VARINT - 1 && byte > 0x01 {
            return Err(DatumError::BadLength);
        }
        length |= u64::from(byte & 0x7f) << (7 * pos);
        pos += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let available = frame.len() - pos;
    if length > available as u64 {
        return Err(DatumError::Truncated {
            claimed: length,
            available,
        });
    }
    Ok(&frame[pos..pos + length as usize])
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
