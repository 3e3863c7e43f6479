//! The producer's bounded queue of frames for one consumer.
//!
//! `send` puts a whole batch into every consumer's outbox under one lock
//! each, as one run of wire frames (a slice of the batch's one buffer,
//! shared by all outboxes), and the consumer's sender takes everything
//! queued at once: one wake and one write per batch, not one channel hop or
//! copy per datum. The bound is in datums
//! (`buffer_size`, as in mosaik); what a full outbox means is the producer's
//! `Lagging` policy, decided by the caller.

use std::{
    collections::VecDeque,
    ops::Range,
    pin::pin,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::Notify;

use crate::network::frames::{FrameRun, WireFrames};

pub struct Outbox {
    capacity: usize,
    queued: Mutex<Queued>,
    /// Read without the lock on every `send` (to prune gone consumers);
    /// set under it, so a push never lands after the close.
    closed: AtomicBool,
    /// The sender waits here for frames.
    readable: Notify,
    /// Producers held back by a full outbox (`Lagging::Block`) wait here.
    writable: Notify,
}

/// Runs of frames as `send` queued them (one per batch), and their total.
#[derive(Default)]
struct Queued {
    runs: VecDeque<FrameRun>,
    frames: usize,
}

impl Outbox {
    /// An outbox of `capacity` frames (`ProducerConfig::validate` makes it >= 1).
    pub fn new(capacity: usize) -> Self {
        debug_assert!(capacity >= 1, "an outbox holds at least one frame");
        Self {
            capacity,
            queued: Mutex::default(),
            closed: AtomicBool::new(false),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    /// How many frames fit now (all of them once closed: they are dropped).
    pub fn room(&self) -> usize {
        let queued = self.queued.lock().expect("outbox");
        if self.is_closed() {
            usize::MAX
        } else {
            self.capacity - queued.frames
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues the frames of `range` that fit, in order, as one run; returns
    /// how many did. A closed outbox takes (and drops) them all: its
    /// consumer is gone.
    pub fn push(&self, frames: &WireFrames, range: Range<usize>) -> usize {
        let mut queued = self.queued.lock().expect("outbox");
        if self.is_closed() {
            return range.len();
        }
        let fit = range.len().min(self.capacity - queued.frames);
        if fit == 0 {
            return 0;
        }
        let was_empty = queued.frames == 0;
        queued.runs.push_back(frames.run(range.start..range.start + fit));
        queued.frames += fit;
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

    /// Moves queued runs into `into` until they hold `max` frames or more,
    /// waiting for the first; false once closed and empty.
    pub async fn pop_many(&self, max: usize, into: &mut VecDeque<FrameRun>) -> bool {
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

    /// Moves queued runs into `into` until they hold `max` frames or more;
    /// false if none were queued.
    pub fn try_pop_many(&self, max: usize, into: &mut VecDeque<FrameRun>) -> bool {
        let mut queued = self.queued.lock().expect("outbox");
        let mut taken = 0;
        while taken < max.max(1) {
            let Some(run) = queued.runs.pop_front() else { break };
            taken += run.frames;
            into.push_back(run);
        }
        if taken == 0 {
            return false;
        }
        queued.frames -= taken;
        drop(queued);
        self.writable.notify_waiters();
        true
    }

    /// Refuses frames from now on (they are dropped), and wakes everyone.
    pub fn close(&self) {
        {
            let _queued = self.queued.lock().expect("outbox");
            self.closed.store(true, Ordering::Release);
        }
        self.readable.notify_one();
        self.writable.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BufMut;

    use super::*;
    use crate::network::frames::{PREFIX, WireFramesBuilder};

    fn frames(n: u8) -> WireFrames {
        let mut builder = WireFramesBuilder::new(16);
        for i in 0..n {
            builder.push_with(1, |buf| buf.put_u8(i)).unwrap();
        }
        builder.finish()
    }

    fn push_all(outbox: &Outbox, frames: &WireFrames) -> usize {
        outbox.push(frames, 0..frames.len())
    }

    /// The payloads of `runs`, in order.
    fn payloads(runs: &VecDeque<FrameRun>) -> Vec<u8> {
        let wire: Vec<u8> = runs.iter().flat_map(|run| run.wire.to_vec()).collect();
        wire.chunks(PREFIX + 1).map(|frame| frame[PREFIX]).collect()
    }

    #[tokio::test]
    async fn takes_what_fits_in_order_and_hands_it_out_at_once() {
        let outbox = Outbox::new(3);
        assert_eq!(push_all(&outbox, &frames(2)), 2);
        assert_eq!(push_all(&outbox, &frames(2)), 1, "one place left");
        assert_eq!(outbox.room(), 0);
        let mut got = VecDeque::new();
        assert!(outbox.pop_many(10, &mut got).await);
        assert_eq!(payloads(&got), [0, 1, 0]);
        assert_eq!(got.len(), 2, "one run per push");
        assert_eq!(outbox.room(), 3);
    }

    #[tokio::test]
    async fn a_full_outbox_wakes_the_waiting_producer_when_drained() {
        let outbox = Outbox::new(1);
        push_all(&outbox, &frames(1));
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
        push_all(&outbox, &frames(1));
        outbox.close();
        assert_eq!(push_all(&outbox, &frames(3)), 3, "taken and dropped");
        let mut got = VecDeque::new();
        assert!(outbox.pop_many(10, &mut got).await, "queued frames still go out");
        assert_eq!(got.len(), 1);
        assert!(!outbox.pop_many(10, &mut got).await);
    }
}
