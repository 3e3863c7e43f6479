//! Bond liveness, as mosaik's: a ping tick every `interval - rand % jitter`
//! (drawn once per bond, redrawn after each frame received); a tick that
//! finds nothing received for `interval + jitter` counts as missed, and
//! `max_missed` missed ticks in a row end the bond with 30408 (groups spec
//! §2.8).

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Heartbeat {
    base: Duration,
    jitter: Duration,
    max_missed: u32,
    last_received: Instant,
    missed: u32,
    next_tick: Instant,
}

/// What a tick found.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// Send a ping (if nothing else is queued).
    Ping,
    /// Too many missed ticks: the peer is gone.
    Dead,
}

impl Heartbeat {
    pub fn new(base: Duration, jitter: Duration, max_missed: u32) -> Self {
        let now = Instant::now();
        Self {
            base,
            jitter,
            max_missed,
            last_received: now,
            missed: 0,
            // The first tick fires at once (tokio's `Interval`).
            next_tick: now,
        }
    }

    fn period(&self) -> Duration {
        let jitter_ms = self.jitter.as_millis() as u64;
        let off = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..jitter_ms)
        };
        self.base.saturating_sub(Duration::from_millis(off))
    }

    pub fn next_tick(&self) -> Instant {
        self.next_tick
    }

    /// Anything arrived from the peer.
    pub fn received(&mut self) {
        let now = Instant::now();
        self.last_received = now;
        self.missed = 0;
        self.next_tick = now + self.period();
    }

    pub fn tick(&mut self) -> Tick {
        let now = Instant::now();
        self.next_tick = now + self.period();
        if now.duration_since(self.last_received) > self.base + self.jitter {
            self.missed += 1;
            if self.missed >= self.max_missed {
                return Tick::Dead;
            }
        }
        Tick::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_ends_the_bond_after_max_missed_ticks() {
        let mut heartbeat = Heartbeat::new(Duration::from_millis(500), Duration::from_millis(150), 10);
        let start = Instant::now();
        loop {
            tokio::time::sleep_until(heartbeat.next_tick()).await;
            if heartbeat.tick() == Tick::Dead {
                break;
            }
        }
        let silent = start.elapsed();
        assert!(
            silent >= Duration::from_millis(3800) && silent <= Duration::from_millis(5200),
            "{silent:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn any_frame_resets_the_count() {
        let mut heartbeat = Heartbeat::new(Duration::from_millis(500), Duration::from_millis(150), 3);
        for _ in 0..20 {
            tokio::time::sleep_until(heartbeat.next_tick()).await;
            assert_eq!(heartbeat.tick(), Tick::Ping);
            heartbeat.received();
        }
    }
}
