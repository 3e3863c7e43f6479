//! The producer's bounded queue of frames for one consumer.
//!
//! `send` puts a whole batch into every consumer's outbox under one lock
//! each, and the consumer's sender takes everything queued at once: one wake
//! per batch, not one channel hop per datum. The bound is in datums
//! (`buffer_size`, as in mosaik); what a full outbox means is the producer's
//! `Lagging` policy, decided by the caller.

use std::{
    collections::VecDeque,
    pin::pin,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use tokio::sync::Notify;

pub struct Outbox {
    capacity: usize,
    frames: Mutex<VecDeque<Bytes>>,
    /// Read without the lock on every `send` (to prune gone consumers);
    /// set under it, so a push never lands after the close.
    closed: AtomicBool,
    /// The sender waits here for frames.
    readable: Notify,
    /// Producers held back by a full outbox (`Lagging::Block`) wait here.
    writable: Notify,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            frames: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            closed: AtomicBool::new(false),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    /// How many frames fit now (all of them once closed: they are dropped).
    pub fn room(&self) -> usize {
        let frames = self.frames.lock().expect("outbox");
        if self.is_closed() {
            usize::MAX
        } else {
            self.capacity - frames.len()
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues the frames that fit, in order; returns how many did. A closed
    /// outbox takes (and drops) them all: its consumer is gone.
    pub fn push_many(&self, frames: &[Bytes]) -> usize {
        let mut queued = self.frames.lock().expect("outbox");
        if self.is_closed() {
            return frames.len();
        }
        let fit = frames.len().min(self.capacity - queued.len());
        if fit == 0 {
            return 0;
        }
        let was_empty = queued.is_empty();
        queued.extend(frames[..fit].iter().cloned());
        drop(queued);
        if was_empty {
            self.readable.notify_one();
        }
        fit
    }

    /// Until at least one frame fits (or the outbox closed).
    pub async fn wait_room(&self) {
        loop {
            let mut writable = pin!(self.writable.notified());
            writable.as_mut().enable();
            if self.room() > 0 {
                return;
            }
            writable.await;
        }
    }

    /// Moves up to `max` queued frames into `into`, waiting for the first;
    /// false once closed and empty.
    pub async fn pop_many(&self, max: usize, into: &mut VecDeque<Bytes>) -> bool {
        loop {
            let readable = self.readable.notified();
            if self.try_pop_many(max, into) {
                return true;
            }
            if self.is_closed() {
                return false;
            }
            readable.await;
        }
    }

    /// Moves up to `max` queued frames into `into`; false if none were queued.
    pub fn try_pop_many(&self, max: usize, into: &mut VecDeque<Bytes>) -> bool {
        let mut queued = self.frames.lock().expect("outbox");
        let take = max.min(queued.len());
        if take == 0 {
            return false;
        }
        into.extend(queued.drain(..take));
        drop(queued);
        self.writable.notify_waiters();
        true
    }

    /// Refuses frames from now on (they are dropped), and wakes everyone.
    pub fn close(&self) {
        {
            let _frames = self.frames.lock().expect("outbox");
            self.closed.store(true, Ordering::Release);
        }
        self.readable.notify_one();
        self.writable.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frames(n: u8) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(vec![i])).collect()
    }

    #[tokio::test]
    async fn takes_what_fits_in_order_and_hands_it_out_at_once() {
        let outbox = Outbox::new(3);
        assert_eq!(outbox.push_many(&frames(2)), 2);
        assert_eq!(outbox.push_many(&frames(2)), 1, "one place left");
        assert_eq!(outbox.room(), 0);
        let mut got = VecDeque::new();
        assert!(outbox.pop_many(10, &mut got).await);
        assert_eq!(Vec::from(got), [frames(2), frames(1)].concat());
        assert_eq!(outbox.room(), 3);
    }

    #[tokio::test]
    async fn a_full_outbox_wakes_the_waiting_producer_when_drained() {
        let outbox = Outbox::new(1);
        outbox.push_many(&frames(1));
        let mut waiter = pin!(outbox.wait_room());
        assert!(futures::poll!(waiter.as_mut()).is_pending(), "full: it waits");
        let mut got = VecDeque::new();
        assert!(outbox.try_pop_many(1, &mut got));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn closing_drops_new_frames_and_ends_the_sender_once_empty() {
        let outbox = Outbox::new(4);
        outbox.push_many(&frames(1));
        outbox.close();
        assert_eq!(outbox.push_many(&frames(3)), 3, "taken and dropped");
        let mut got = VecDeque::new();
        assert!(outbox.pop_many(10, &mut got).await, "queued frames still go out");
        assert_eq!(got.len(), 1);
        assert!(!outbox.pop_many(10, &mut got).await);
    }
}
