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
//!
//! The queue has two bounds: datums and payload bytes. Counting datums
//! alone would let a producer of 200 MiB datums fill a 1024-datum queue
//! with 200 GiB; with the byte bound too, a reader that does not read holds
//! the producer back through QUIC flow control once the queue holds its
//! bytes. An empty queue takes one datum whatever its size, so a datum
//! larger than the byte bound still gets through, alone.

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

/// How much more a queue takes: datums and payload bytes, and whether its
/// first datum goes whatever its size (the queue is empty).
#[derive(Clone, Copy)]
struct Room {
    datums: usize,
    bytes: usize,
    first_goes: bool,
}

/// Moves the longest prefix of `from` that fits in `room` (splitting a run
/// if need be) to `into`.
fn take_within(from: &mut VecDeque<Arrival>, room: Room, mut into: impl FnMut(Arrival)) {
    let (mut datums, mut bytes) = (0, 0);
    while let Some(front) = from.front_mut() {
        let datums_left = room.datums - datums;
        let bytes_left = room.bytes.saturating_sub(bytes);
        let run = &front.run;
        let alone = room.first_goes && datums == 0 && run.frames == 1;
        if run.frames <= datums_left && (run.payload_bytes <= bytes_left || alone) {
            datums += run.frames;
            bytes += run.payload_bytes;
            into(from.pop_front().expect("a front"));
            continue;
        }
        // Only some of this run fits: count them, then split it there.
        let (mut fit, mut fit_bytes) = (0, 0);
        for payload in run.payloads().take(datums_left) {
            let first = room.first_goes && datums == 0 && fit == 0;
            if fit_bytes + payload.len() > bytes_left && !first {
                break;
            }
            fit += 1;
            fit_bytes += payload.len();
        }
        if fit > 0 {
            let head = front.run.split_to(fit);
            into(Arrival {
                channel: front.channel,
                run: head,
            });
        }
        return;
    }
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
    max_bytes: usize,
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
    /// Payload bytes in `items`.
    bytes: usize,
    /// A writer waits for room (`Block`): the next reader wakes it.
    writer_waits: bool,
    closed: bool,
}

impl State {
    fn push(&mut self, arrival: Arrival) {
        self.len += arrival.run.frames;
        self.bytes += arrival.run.payload_bytes;
        self.items.push_back(arrival);
    }

    /// Takes the first `n` datums off the queue, handing each run to `into`.
    fn take(&mut self, n: usize, mut into: impl FnMut(Arrival)) -> usize {
        let mut bytes = 0;
        let taken = take_datums(&mut self.items, n, |a| {
            bytes += a.run.payload_bytes;
            into(a);
        });
        self.len -= taken;
        self.bytes -= bytes;
        taken
    }

    fn room(&self, capacity: usize, max_bytes: usize) -> Room {
        Room {
            datums: capacity - self.len,
            bytes: max_bytes.saturating_sub(self.bytes),
            first_goes: self.len == 0,
        }
    }
}

impl DeliveryQueue {
    /// A queue of `capacity` datums and `max_bytes` payload bytes
    /// (`ConsumerConfig::validate` makes both >= 1).
    pub fn new(capacity: usize, max_bytes: usize, overflow: Overflow) -> Self {
        debug_assert!(capacity >= 1, "a queue holds at least one datum");
        Self {
            capacity,
            max_bytes,
            overflow,
            state: Mutex::new(State {
                items: VecDeque::new(),
                len: 0,
                bytes: 0,
                writer_waits: false,
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
                let room = state.room(self.capacity, self.max_bytes);
                let dropped = match self.overflow {
                    Overflow::Block => {
                        take_within(arrivals, room, |a| state.push(a));
                        state.writer_waits |= !arrivals.is_empty();
                        0
                    }
                    Overflow::DropNewest => {
                        take_within(arrivals, room, |a| state.push(a));
                        let dropped = datums_in(arrivals);
                        arrivals.clear();
                        dropped
                    }
                    Overflow::DropOldest => {
                        // Keep the newest that fit: first what was queued
                        // longest, then the oldest of the new ones, go (but
                        // never the newest datum).
                        let mut dropped = datums_in(arrivals).saturating_sub(self.capacity);
                        take_datums(arrivals, dropped, drop);
                        arrivals.drain(..).for_each(|a| state.push(a));
                        let over = state.len.saturating_sub(self.capacity);
                        dropped += state.take(over, drop);
                        while state.bytes > self.max_bytes && state.len > 1 {
                            dropped += state.take(1, drop);
                        }
                        dropped
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
        let writer_waits = std::mem::take(&mut state.writer_waits);
        let mut batch = Vec::new();
        state.take(max.max(1), |a| batch.push(a));
        let more = state.len > 0;
        drop(state);
        if writer_waits {
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
#[path = "queue_tests.rs"]
mod tests;
