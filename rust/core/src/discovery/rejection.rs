//! Why discovery refused something: an entry the catalog's rules turned
//! down, input that was hostile or broken before it reached them, or an
//! entry over one of the volume budgets. Each refusal is counted exactly
//! (`Discovery::rejections`, by name); warnings are rate-limited per reason,
//! so a flood of refusals costs a counter each and a log line per second.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use iroh::EndpointId;
use tracing::warn;

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
    // Volume budgets.
    /// A new peer while the catalog holds `max_catalog_entries`.
    CatalogFull,
    /// A new peer beyond its source's `max_new_entries_per_source`.
    SourceBudget,
    /// A snapshot longer than `max_snapshot_entries` (once per snapshot).
    OversizedSnapshot,
    /// An entry too large to ever be answered to a ping.
    OversizedEntry,
    /// A new peer to sync with while `max_pending_syncs` wait already.
    SyncQueueFull,
    /// A catalog sync asked of us while `MAX_SERVED_SYNCS` are served.
    SyncBusy,
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
            Rejection::CatalogFull => "catalog_full",
            Rejection::SourceBudget => "source_budget",
            Rejection::OversizedSnapshot => "oversized_snapshot",
            Rejection::OversizedEntry => "oversized_entry",
            Rejection::SyncQueueFull => "sync_queue_full",
            Rejection::SyncBusy => "sync_busy",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// At most one warning per reason in this long; the others are summed up
/// in the next warning of that reason.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Exact counts by reason, and the rate limit of their warnings.
#[derive(Default)]
pub struct Rejections {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    counts: BTreeMap<Rejection, u64>,
    /// When each reason was last logged, and how many went unlogged since.
    logged: BTreeMap<Rejection, (Instant, u64)>,
}

impl Rejections {
    /// Counts `n` refusals for `reason` without logging them.
    pub fn count(&self, reason: Rejection, n: u64) {
        if n > 0 {
            *self
                .state
                .lock()
                .expect("rejections")
                .counts
                .entry(reason)
                .or_default() += n;
        }
    }

    /// Counts `n` refusals for `reason` and warns, unless this reason was
    /// logged less than a second ago (then the next warning says how many).
    pub fn record(
        &self,
        reason: Rejection,
        n: u64,
        from: Option<EndpointId>,
        detail: &dyn std::fmt::Display,
    ) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        let suppressed = {
            let mut state = self.state.lock().expect("rejections");
            *state.counts.entry(reason).or_default() += n;
            match state.logged.get_mut(&reason) {
                Some((at, unlogged)) if now.duration_since(*at) < WARN_EVERY => {
                    *unlogged += n;
                    return;
                }
                Some((at, unlogged)) => {
                    *at = now;
                    std::mem::take(unlogged)
                }
                None => {
                    state.logged.insert(reason, (now, 0));
                    0
                }
            }
        };
        let peer = from.map(|p| p.fmt_short().to_string());
        warn!(?peer, %reason, count = n, suppressed, "discovery rejected input: {detail}");
    }

    /// The counts so far, by reason name.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.state
            .lock()
            .expect("rejections")
            .counts
            .iter()
            .map(|(reason, n)| (reason.name(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_counted_even_when_not_logged() {
        let rejections = Rejections::default();
        for _ in 0..1000 {
            rejections.record(Rejection::ForgedSignature, 1, None, &"test");
        }
        rejections.record(Rejection::CatalogFull, 500, None, &"test");
        rejections.count(Rejection::Stale, 3);
        let counts = rejections.counts();
        assert_eq!(counts.get("forged_signature"), Some(&1000));
        assert_eq!(counts.get("catalog_full"), Some(&500));
        assert_eq!(counts.get("stale"), Some(&3));
        let state = rejections.state.lock().unwrap();
        assert_eq!(
            state.logged[&Rejection::ForgedSignature].1,
            999,
            "one warning, 999 held back"
        );
    }
}
