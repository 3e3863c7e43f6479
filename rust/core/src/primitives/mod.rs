//! Small building blocks shared by every protocol: ids, encoding, the one
//! varint, and the readiness descriptor that wakes event loops outside tokio.

pub mod digest;
pub mod encoding;
pub mod ready;
pub mod rust_types;
pub mod varint;

pub use digest::Digest;
pub use ready::ReadySignal;
