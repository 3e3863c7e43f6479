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

/// Both memory tests read this process's resident size: run side by side
/// (as `cargo test` does), each would count the other's allocations.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 20 datums of 100 MiB (the 40 × 200 MiB, scaled to a debug build)
/// to a consumer whose reader waits: the producer is held back by QUIC flow
/// control once the consumer's queue holds its bytes, and this process (both
/// nodes) stays under 1 GiB. Without a byte bound the queue takes all 20.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_does_not_read_holds_back_a_producer_of_large_datums() {
    let _alone = MEASURING.lock().await;
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

/// Set (to the victim's address, as JSON) in the child process that attacks.
const FLOOD_VICTIM: &str = "MOSAIK_TEST_FLOOD_VICTIM";
const FLOOD_CONNECTIONS: usize = 40;
const FLOOD_EXTRA_STREAMS: usize = 199;
/// What the attacker writes into each stream at most (the victim never
/// reads any of it).
const FLOOD_PER_STREAM: usize = 128 * 1024;

/// 40 subscriptions, each opening 199 more streams (as many as the victim
/// grants) and filling them: the victim, this process, holds at most a few
/// MB per connection. The attacker runs in a child process (this test
/// binary again, `flood_attacker`) so that only the victim is measured.
#[tokio::test(flavor = "multi_thread")]
async fn streams_a_subscriber_opens_beside_its_subscription_cost_a_few_mb() {
    use std::io::BufRead;

    let _alone = MEASURING.lock().await;
    let (a, b) = pair("volume-flood").await;
    let stream = Digest::from_name("flooded");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let before = resident_bytes();
    let mut attacker = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "flood_attacker", "--nocapture", "--test-threads=1"])
        .env(FLOOD_VICTIM, serde_json::to_string(&a.addr()).unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = attacker.stdout.take().unwrap();
    let report = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest prints the test's name on the same line first.
            .find_map(|line| line.find("FLOODED").map(|at| line[at..].to_string()))
    });
    let report = tokio::time::timeout(Duration::from_secs(90), report)
        .await
        .expect("the attacker reports within 90 s")
        .unwrap()
        .expect("the attacker reports");
    // What is in flight lands within a moment: take the peak over 1 s.
    let mut peak = resident_bytes();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(resident_bytes());
    }
    let grown = peak.saturating_sub(before);
    let per_connection = grown / FLOOD_CONNECTIONS as u64;
    println!(
        "{report}; victim grew {} MiB ({} KiB per connection)",
        grown / MIB,
        per_connection / 1024
    );
    // An honest consumer is still served meanwhile.
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    producer.send(bytes::Bytes::from_static(b"fine")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"fine");
    attacker.kill().unwrap();
    attacker.wait().unwrap();
    assert!(
        per_connection < 4 * MIB,
        "{} KiB per connection",
        per_connection / 1024
    );
    a.close().await;
    b.close().await;
}

/// The attacker of the test above; does nothing unless run as its child.
#[tokio::test(flavor = "multi_thread")]
async fn flood_attacker() {
    use mosaik_core::{
        Node, NodeConfig,
        streams::handshake::{ConsumerHandshake, Criteria},
    };

    let Ok(victim) = std::env::var(FLOOD_VICTIM) else {
        return;
    };
    let victim: mosaik_core::network::EndpointAddr = serde_json::from_str(&victim).unwrap();
    let mut config = NodeConfig::local(Digest::from_name("volume-flood"));
    config.bootstrap = vec![victim.clone()];
    let node = Node::spawn(config).await.unwrap();
    tokio::time::timeout(WAIT, node.discovery().wait_for_peers(1))
        .await
        .unwrap();
    let handshake = mosaik_core::primitives::encoding::encode(&ConsumerHandshake {
        network_id: node.discovery().network(),
        stream_id: Digest::from_name("flooded"),
        criteria: Criteria {},
    })
    .unwrap();
    let fill = bytes::Bytes::from(vec![0xAB; FLOOD_PER_STREAM]);
    let attacks = (0..FLOOD_CONNECTIONS).map(|_| {
        let (endpoint, victim, handshake, fill) = (
            node.endpoint().clone(),
            victim.clone(),
            handshake.clone(),
            fill.clone(),
        );
        async move {
            let connection = endpoint.connect(victim, StreamsProtocol::ALPN).await.unwrap();
            // Its receiving half is kept: dropping it would stop the
            // producer's stream, and the producer would end the subscription.
            let (mut subscription, start) = connection.open_bi().await.unwrap();
            let mut framed = (handshake.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&handshake);
            subscription.write_all(&framed).await.unwrap();
            // Open as many streams as granted (a stream waiting for credit
            // is given up after 200 ms), then fill them all at once for 5 s.
            let mut streams = vec![subscription];
            for n in 0..FLOOD_EXTRA_STREAMS {
                let open = async {
                    if n % 2 == 0 {
                        connection.open_uni().await.ok()
                    } else {
                        connection.open_bi().await.ok().map(|(send, _)| send)
                    }
                };
                match tokio::time::timeout(Duration::from_millis(200), open).await {
                    Ok(Some(stream)) => streams.push(stream),
                    _ => break,
                }
            }
            let opened = streams.len() - 1;
            let fills = streams.iter_mut().map(|stream| {
                let fill = fill.clone();
                async move {
                    let write = stream.write_all(&fill);
                    matches!(
                        tokio::time::timeout(Duration::from_secs(5), write).await,
                        Ok(Ok(()))
                    )
                }
            });
            let filled = futures::future::join_all(fills).await;
            let filled = filled.iter().filter(|done| **done).count();
            (connection, (streams, start), opened, filled)
        }
    });
    let held = futures::future::join_all(attacks).await;
    let opened: usize = held.iter().map(|(_, _, opened, _)| opened).sum();
    let filled: usize = held.iter().map(|(_, _, _, filled)| filled).sum();
    println!(
        "FLOODED {FLOOD_CONNECTIONS} connections: {opened} extra streams granted, \
         {filled} streams took all {FLOOD_PER_STREAM} bytes"
    );
    // Holds every connection until the victim's test kills this process.
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(held);
}
