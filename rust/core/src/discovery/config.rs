//! `DiscoveryConfig`: every discovery knob with mosaik 0.3.13's defaults,
//! plus the volume budgets mosaik does not have (catalog size, entries taken
//! per source, syncs queued and dialled), which bound what a flooding peer
//! can make this node store, verify or dial.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Events kept for a slow `events()` subscriber before it lags.
    pub events_backlog: usize,
    /// Entries not refreshed for this long leave the catalog.
    pub purge_after: Duration,
    /// Gossiped entries and departures must be this close to our clock.
    pub max_time_drift: Duration,
    /// Our entry is re-announced every `interval ± interval * jitter`.
    pub announce_interval: Duration,
    pub announce_jitter: f64,
    /// How long a departing node waits for its goodbye to spread.
    pub graceful_departure_window: Duration,
    /// Bound on one whole catalog sync, either side (mosaik has none).
    pub sync_timeout: Duration,
    /// Syncs we initiate at once (fan-out after a big snapshot is bounded).
    pub max_concurrent_syncs: usize,
    /// Largest gossip message (iroh-gossip's default).
    pub max_gossip_message: usize,
    /// Signed entries the catalog holds at most; new peers beyond it are
    /// refused (`catalog_full`) until entries leave.
    pub max_catalog_entries: usize,
    /// New peers one source (the peer that sent or relayed the entries) may
    /// add per `new_entries_window`; beyond it they are refused
    /// (`source_budget`). Updates of known peers are not limited.
    pub max_new_entries_per_source: usize,
    pub new_entries_window: Duration,
    /// Entries read from one received snapshot; the rest of a longer one is
    /// ignored (`oversized_snapshot`, counted once per snapshot).
    pub max_snapshot_entries: usize,
    /// Entries with a bad signature one sync link may carry before we stop
    /// verifying and close it with 400 (`ProtocolViolation`).
    pub max_forged_per_link: usize,
    /// Newly discovered peers waiting for a catalog sync; further sightings
    /// are dropped (`sync_queue_full`) and come back with a later sighting.
    pub max_pending_syncs: usize,
    /// New peers we dial for a catalog sync per `sync_dial_interval`.
    pub sync_dials_per_interval: usize,
    pub sync_dial_interval: Duration,
}

/// Beyond this, `tokio::sync::broadcast::channel` panics (its capacity must
/// stay under `usize::MAX / 2`); far below it, memory runs out first.
pub const MAX_EVENTS_BACKLOG: usize = 1 << 20;

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            events_backlog: 100,
            purge_after: Duration::from_secs(300),
            max_time_drift: Duration::from_secs(50),
            announce_interval: Duration::from_secs(45),
            announce_jitter: 0.5,
            graceful_departure_window: Duration::from_millis(500),
            sync_timeout: Duration::from_secs(5),
            max_concurrent_syncs: 16,
            max_gossip_message: 4096,
            max_catalog_entries: 10_000,
            max_new_entries_per_source: 1_000,
            new_entries_window: Duration::from_secs(60),
            max_snapshot_entries: 10_000,
            max_forged_per_link: 8,
            max_pending_syncs: 256,
            sync_dials_per_interval: 32,
            sync_dial_interval: Duration::from_secs(10),
        }
    }
}

/// A discovery setting that breaks its rule; the message names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DiscoveryConfigError {
    #[error("{field}: must be longer than zero")]
    Zero { field: &'static str },
    #[error("announce_jitter: must be within [0, 1], got {0}")]
    Jitter(f64),
    #[error("{field}: must be at least 1, got 0")]
    NoneAllowed { field: &'static str },
    #[error("{field}: must be at most {max}, got {value}")]
    TooLarge {
        field: &'static str,
        max: usize,
        value: usize,
    },
}

impl DiscoveryConfig {
    /// Refuses settings discovery cannot run with (rather than clamping them).
    pub fn validate(&self) -> Result<(), DiscoveryConfigError> {
        for (field, value) in [
            ("purge_after", self.purge_after),
            ("max_time_drift", self.max_time_drift),
            ("announce_interval", self.announce_interval),
            ("sync_timeout", self.sync_timeout),
            ("new_entries_window", self.new_entries_window),
            ("sync_dial_interval", self.sync_dial_interval),
        ] {
            if value.is_zero() {
                return Err(DiscoveryConfigError::Zero { field });
            }
        }
        if !(0.0..=1.0).contains(&self.announce_jitter) {
            return Err(DiscoveryConfigError::Jitter(self.announce_jitter));
        }
        for (field, value) in [
            ("events_backlog", self.events_backlog),
            ("max_concurrent_syncs", self.max_concurrent_syncs),
            ("max_gossip_message", self.max_gossip_message),
            ("max_catalog_entries", self.max_catalog_entries),
            ("max_new_entries_per_source", self.max_new_entries_per_source),
            ("max_snapshot_entries", self.max_snapshot_entries),
            ("max_forged_per_link", self.max_forged_per_link),
            ("max_pending_syncs", self.max_pending_syncs),
            ("sync_dials_per_interval", self.sync_dials_per_interval),
        ] {
            if value == 0 {
                return Err(DiscoveryConfigError::NoneAllowed { field });
            }
        }
        if self.events_backlog > MAX_EVENTS_BACKLOG {
            return Err(DiscoveryConfigError::TooLarge {
                field: "events_backlog",
                max: MAX_EVENTS_BACKLOG,
                value: self.events_backlog,
            });
        }
        Ok(())
    }

    /// The wait before the next periodic announce: uniform in
    /// `[interval * (1 - jitter), interval * (1 + jitter)]`, as mosaik.
    pub fn next_announce_delay(&self) -> Duration {
        let jitter = self.announce_jitter;
        let factor = 1.0 - jitter + rand::random::<f64>() * 2.0 * jitter;
        self.announce_interval.mul_f64(factor)
    }
}
