//! `SyncQueue`: newly discovered peers waiting for the catalog sync we
//! start with each of them, and the budget that paces those dials.
//!
//! A snapshot or a gossip flood can name thousands of new peers, each with
//! addresses the sender chose. We do not dial them all: the queue holds at
//! most `max_pending_syncs` (further sightings are dropped and counted, and
//! come back with a later sighting), and one task dials at most
//! `sync_dials_per_interval` of them per `sync_dial_interval`, at most
//! `max_concurrent_syncs` at once. Peers learned from a source that answered
//! a sync *we* started (a peer we dialed and that replied) go first: a
//! flooder that merely connects to us only fills the other lane, and when
//! the queue is full a vouched peer displaces the oldest unvouched one.

use std::{collections::VecDeque, time::Duration};

use iroh::EndpointAddr;
use tokio::time::Instant;

/// Whom we learned a peer from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// From a peer that answered a sync we started.
    FromAnswering,
    /// From a peer that contacted us (a sync it started, gossip).
    FromOthers,
}

/// What became of a sighting handed to the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    Yes,
    /// Queued, and this older unvouched peer was dropped for it.
    Displaced(EndpointAddr),
    /// The queue is full: not queued.
    Full,
}

pub struct SyncQueue {
    capacity: usize,
    vouched: VecDeque<EndpointAddr>,
    unvouched: VecDeque<EndpointAddr>,
}

impl SyncQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            vouched: VecDeque::new(),
            unvouched: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.vouched.len() + self.unvouched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, addr: EndpointAddr, learned: Learned) -> Queued {
        let mut outcome = Queued::Yes;
        if self.len() >= self.capacity {
            match (learned, self.unvouched.pop_front()) {
                (Learned::FromAnswering, Some(dropped)) => outcome = Queued::Displaced(dropped),
                (_, unvouched) => {
                    if let Some(kept) = unvouched {
                        self.unvouched.push_front(kept);
                    }
                    return Queued::Full;
                }
            }
        }
        match learned {
            Learned::FromAnswering => self.vouched.push_back(addr),
            Learned::FromOthers => self.unvouched.push_back(addr),
        }
        outcome
    }

    /// The next peer to sync with, vouched ones first.
    pub fn pop(&mut self) -> Option<EndpointAddr> {
        self.vouched.pop_front().or_else(|| self.unvouched.pop_front())
    }
}

/// A token bucket: `per_interval` dials per `interval`, refilled smoothly,
/// holding at most `per_interval` (the burst after a quiet spell).
pub struct DialBudget {
    per_interval: usize,
    interval: Duration,
    tokens: f64,
    refilled_at: Instant,
}

impl DialBudget {
    pub fn new(per_interval: usize, interval: Duration) -> Self {
        Self {
            per_interval,
            interval,
            tokens: per_interval as f64,
            refilled_at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        let rate = self.per_interval as f64 / self.interval.as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(self.per_interval as f64);
        self.refilled_at = now;
    }

    /// Takes a dial now, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let rate = self.per_interval as f64 / self.interval.as_secs_f64();
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }

    /// Waits for a dial.
    pub async fn take(&mut self) {
        while let Err(wait) = self.try_take(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;

    fn addr(seed: u8) -> EndpointAddr {
        EndpointAddr::new(SecretKey::from_bytes(&[seed; 32]).public())
    }

    #[test]
    fn vouched_peers_go_first_and_displace_unvouched_ones() {
        let mut queue = SyncQueue::new(2);
        assert_eq!(queue.push(addr(1), Learned::FromOthers), Queued::Yes);
        assert_eq!(queue.push(addr(2), Learned::FromOthers), Queued::Yes);
        assert_eq!(queue.push(addr(3), Learned::FromOthers), Queued::Full);
        assert_eq!(
            queue.push(addr(4), Learned::FromAnswering),
            Queued::Displaced(addr(1))
        );
        assert_eq!(
            queue.push(addr(5), Learned::FromAnswering),
            Queued::Displaced(addr(2))
        );
        assert_eq!(queue.push(addr(6), Learned::FromAnswering), Queued::Full);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop(), Some(addr(4)));
        assert_eq!(queue.pop(), Some(addr(5)));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn the_dial_budget_allows_a_burst_then_paces() {
        let start = Instant::now();
        let mut budget = DialBudget::new(4, Duration::from_secs(4));
        budget.refilled_at = start;
        for _ in 0..4 {
            assert!(budget.try_take(start).is_ok());
        }
        let wait = budget.try_take(start).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert!(budget.try_take(start + Duration::from_secs(1)).is_ok());
        assert!(budget.try_take(start + Duration::from_secs(1)).is_err());
    }
}
