//! The delivery queue's unit tests: each overflow policy, both bounds,
//! closing, and the ready descriptor.

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
    let newest = DeliveryQueue::new(3, usize::MAX, Overflow::DropOldest);
    newest.push(datum(9)).await.unwrap();
    newest.push_many(&mut batch()).await.unwrap();
    assert_eq!(payloads(newest.pop_many(10).await), vec![2, 3, 4]);
    assert_eq!(newest.dropped(), 3);

    let oldest = DeliveryQueue::new(3, usize::MAX, Overflow::DropNewest);
    oldest.push(datum(9)).await.unwrap();
    oldest.push_many(&mut batch()).await.unwrap();
    assert_eq!(payloads(oldest.pop_many(10).await), vec![9, 0, 1]);
    assert_eq!(oldest.dropped(), 3);

    let blocking = Arc::new(DeliveryQueue::new(3, usize::MAX, Overflow::Block));
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

/// Datums of `sizes` bytes (each filled with its index) arrived together.
fn sized(sizes: &[usize]) -> Arrival {
    let mut frames = WireFramesBuilder::new(1 << 20);
    for (n, size) in sizes.iter().enumerate() {
        frames
            .push_with(*size, |buf| buf.put_bytes(n as u8, *size))
            .unwrap();
    }
    Arrival {
        channel: 1,
        run: frames.finish().run(0..sizes.len()),
    }
}

#[tokio::test]
async fn the_byte_bound_holds_back_a_writer_and_passes_a_large_datum_alone() {
    let queue = Arc::new(DeliveryQueue::new(100, 10, Overflow::Block));
    let writer = tokio::spawn({
        let queue = queue.clone();
        async move {
            queue
                .push_many(&mut VecDeque::from([sized(&[4, 4, 4, 50, 1])]))
                .await
        }
    });
    let mut batches = Vec::new();
    while batches.iter().map(Vec::len).sum::<usize>() < 5 {
        let batch = tokio::time::timeout(Duration::from_secs(5), queue.pop_many(100))
            .await
            .expect("the writer gets room");
        let sizes: Vec<usize> = batch
            .iter()
            .flat_map(|a| a.deliveries().map(|d| d.payload.len()).collect::<Vec<_>>())
            .collect();
        assert!(
            sizes.iter().sum::<usize>() <= 10 || sizes.len() == 1,
            "within the bound, or one datum alone: {sizes:?}"
        );
        batches.push(sizes);
    }
    writer.await.unwrap().unwrap();
    assert_eq!(batches.concat(), [4, 4, 4, 50, 1], "in order, nothing dropped");

    let newest = DeliveryQueue::new(100, 10, Overflow::DropOldest);
    newest.push(sized(&[4, 4, 4, 4])).await.unwrap();
    assert_eq!(newest.dropped(), 2, "the newest 8 bytes stay");
    let oldest = DeliveryQueue::new(100, 10, Overflow::DropNewest);
    oldest.push(sized(&[4, 4, 4, 4])).await.unwrap();
    assert_eq!(payloads(oldest.pop_many(10).await), [0, 1]);
    assert_eq!(oldest.dropped(), 2);
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest() {
    let queue = DeliveryQueue::new(3, usize::MAX, Overflow::DropOldest);
    for n in 0..5 {
        queue.push(datum(n)).await.unwrap();
    }
    assert_eq!(payloads(queue.pop_many(10).await), vec![2, 3, 4]);
    assert_eq!(queue.dropped(), 2);
}

#[tokio::test]
async fn drop_newest_keeps_the_oldest() {
    let queue = DeliveryQueue::new(3, usize::MAX, Overflow::DropNewest);
    for n in 0..5 {
        queue.push(datum(n)).await.unwrap();
    }
    assert_eq!(payloads(queue.pop_many(10).await), vec![0, 1, 2]);
    assert_eq!(queue.dropped(), 2);
}

#[tokio::test]
async fn block_waits_for_room_and_loses_nothing() {
    let queue = Arc::new(DeliveryQueue::new(2, usize::MAX, Overflow::Block));
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
    let queue = DeliveryQueue::new(4, usize::MAX, Overflow::Block);
    queue.push(datum(7)).await.unwrap();
    queue.close();
    assert!(queue.push(datum(8)).await.is_err());
    assert_eq!(payloads(queue.pop_many(4).await), vec![7]);
    assert!(queue.pop_many(4).await.is_empty());
    assert!(matches!(queue.try_pop_many(4), Err(TryRecvError::Closed)));
}

#[tokio::test]
async fn close_wakes_a_blocked_writer_and_a_waiting_reader() {
    let queue = Arc::new(DeliveryQueue::new(1, usize::MAX, Overflow::Block));
    queue.push(datum(1)).await.unwrap();
    let writer = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.push(datum(2)).await })
    };
    let empty = Arc::new(DeliveryQueue::new(1, usize::MAX, Overflow::Block));
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
    let queue = DeliveryQueue::new(4, usize::MAX, Overflow::Block);
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
