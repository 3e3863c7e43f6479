//! Datum layouts: how a datum's bytes sit in its frame, and the datum limit.
//!
//! A stream carries one frame per datum. With [`DatumLayout::Raw`] the frame
//! is the datum's bytes as they are (custom codecs, mosaik's raw bytes);
//! [`DatumLayout::Bytes`] and [`DatumLayout::Str`] are the postcard layouts
//! of `Vec<u8>` and `String`, a varint length (`primitives/varint.rs`)
//! followed by the bytes, written and read without a serde round trip.
//! Trailing bytes after the value are ignored, as postcard's `from_bytes`
//! (mosaik's decoder) ignores them. Producers lay datums out here
//! ([`DatumLayout::push`], refusing one over [`MAX_DATUM`] before copying
//! it); readers take them apart with [`DatumLayout::decode`].

use bytes::{BufMut, BytesMut};

use super::protocol::StreamsProtocol;
use crate::{
    network::{Protocol, frames::WireFramesBuilder},
    primitives::varint::{self, VarintError},
};

/// The largest datum a stream carries: a consumer refuses longer frames.
pub const MAX_DATUM: usize = StreamsProtocol::MAX_FRAME;

/// A builder for the frames of one `send_many`: datums are encoded straight
/// into the buffer the links write from.
pub fn frames_builder() -> WireFramesBuilder {
    WireFramesBuilder::new(StreamsProtocol::MAX_FRAME)
}

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

/// A datum too large for a stream's frame, by its length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a datum of {0} bytes exceeds the stream's frame limit of {MAX_DATUM} bytes")]
pub struct DatumTooLarge(pub usize);

/// How a datum's bytes are laid out in its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatumLayout {
    /// The bytes as they are.
    Raw,
    /// A postcard `Vec<u8>`: `varint(len) ‖ bytes`.
    Bytes,
    /// A postcard `String`: `varint(len) ‖ UTF-8 bytes`.
    Str,
}

impl DatumLayout {
    /// Bytes `encode_into` appends for `data_len` bytes of data.
    pub fn encoded_len(&self, data_len: usize) -> usize {
        match self {
            DatumLayout::Raw => data_len,
            DatumLayout::Bytes | DatumLayout::Str => varint::encoded_len(data_len as u64) + data_len,
        }
    }

    /// Appends `data` in this layout. `Str` trusts `data` to be UTF-8.
    pub fn encode_into(&self, buf: &mut BytesMut, data: &[u8]) {
        buf.reserve(self.encoded_len(data.len()));
        if *self != DatumLayout::Raw {
            varint::encode(buf, data.len() as u64);
        }
        buf.put_slice(data);
    }

    /// Appends one frame holding `data` in this layout; a datum over
    /// [`MAX_DATUM`] is refused before anything is copied.
    pub fn push(&self, frames: &mut WireFramesBuilder, data: &[u8]) -> Result<(), DatumTooLarge> {
        if data.len() > MAX_DATUM {
            return Err(DatumTooLarge(data.len()));
        }
        frames
            .push_with(self.encoded_len(data.len()), |buf| self.encode_into(buf, data))
            .map_err(|_| DatumTooLarge(data.len()))
    }

    /// The datum's bytes in `payload` (for `Str`, checked to be UTF-8).
    pub fn decode<'a>(&self, payload: &'a [u8]) -> Result<&'a [u8], DatumError> {
        match self {
            DatumLayout::Raw => Ok(payload),
            DatumLayout::Bytes => decode_prefixed(payload),
            DatumLayout::Str => Ok(decode_utf8(payload)?.as_bytes()),
        }
    }

    /// The datum in `payload` as text: `decode`, then a UTF-8 check.
    pub fn decode_str<'a>(&self, payload: &'a [u8]) -> Result<&'a str, DatumError> {
        match self {
            DatumLayout::Str => decode_utf8(payload),
            _ => Ok(std::str::from_utf8(self.decode(payload)?)?),
        }
    }
}

/// The text of a postcard `String` at the start of `frame`.
fn decode_utf8(frame: &[u8]) -> Result<&str, DatumError> {
    Ok(std::str::from_utf8(decode_prefixed(frame)?)?)
}

