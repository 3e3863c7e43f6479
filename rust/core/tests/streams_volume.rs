//! Streams under volume: large datums to a consumer that does not read, and
//! subscribers that open many QUIC streams beside their subscription. Each
//! attack is bounded in count and time; the figure that matters is this
//! process's resident memory (`VmRSS`), which must stay within a bound.

use std::time::{Duration, Instant};

use bytes::BufMut;
use mosaik_core::{
    Digest,
    network::{Protocol, frames::WireFramesBuilder},
    streams::{ConsumerConfig, Lagging, ProducerConfig, StreamsProtocol},
};

mod common;

use common::{WAIT, pair, resident_bytes};

const MIB: u64 = 1024 * 1024;

/// 20 datums of 100 MiB (the 40 × 200 MiB, scaled to a debug build)
/// to a consumer whose reader waits: the producer is held back by QUIC flow
/// control once the consumer's queue holds its bytes, and this process (both
/// nodes) stays under 1 GiB. Without a byte bound the queue takes all 20.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_does_not_read_holds_back_a_producer_of_large_datums() {
    const DATUM: usize = 100 << 20;
    const DATUMS: u64 = 20;
    const CEILING: u64 = 1024 * MIB;
    let (a, b) = pair("volume-bytes").await;
    let stream = Digest::from_name("large");
    let mut config = ProducerConfig::new(stream);
    config.lagging = Lagging::Block;
    let producer = a.streams().producer(config).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    // One frame shared by every send: the producer's side costs it once.
    let mut frame = WireFramesBuilder::new(StreamsProtocol::MAX_FRAME);
    frame.push_with(DATUM, |buf| buf.put_bytes(7, DATUM)).unwrap();
    let frame = frame.finish();
    let sender = tokio::spawn({
        let producer = producer.clone();
        async move {
            for _ in 0..DATUMS {
                producer.send_many(frame.clone()).await.unwrap();
            }
        }
    });

    // Until what the consumer received stops growing for 2 s (at most 60 s).
    let started = Instant::now();
    let (mut peak, mut received, mut since) = (0, 0, Instant::now());
    while since.elapsed() < Duration::from_secs(2) {
        assert!(started.elapsed() < Duration::from_secs(60), "never held back");
        peak = peak.max(resident_bytes());
        assert!(
            peak < CEILING,
            "{} MiB resident with {received} datums received",
            peak / MIB
        );
        let now = consumer.stats().datums();
        if now != received {
            (received, since) = (now, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "held back after {received} of {DATUMS} datums in {:?}, peak {} MiB resident",
        started.elapsed(),
        peak / MIB
    );
    assert!(received < DATUMS, "the producer was held back");

    // The reader starts: every datum arrives, whole, still within the bound.
    for n in 0..DATUMS {
        let datum = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("datum {n} arrives"))
            .unwrap();
        assert_eq!(datum.payload.len(), DATUM);
        assert!(datum.payload.iter().step_by(4096).all(|&byte| byte == 7));
        drop(datum);
        peak = peak.max(resident_bytes());
        assert!(
            peak < CEILING,
            "{} MiB resident after {n} datums read",
            peak / MIB
        );
    }
    sender.await.unwrap();
    println!("all {DATUMS} read, peak {} MiB resident", peak / MIB);
    a.close().await;
    b.close().await;
}
