//! Reconnect backoff for consumers, with mosaik's defaults.
//!
//! Delays come from `backon`'s exponential policy (500 ms, ×1.5, jittered,
//! capped at 60 s); a receiver gives up once 300 s pass without a datum,
//! which is how mosaik's `max_elapsed_time` behaves (it resets only when a
//! datum arrives).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use super::error::StreamsConfigError;

#[derive(Clone, Debug)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub factor: f32,
    pub max_delay: Duration,
    /// Give up after this long without receiving a datum.
    pub max_elapsed: Duration,
    /// Randomise each delay so that consumers of one producer do not retry in step.
    pub jitter: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            factor: 1.5,
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl BackoffConfig {
    /// Refuses delays that cannot grow or that shrink.
    pub fn validate(&self) -> Result<(), StreamsConfigError> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(StreamsConfigError::BackoffFactor(self.factor));
        }
        if self.max_delay < self.initial {
            return Err(StreamsConfigError::BackoffMaxDelay {
                initial: self.initial,
                max_delay: self.max_delay,
            });
        }
        Ok(())
    }
}

/// One receiver's retry state.
pub struct Backoff {
    config: BackoffConfig,
    delays: backon::ExponentialBackoff,
    since: Instant,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            delays: Self::policy(&config),
            config,
            since: Instant::now(),
        }
    }

    fn policy(config: &BackoffConfig) -> backon::ExponentialBackoff {
        let builder = ExponentialBuilder::new()
            .with_min_delay(config.initial)
            .with_factor(config.factor)
            .with_max_delay(config.max_delay)
            .without_max_times();
        if config.jitter {
            builder.with_jitter().build()
        } else {
            builder.build()
        }
    }

    /// A datum arrived: start over.
    pub fn reset(&mut self) {
        self.delays = Self::policy(&self.config);
        self.since = Instant::now();
    }

    /// The wait before the next attempt, or `None` once we should give up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.since.elapsed() >= self.config.max_elapsed {
            return None;
        }
        self.delays.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_grow_and_give_up_after_the_elapsed_bound() {
        let mut backoff = Backoff::new(BackoffConfig::default());
        let first = backoff.next_delay().unwrap();
        assert!(
            first >= Duration::from_millis(500) && first <= Duration::from_millis(1000),
            "{first:?}"
        );
        let mut last = first;
        for _ in 0..20 {
            last = backoff.next_delay().unwrap();
        }
        assert!(last <= Duration::from_secs(120), "{last:?}");
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(backoff.next_delay(), None);
        backoff.reset();
        assert!(backoff.next_delay().unwrap() <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn without_jitter_the_delays_are_exact() {
        let mut backoff = Backoff::new(BackoffConfig {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_millis(500),
            max_elapsed: Duration::from_secs(10),
            jitter: false,
        });
        let delays: Vec<u128> = (0..5)
            .map(|_| backoff.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
    }
}
