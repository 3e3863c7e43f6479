//! Why a producer or consumer could not be made: a duplicate producer, or a
//! setting that breaks its rule (configs refuse bad values rather than
//! clamping them). Each message names the field.

use std::time::Duration;

use crate::primitives::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("this node already has a producer for stream {0}")]
    DuplicateProducer(Digest),
    #[error(transparent)]
    Config(#[from] StreamsConfigError),
}

/// A producer, consumer or backoff setting that breaks its rule; the
/// message names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StreamsConfigError {
    #[error("{field}: must be at least 1, got 0")]
    Zero { field: &'static str },
    #[error("backoff.factor: must be a finite number >= 1, got {0}")]
    BackoffFactor(f32),
    #[error("backoff.max_delay: must be at least initial ({initial:?}), got {max_delay:?}")]
    BackoffMaxDelay { initial: Duration, max_delay: Duration },
}
