//! The consumer's bounded delivery queue, shared by all its receivers.
//!
//! Every datum keeps the key of the channel it came from, so the reader can
//! end the subscription of a producer whose datum it cannot decode. When
//! the queue is full, [`Overflow`] decides: wait for room (backpressure all
//! the way to the producer, nothing lost), drop the oldest queued datum, or
//! drop the new one. Readers are woken when the queue goes from empty to
//! non-empty, not once per datum, and take many datums per wake. A reader
//! outside tokio (Python's event loop) waits on a [`ReadySignal`] instead.
//! Datums that arrived together stay together ([`Arrival`]: one run of
//! wire frames, as the link cut it): queueing and taking them costs one
//! step per run, not per datum, and the bound still counts datums.

use std::{
    collections::VecDeque,
    io,
    pin::pin,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::network::frames::FrameRun;
use crate::primitives::ReadySignal;

/// What a full queue does with a new datum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// The receiver waits for room: the producer is held back.
    Block,
    /// The oldest queued datum is dropped to make room.
    DropOldest,
    /// The new datum is dropped.
    DropNewest,
}

/// One received datum and the channel it came through.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub channel: u64,
    pub payload: Bytes,
}

/// Datums that arrived together through one channel.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub channel: u64,
    pub run: FrameRun,
}

impl Arrival {
    /// Each datum on its own (slices of the run, not copies).
    pub fn deliveries(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.run.payloads().map(|payload| Delivery {
            channel: self.channel,
            payload: self.run.wire.slice_ref(payload),
        })
    }
}

/// Moves the first `n` datums of `from` (splitting a run if need be) to
/// `into`; returns how many there were.
fn take_datums(from: &mut VecDeque<Arrival>, n: usize, mut into: impl FnMut(Arrival)) -> usize {
    let mut taken = 0;
    while taken < n {
        let Some(front) = from.front_mut() else { break };
        let want = n - taken;
        if front.run.frames <= want {
            taken += front.run.frames;
            into(from.pop_front().expect("a front"));
        } else {
            let head = front.run.split_to(want);
            taken += want;
            into(Arrival {
                channel: front.channel,
                run: head,
            });
        }
    }
    taken
}

fn datums_in(arrivals: &VecDeque<Arrival>) -> usize {
    arrivals.iter().map(|a| a.run.frames).sum()
}

/// The queue was closed: nothing more is accepted.
#[derive(Debug)]
pub struct QueueClosed;

/// Why `try_pop_many` returned no datums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued yet.
    Empty,
    /// The queue is closed and drained: nothing more will come.
    Closed,
}

pub struct DeliveryQueue {
    capacity: usize,
    overflow: Overflow,
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
    /// Made on first use by a reader outside tokio.
    ready: OnceLock<ReadySignal>,
    dropped: AtomicU64,
}

struct State {
    items: VecDeque<Arrival>,
    /// Datums in `items`.
    len: usize,
    closed: bool,
}

impl State {
    fn push(&mut self, arrival: Arrival) {
        self.len += arrival.run.frames;
        self.items.push_back(arrival);
    }
}

