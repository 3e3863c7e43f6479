//! postcard encoding, exactly as mosaik uses it (`to_allocvec` / `from_bytes`).
//!
//! `from_bytes` ignores trailing bytes, as mosaik's decoder does; keeping the
//! same leniency means we accept every frame a mosaik peer accepts.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

pub use postcard::Error as EncodingError;

pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, EncodingError> {
    postcard::to_allocvec(value).map(Bytes::from)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EncodingError> {
    postcard::from_bytes(bytes)
}
