//! `Digest`: the 32-byte id behind every mosaik identifier.
//!
//! NetworkId, StreamId, Tag, GroupId and UniqueId are all a `Digest`. A string
//! becomes a digest by mosaik's rule: exactly 64 hex characters are taken as
//! the bytes themselves, anything else is `blake3(utf8(s))`. On the wire a
//! digest is 32 raw bytes with no length prefix (postcard of `[u8; 32]`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 32-byte identifier, ordered bytewise like mosaik's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// mosaik's string rule: 64 hex characters are the id, anything else is hashed.
    pub fn from_name(name: &str) -> Self {
        if name.len() == 64 {
            let mut bytes = [0u8; 32];
            if hex::decode_to_slice(name, &mut bytes).is_ok() {
                return Self(bytes);
            }
        }
        Self::hash(name.as_bytes())
    }

    /// Plain BLAKE3-256 over `data`, no key and no domain prefix.
    pub fn hash(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// mosaik's `Digest::derive`: `blake3(self ‖ data)`, the step of every
    /// id chain (group ids, validator signatures, key fingerprints).
    pub fn derive(&self, data: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.0);
        hasher.update(data);
        Self(*hasher.finalize().as_bytes())
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<&str> for Digest {
    fn from(name: &str) -> Self {
        Self::from_name(name)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form keeps logs readable; the full id is one `Display` away.
        write!(f, "Digest({})", &self.to_hex()[..10])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_name_is_hashed() {
        assert_eq!(
            Digest::from_name("demo").to_hex(),
            "811717648744df4f18656c5f4a833b7b09a90be78205a0e0eeff8b9dbb0202fe"
        );
    }

    #[test]
    fn rust_type_name_gives_default_stream_id() {
        assert_eq!(
            Digest::from_name("alloc::string::String").to_hex(),
            "3b5a1dd4d2c82bee28a22e983905ce688284518535f3a15c8bb1c4d2bc476908"
        );
    }

    #[test]
    fn sixty_four_hex_characters_are_taken_verbatim_in_either_case() {
        let hex = "811717648744DF4F18656C5F4A833B7B09A90BE78205A0E0EEFF8B9DBB0202FE";
        assert_eq!(Digest::from_name(hex), Digest::from_name("demo"));
    }

    #[test]
    fn near_hex_strings_are_hashed() {
        let sixty_three = &"ab".repeat(32)[..63];
        assert_eq!(
            Digest::from_name(sixty_three),
            Digest::hash(sixty_three.as_bytes())
        );
        let not_hex = "zz".repeat(32);
        assert_eq!(Digest::from_name(&not_hex), Digest::hash(not_hex.as_bytes()));
    }

    #[test]
    fn encodes_as_32_raw_bytes() {
        let d = Digest::from_name("demo");
        assert_eq!(postcard::to_allocvec(&d).unwrap(), d.as_bytes().to_vec());
    }
}