/// The bytes of a postcard `Vec<u8>` at the start of `frame`.
fn decode_prefixed(frame: &[u8]) -> Result<&[u8], DatumError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: DatumLayout = DatumLayout::Bytes;
    const STR: DatumLayout = DatumLayout::Str;

    #[test]
    fn matches_postcard_for_every_length_class() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let data = vec![7u8; len];
            let mut ours = BytesMut::new();
            BYTES.encode_into(&mut ours, &data);
            assert_eq!(&ours[..], &postcard::to_allocvec(&data).unwrap()[..], "len {len}");
            assert_eq!(ours.len(), BYTES.encoded_len(len));
            assert_eq!(BYTES.decode(&ours).unwrap(), &data[..]);
            let text = "é".repeat(len / 2);
            let mut ours = BytesMut::new();
            STR.encode_into(&mut ours, text.as_bytes());
            assert_eq!(&ours[..], &postcard::to_allocvec(&text).unwrap()[..]);
            assert_eq!(STR.decode_str(&ours).unwrap(), text);
            assert_eq!(STR.decode(&ours).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn refuses_what_postcard_refuses() {
        assert_eq!(BYTES.decode(b""), Err(DatumError::TruncatedLength));
        assert_eq!(BYTES.decode(b"\x80"), Err(DatumError::TruncatedLength));
        assert_eq!(
            BYTES.decode(b"\x05ab"),
            Err(DatumError::Truncated {
                claimed: 5,
                available: 2
            })
        );
        assert_eq!(BYTES.decode(&[0xff; 11]), Err(DatumError::BadLength));
        // Found by the `datum` fuzz target: bits past the 64th were dropped.
        let overflow = b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02";
        assert_eq!(BYTES.decode(overflow), Err(DatumError::BadLength));
        assert!(postcard::from_bytes::<Vec<u8>>(overflow).is_err());
        assert!(matches!(STR.decode_str(b"\x01\xff"), Err(DatumError::NotUtf8(_))));
        assert!(matches!(STR.decode(b"\x01\xff"), Err(DatumError::NotUtf8(_))));
        for bad in [&b"\x05ab"[..], b"\x80", b"\x01\xff"] {
            assert!(postcard::from_bytes::<String>(bad).is_err());
        }
        // Trailing bytes are ignored by both.
        assert_eq!(BYTES.decode(b"\x02okTRAILING").unwrap(), b"ok");
        assert_eq!(postcard::from_bytes::<Vec<u8>>(b"\x02okTRAILING").unwrap(), b"ok");
    }

    #[test]
    fn raw_is_the_bytes_as_they_are() {
        let mut ours = BytesMut::new();
        DatumLayout::Raw.encode_into(&mut ours, b"\x05ab");
        assert_eq!(&ours[..], b"\x05ab");
        assert_eq!(DatumLayout::Raw.encoded_len(3), 3);
        assert_eq!(DatumLayout::Raw.decode(b"\x05ab").unwrap(), b"\x05ab");
    }

    #[test]
    fn push_lays_out_one_frame_and_refuses_an_oversized_datum_before_copying() {
        let mut frames = frames_builder();
        BYTES.push(&mut frames, b"hi").unwrap();
        STR.push(&mut frames, "é".as_bytes()).unwrap();
        DatumLayout::Raw.push(&mut frames, b"raw").unwrap();
        let frames = frames.finish();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames.payload(0)[..], b"\x02hi");
        assert_eq!(&frames.payload(1)[..], "\x02é".as_bytes());
        assert_eq!(&frames.payload(2)[..], b"raw");
        // Longer than the stream's limit: refused on its length alone.
        let huge = vec![0u8; MAX_DATUM + 1];
        let mut frames = frames_builder();
        assert_eq!(
            DatumLayout::Raw.push(&mut frames, &huge),
            Err(DatumTooLarge(MAX_DATUM + 1))
        );
        assert!(frames.finish().is_empty());
        // Within the datum limit, but the length prefix takes the frame over
        // the builder's: refused too, and nothing is left behind.
        let mut small = WireFramesBuilder::new(4);
        assert_eq!(BYTES.push(&mut small, b"abcd"), Err(DatumTooLarge(4)));
        DatumLayout::Raw.push(&mut small, b"abcd").unwrap();
        assert_eq!(small.finish().len(), 1);
        assert_eq!(
            DatumTooLarge(300_000_000).to_string(),
            "a datum of 300000000 bytes exceeds the stream's frame limit of 268435456 bytes"
        );
    }
}
