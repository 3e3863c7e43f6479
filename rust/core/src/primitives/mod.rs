//! Small building blocks shared by every protocol: ids, encoding and the
//! one varint.

pub mod digest;
pub mod encoding;
pub mod rust_types;
pub mod varint;

pub use digest::Digest;
