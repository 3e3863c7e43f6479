//! The one varint: postcard's unsigned LEB128 for `u64` (and `usize`).
//!
//! Seven bits a byte, least significant group first, the high bit set on
//! every byte but the last. postcard (mosaik's encoding) writes at most ten
//! bytes for a `u64` and refuses an encoding that is longer or whose tenth
//! byte carries more than the 64th bit; [`decode`] refuses the same, so
//! what we accept is what a mosaik peer accepts. Like postcard, it accepts
//! over-long encodings of small values (`0x80 0x00` is 0). Every
//! length prefix and count we write or read without serde goes through
//! here: datum layouts (`streams/datum.rs`) and catalog snapshots
//! (`discovery/sync.rs`).

use bytes::BufMut;

/// The most bytes a `u64` takes.
pub const MAX_LEN: usize = 10;

/// Bits of value in each byte.
const PAYLOAD: u8 = 0x7f;
/// Set on every byte that another follows.
const CONTINUES: u8 = 0x80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The bytes ended before the varint did.
    #[error("truncated varint")]
    Truncated,
    /// The tenth byte holds bits past the 64th.
    #[error("varint overflows 64 bits")]
    Overflow,
}

/// How many bytes `encode` writes for `n`.
pub const fn encoded_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `n`.
pub fn encode(buf: &mut impl BufMut, mut n: u64) {
    while n >= u64::from(CONTINUES) {
        buf.put_u8((n as u8 & PAYLOAD) | CONTINUES);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

/// The value at the start of `bytes`, and the bytes after it.
pub fn decode(bytes: &[u8]) -> Result<(u64, &[u8]), VarintError> {
    let mut value: u64 = 0;
    // The loop ends by the tenth byte: it either overflows or has no
    // continuation bit.
    for (pos, &byte) in bytes.iter().enumerate() {
        // The tenth byte holds the 64th bit only: postcard refuses more.
        if pos == MAX_LEN - 1 && byte > 0x01 {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & PAYLOAD) << (7 * pos);
        if byte & CONTINUES == 0 {
            return Ok((value, &bytes[pos + 1..]));
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARIES: [u64; 9] = [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        u32::MAX as u64,
        u64::MAX - 1,
        u64::MAX,
    ];

    #[test]
    fn matches_postcard_at_every_boundary() {
        for n in BOUNDARIES {
            let theirs = postcard::to_allocvec(&n).unwrap();
            let mut ours = Vec::new();
            encode(&mut ours, n);
            assert_eq!(ours, theirs, "{n}");
            assert_eq!(encoded_len(n), theirs.len(), "{n}");
            let mut trailing = ours.clone();
            trailing.extend_from_slice(b"rest");
            assert_eq!(decode(&trailing), Ok((n, &b"rest"[..])), "{n}");
        }
        assert_eq!(encoded_len(127), 1);
        assert_eq!(encoded_len(128), 2);
        assert_eq!(encoded_len(u64::MAX), MAX_LEN);
    }

    #[test]
    fn refuses_what_postcard_refuses() {
        let refused: [(&[u8], VarintError); 5] = [
            (b"", VarintError::Truncated),
            (b"\x80", VarintError::Truncated),
            (b"\xff\xff", VarintError::Truncated),
            // Bits past the 64th in the tenth byte.
            (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02", VarintError::Overflow),
            // An eleventh byte would follow.
            (&[0xff; 11], VarintError::Overflow),
        ];
        for (bytes, error) in refused {
            assert_eq!(decode(bytes), Err(error), "{bytes:02x?}");
            assert!(postcard::from_bytes::<u64>(bytes).is_err(), "{bytes:02x?}");
        }
    }

    #[test]
    fn accepts_what_postcard_accepts_beyond_the_shortest_form() {
        // Over-long but in range: both read 0 and 2^63.
        for bytes in [&b"\x80\x00"[..], b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"] {
            let theirs = postcard::from_bytes::<u64>(bytes).unwrap();
            assert_eq!(decode(bytes), Ok((theirs, &b""[..])), "{bytes:02x?}");
        }
    }
}
