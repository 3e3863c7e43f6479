//! Why discovery refused something: an entry the catalog's rules turned
//! down, or input that was hostile or broken before it reached them. Each
//! reason is counted (`Discovery::rejections`, by name) and logged.

/// Why an entry or a message was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    // The catalog's rules.
    /// Our own entry came back to us (not counted).
    OwnEntry,
    OtherNetwork,
    Stale,
    FromTheFuture,
    /// Not strictly newer than what we hold (not counted).
    NotNewer,
    // Input that never reached the rules.
    ForgedSignature,
    Undecodable,
    OversizedFrame,
    /// A catalog sync peer that did not finish within `sync_timeout`.
    SilentPeer,
    /// A goodbye dated outside the drift bound.
    StaleDeparture,
}

impl Rejection {
    /// The name rejections are counted and reported under.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::OwnEntry => "own_entry",
            Rejection::OtherNetwork => "other_network",
            Rejection::Stale => "stale",
            Rejection::FromTheFuture => "future_dated",
            Rejection::NotNewer => "not_newer",
            Rejection::ForgedSignature => "forged_signature",
            Rejection::Undecodable => "undecodable",
            Rejection::OversizedFrame => "oversized_frame",
            Rejection::SilentPeer => "silent_peer",
            Rejection::StaleDeparture => "stale_departure",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