impl DeliveryQueue {
    /// A queue of `capacity` datums (`ConsumerConfig::validate` makes it >= 1).
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        debug_assert!(capacity >= 1, "a queue holds at least one datum");
        Self {
            capacity,
            overflow,
            state: Mutex::new(State {
                items: VecDeque::new(),
                len: 0,
                closed: false,
            }),
            readable: Notify::new(),
            writable: Notify::new(),
            ready: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Datums dropped by the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues `arrivals` in order (emptying it) under one lock at a time,
    /// applying the overflow policy when full: `Block` waits for room for
    /// the rest, the drop policies never wait.
    pub async fn push_many(&self, arrivals: &mut VecDeque<Arrival>) -> Result<(), QueueClosed> {
        loop {
            let mut writable = pin!(self.writable.notified());
            writable.as_mut().enable();
            {
                let mut state = self.state.lock().expect("queue");
                if state.closed {
                    return Err(QueueClosed);
                }
                let was_empty = state.len == 0;
                let room = self.capacity - state.len;
                let dropped = match self.overflow {
                    Overflow::Block => {
                        take_datums(arrivals, room, |a| state.push(a));
                        0
                    }
                    Overflow::DropNewest => {
                        take_datums(arrivals, room, |a| state.push(a));
                        let dropped = datums_in(arrivals);
                        arrivals.clear();
                        dropped
                    }
                    Overflow::DropOldest => {
                        // Keep the newest `capacity`: first what was queued
                        // longest, then the oldest of the new ones, go.
                        let excess = datums_in(arrivals).saturating_sub(room);
                        let from_queue = excess.min(state.len);
                        take_datums(&mut state.items, from_queue, drop);
                        state.len -= from_queue;
                        take_datums(arrivals, excess - from_queue, drop);
                        arrivals.drain(..).for_each(|a| state.push(a));
                        excess
                    }
                };
                let readable = state.len > 0;
                drop(state);
                if dropped > 0 {
                    self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
                }
                if was_empty && readable {
                    self.readable.notify_waiters();
                }
                if readable {
                    self.fire_ready();
                }
                if arrivals.is_empty() {
                    return Ok(());
                }
            }
            writable.await;
        }
    }

    /// Up to `max` datums, waiting for the first; empty once closed and drained.
    pub async fn pop_many(&self, max: usize) -> Vec<Arrival> {
        loop {
            let mut readable = pin!(self.readable.notified());
            readable.as_mut().enable();
            match self.try_pop_many(max) {
                Ok(batch) => return batch,
                Err(TryRecvError::Closed) => return Vec::new(),
                Err(TryRecvError::Empty) => readable.await,
            }
        }
    }

    /// Up to `max` datums if any are queued (at least one is taken even
    /// when `max` is 0).
    pub fn try_pop_many(&self, max: usize) -> Result<Vec<Arrival>, TryRecvError> {
        let mut state = self.state.lock().expect("queue");
        if state.len == 0 {
            return Err(if state.closed {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        }
        let was_full = state.len >= self.capacity;
        let mut batch = Vec::new();
        let taken = take_datums(&mut state.items, max.max(1), |a| batch.push(a));
        state.len -= taken;
        let more = state.len > 0;
        drop(state);
        if was_full {
            self.writable.notify_waiters();
        }
        if more {
            // Another reader may be waiting behind this one.
            self.readable.notify_waiters();
        }
        Ok(batch)
    }

    /// Refuses new datums; queued ones stay readable.
    pub fn close(&self) {
        self.state.lock().expect("queue").closed = true;
        self.readable.notify_waiters();
        self.writable.notify_waiters();
        self.fire_ready();
    }

    /// The descriptor that becomes readable when an armed reader may go on.
    pub fn ready_fd(&self) -> io::Result<std::os::fd::RawFd> {
        if let Some(signal) = self.ready.get() {
            return Ok(signal.fd());
        }
        let signal = ReadySignal::new()?;
        Ok(self.ready.get_or_init(|| signal).fd())
    }

    /// Arms the ready descriptor; false if the reader should wait on it,
    /// true if a datum is queued or the queue closed (nothing to wait for).
    pub fn arm_ready(&self) -> bool {
        let Some(signal) = self.ready.get() else {
            return true; // no descriptor yet: the reader looks again
        };
        signal.arm();
        let state = self.state.lock().expect("queue");
        if state.len > 0 || state.closed {
            signal.disarm();
            return true;
        }
        false
    }

    /// Makes the ready descriptor unreadable again after a wake.
    pub fn clear_ready(&self) {
        if let Some(signal) = self.ready.get() {
            signal.clear();
        }
    }

    fn fire_ready(&self) {
        if let Some(signal) = self.ready.get() {
            signal.fire();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use bytes::BufMut;

    use super::*;
    use crate::network::frames::WireFramesBuilder;

    impl DeliveryQueue {
        /// One arrival, as the receivers' batches do it.
        async fn push(&self, arrival: Arrival) -> Result<(), QueueClosed> {
            self.push_many(&mut VecDeque::from([arrival])).await
        }
    }

    /// Datums `ns` (one byte each) arrived together.
    fn arrival(ns: impl IntoIterator<Item = u8>) -> Arrival {
        let mut frames = WireFramesBuilder::new(16);
        let mut count = 0;
        for n in ns {
            frames.push_with(1, |buf| buf.put_u8(n)).unwrap();
            count += 1;
        }
        Arrival {
            channel: 1,
            run: frames.finish().run(0..count),
        }
    }

    fn datum(n: u8) -> Arrival {
        arrival([n])
    }

    fn payloads(batch: Vec<Arrival>) -> Vec<u8> {
        let datums = batch.iter().flat_map(|a| a.deliveries().collect::<Vec<_>>());
        datums.map(|d| d.payload[0]).collect()
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_queue_follows_each_policy() {
        // Five datums that arrived as two runs.
        let batch = || VecDeque::from([arrival(0..2), arrival(2..5)]);
        let newest = DeliveryQueue::new(3, Overflow::DropOldest);
        newest.push(datum(9)).await.unwrap();
        newest.push_many(&mut batch()).await.unwrap();
        assert_eq!(payloads(newest.pop_many(10).await), vec![2, 3, 4]);
        assert_eq!(newest.dropped(), 3);

        let oldest = DeliveryQueue::new(3, Overflow::DropNewest);
        oldest.push(datum(9)).await.unwrap();
        oldest.push_many(&mut batch()).await.unwrap();
        assert_eq!(payloads(oldest.pop_many(10).await), vec![9, 0, 1]);
        assert_eq!(oldest.dropped(), 3);

        let blocking = Arc::new(DeliveryQueue::new(3, Overflow::Block));
        let pusher = tokio::spawn({
            let blocking = blocking.clone();
            async move { blocking.push_many(&mut batch()).await }
        });
        let mut got = Vec::new();
        while got.len() < 5 {
            got.extend(payloads(blocking.pop_many(2).await));
        }
        pusher.await.unwrap().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4], "all of it, in order, none dropped");
        assert_eq!(blocking.dropped(), 0);
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest() {
        let queue = DeliveryQueue::new(3, Overflow::DropOldest);
        for n in 0..5 {
            queue.push(datum(n)).await.unwrap();
        }
        assert_eq!(payloads(queue.pop_many(10).await), vec![2, 3, 4]);
        assert_eq!(queue.dropped(), 2);
    }

    #[tokio::test]
    async fn drop_newest_keeps_the_oldest() {
        let queue = DeliveryQueue::new(3, Overflow::DropNewest);
        for n in 0..5 {
            queue.push(datum(n)).await.unwrap();
        }
        assert_eq!(payloads(queue.pop_many(10).await), vec![0, 1, 2]);
        assert_eq!(queue.dropped(), 2);
    }

    #[tokio::test]
    async fn block_waits_for_room_and_loses_nothing() {
        let queue = Arc::new(DeliveryQueue::new(2, Overflow::Block));
        let writer = {
            let queue = queue.clone();
            tokio::spawn(async move {
                for n in 0..100 {
                    queue.push(datum(n)).await.unwrap();
                }
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let batch = tokio::time::timeout(Duration::from_secs(5), queue.pop_many(7))
                .await
                .expect("a reader is woken");
            let got = payloads(batch);
            assert!(got.len() <= 2, "never more than the capacity is queued");
            seen.extend(got);
        }
        writer.await.unwrap();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        assert_eq!(queue.dropped(), 0);
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_refuses_new_datums() {
        let queue = DeliveryQueue::new(4, Overflow::Block);
        queue.push(datum(7)).await.unwrap();
        queue.close();
        assert!(queue.push(datum(8)).await.is_err());
        assert_eq!(payloads(queue.pop_many(4).await), vec![7]);
        assert!(queue.pop_many(4).await.is_empty());
        assert!(matches!(queue.try_pop_many(4), Err(TryRecvError::Closed)));
    }

    #[tokio::test]
    async fn close_wakes_a_blocked_writer_and_a_waiting_reader() {
        let queue = Arc::new(DeliveryQueue::new(1, Overflow::Block));
        queue.push(datum(1)).await.unwrap();
        let writer = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push(datum(2)).await })
        };
        let empty = Arc::new(DeliveryQueue::new(1, Overflow::Block));
        let reader = {
            let empty = empty.clone();
            tokio::spawn(async move { empty.pop_many(1).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.close();
        empty.close();
        let written = tokio::time::timeout(Duration::from_secs(2), writer).await;
        assert!(written.expect("writer woken").unwrap().is_err());
        let read = tokio::time::timeout(Duration::from_secs(2), reader).await;
        assert!(read.expect("reader woken").unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_armed_reader_is_woken_by_the_next_datum_and_by_close() {
        let queue = DeliveryQueue::new(4, Overflow::Block);
        assert!(queue.arm_ready(), "no descriptor yet: look again, do not wait");
        queue.ready_fd().unwrap();
        let readable = || queue.ready.get().expect("made").is_readable();
        assert!(!queue.arm_ready(), "empty: wait");
        assert!(!readable());
        queue.push(datum(1)).await.unwrap();
        assert!(readable());
        queue.clear_ready();
        assert!(!readable());
        assert!(queue.arm_ready(), "a datum is queued: no wait");
        queue.push(datum(2)).await.unwrap();
        assert!(!readable(), "not armed while data was there");
        assert_eq!(payloads(queue.try_pop_many(8).unwrap()), [1, 2]);
        assert!(!queue.arm_ready());
        queue.close();
        assert!(readable(), "closing wakes the reader");
        queue.clear_ready();
        assert!(queue.arm_ready(), "closed: nothing to wait for");
    }
}
