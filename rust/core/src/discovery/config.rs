//! `DiscoveryConfig`: every discovery knob with mosaik 0.3.13's defaults.

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
}

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
}

impl DiscoveryConfig {
    /// Refuses settings discovery cannot run with (rather than clamping them).
    pub fn validate(&self) -> Result<(), DiscoveryConfigError> {
        for (field, value) in [
            ("purge_after", self.purge_after),
            ("max_time_drift", self.max_time_drift),
            ("announce_interval", self.announce_interval),
            ("sync_timeout", self.sync_timeout),
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
        ] {
            if value == 0 {
                return Err(DiscoveryConfigError::NoneAllowed { field });
            }
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
