//! Small building blocks shared by every protocol: ids and encoding.

pub mod digest;
pub mod encoding;

pub use digest::Digest;
