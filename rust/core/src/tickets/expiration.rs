//! `Expiration`: until when a validated ticket authorizes its bearer.
//!
//! Ordered as mosaik orders it: `Never` after every instant, so the best of
//! a peer's tickets is the maximum and the binding one of several
//! validators is the minimum.

use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expiration {
    /// An instant: the ticket is expired once `now > at`.
    At(DateTime<Utc>),
    /// The ticket never expires.
    Never,
}

impl Expiration {
    /// The instant for a JWT `exp` claim (whole seconds since the epoch);
    /// `None` when it does not fit a timestamp.
    pub fn at_unix_seconds(seconds: i64) -> Option<Self> {
        DateTime::from_timestamp(seconds, 0).map(Self::At)
    }

    pub fn is_expired(&self) -> bool {
        match self {
            Self::Never => false,
            Self::At(at) => *at < Utc::now(),
        }
    }

    /// Time left before expiry; `None` for `Never`, zero once past.
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            Self::Never => None,
            Self::At(at) => Some((*at - Utc::now()).to_std().unwrap_or(Duration::ZERO)),
        }
    }

    /// Seconds since the epoch, for display; `None` for `Never`.
    pub fn unix_seconds(&self) -> Option<i64> {
        match self {
            Self::Never => None,
            Self::At(at) => Some(at.timestamp()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_outlasts_every_instant() {
        let soon = Expiration::at_unix_seconds(1_700_000_000).unwrap();
        let later = Expiration::at_unix_seconds(1_800_000_000).unwrap();
        assert!(soon < later && later < Expiration::Never);
        assert_eq!([later, soon, Expiration::Never].into_iter().min(), Some(soon));
        assert!(soon.is_expired() && !Expiration::Never.is_expired());
        assert_eq!(soon.remaining(), Some(Duration::ZERO));
        assert_eq!(Expiration::Never.remaining(), None);
    }
}
