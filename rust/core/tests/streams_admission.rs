//! Admission under attack: one peer opening a thousand subscriptions, and
//! a slow `require` predicate on either side. Each attack is bounded in
//! count and time; what is measured is what an honest user notices (the
//! latency of its datums, its subscription, a blocking call completing).

use std::{
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::future::join_all;
use mosaik_core::{
    Digest, Node,
    network::{CloseReason, Link},
    streams::{
        ConsumerConfig, Producer, ProducerConfig, Require, StreamsProtocol,
        consumer::Consumer,
        handshake::{ConsumerHandshake, Criteria, StartStream},
    },
};

mod common;

use common::{WAIT, nodes};

/// One subscription attempt from `from` to `stream` at `to`: the link if
/// the producer started the stream, kept open; otherwise the code it closed
/// with (`None` for a failure without one).
async fn attempt(from: &Node, to: &Node, stream: &str) -> Result<Link<StreamsProtocol>, Option<u64>> {
    let mut link = Link::<StreamsProtocol>::open(from.endpoint(), to.addr())
        .await
        .map_err(|e| e.remote_code())?;
    let handshake = ConsumerHandshake {
        network_id: from.discovery().network(),
        stream_id: Digest::from_name(stream),
        criteria: Criteria {},
    };
    link.send(&handshake).await.map_err(|e| e.remote_code())?;
    match tokio::time::timeout(WAIT, link.recv::<StartStream>()).await {
        Ok(Ok(_)) => Ok(link),
        Ok(Err(e)) => Err(e.remote_code()),
        Err(_) => Err(None),
    }
}

/// How many of `outcomes` closed with each code (`None`: no code).
fn codes<T>(outcomes: &[Result<T, Option<u64>>]) -> std::collections::BTreeMap<Option<u64>, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for outcome in outcomes {
        if let Err(code) = outcome {
            *counts.entry(*code).or_default() += 1;
        }
    }
    counts
}

/// The median time from `send` to the consumer's `recv`, over `samples`.
async fn median_latency(producer: &Producer, consumer: &Consumer, samples: u32) -> Duration {
    let mut latencies = Vec::new();
    for n in 0..samples {
        let sent = Instant::now();
        producer
            .send(Bytes::from(n.to_be_bytes().to_vec()))
            .await
            .unwrap();
        let datum = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("the datum arrives")
            .unwrap();
        latencies.push(sent.elapsed());
        assert_eq!(datum.payload[..], n.to_be_bytes());
    }
    latencies.sort();
    latencies[latencies.len() / 2]
}

/// Polls `condition` every 20 ms for at most `within`; whether it held.
async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

fn refused(producer: &Producer, reason: &str) -> u64 {
    producer.refusals().get(reason).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_subscriptions_from_one_peer_leave_an_honest_consumers_latency_alone() {
    const ATTEMPTS: usize = 1000;
    let nodes = nodes("admission-per-peer", 3).await;
    let (a, b, attacker) = (&nodes[0], &nodes[1], &nodes[2]);
    let stream = Digest::from_name("busy");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    let quiet = median_latency(&producer, &consumer, 200).await;

    let attempts = (0..ATTEMPTS).map(|_| attempt(attacker, a, "busy"));
    let outcomes = tokio::time::timeout(Duration::from_secs(120), join_all(attempts))
        .await
        .expect("every attempt is answered");
    let refusal_codes = codes(&outcomes);
    let held: Vec<_> = outcomes.into_iter().flatten().collect();
    let attacked = median_latency(&producer, &consumer, 200).await;
    println!(
        "{} of {ATTEMPTS} subscriptions from one peer held, refusals {:?}, codes the \
         attacker saw {refusal_codes:?}; honest p50 {quiet:?} before, {attacked:?} while \
         they are held",
        held.len(),
        producer.refusals()
    );
    assert!(
        held.len() <= ProducerConfig::DEFAULT_SUBSCRIPTIONS_PER_PEER,
        "{} held",
        held.len()
    );
    let no_capacity = Some(u64::from(CloseReason::NoCapacity.code()));
    let over_the_limit = refusal_codes.get(&no_capacity).copied().unwrap_or(0) as u64;
    assert!(over_the_limit > 0 && refused(&producer, "peer_limit") == over_the_limit);
    // Within 2x, or 1 ms where the quiet median is too small to double.
    let bound = (quiet * 2).max(quiet + Duration::from_millis(1));
    assert!(
        attacked <= bound,
        "p50 {attacked:?} under attack, {quiet:?} before"
    );
    drop(held);
    for node in &nodes {
        node.close().await;
    }
}

/// A predicate that takes 2 s and admits only `honest`; `running` counts
/// the evaluations under way, `most` the most there were at once.
fn slow_require(honest: mosaik_core::network::EndpointId) -> (Require, Arc<AtomicUsize>) {
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let require = Require::new({
        let most = most.clone();
        move |entry| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
            running.fetch_sub(1, Ordering::SeqCst);
            entry.entry().id() == honest
        }
    });
    (require, most)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_require_and_600_attacker_subscriptions_leave_the_blocking_pool_free() {
    const ATTEMPTS: usize = 600;
    let nodes = nodes("admission-slow-require", 3).await;
    let (a, b, attacker) = (&nodes[0], &nodes[1], &nodes[2]);
    let stream = Digest::from_name("guarded");
    let mut config = ProducerConfig::new(stream);
    let (require, most_at_once) = slow_require(b.peer_id());
    config.require = Some(require);
    let producer = a.streams().producer(config).unwrap();
    let attack = tokio::spawn({
        let (attacker, a) = (attacker.clone(), a.clone());
        async move {
            let attempts = (0..ATTEMPTS).map(|_| attempt(&attacker, &a, "guarded"));
            join_all(attempts).await.into_iter().filter(Result::is_ok).count()
        }
    });
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    // While the attack lasts (60 s at most), the pool that completes every
    // awaited call still has a thread for one: a call every 50 ms.
    let (started, mut slowest, mut admitted) = (Instant::now(), Duration::ZERO, None);
    while !attack.is_finished() && started.elapsed() < Duration::from_secs(60) {
        let call = Instant::now();
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        slowest = slowest.max(call.elapsed());
        if admitted.is_none() && consumer.producers() == 1 {
            admitted = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = tokio::time::timeout(WAIT, attack)
        .await
        .expect("every attempt is answered")
        .unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1))
        .await
        .expect("the honest consumer is admitted");
    let most_at_once = most_at_once.load(Ordering::SeqCst);
    println!(
        "blocking call at most {slowest:?} under attack; {most_at_once} predicates at once; \
         honest consumer admitted after {admitted:?}; refusals {:?}",
        producer.refusals()
    );
    assert_eq!(held, 0, "require admits no attacker");
    assert!(
        slowest < Duration::from_millis(250),
        "a blocking call took {slowest:?}"
    );
    assert!(most_at_once <= 16, "{most_at_once} predicates at once");
    for node in &nodes {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_waiting_for_require_do_not_count_toward_max_consumers() {
    let nodes = nodes("admission-pending", 3).await;
    let (a, b, attacker) = (&nodes[0], &nodes[1], &nodes[2]);
    let stream = Digest::from_name("one-seat");
    let mut config = ProducerConfig::new(stream);
    config.require = Some(slow_require(b.peer_id()).0);
    config.max_consumers = 1;
    let producer = a.streams().producer(config).unwrap();
    let attack = tokio::spawn({
        let (attacker, a) = (attacker.clone(), a.clone());
        async move {
            let attempts = (0..4).map(|_| attempt(&attacker, &a, "one-seat"));
            join_all(attempts).await.into_iter().filter(Result::is_ok).count()
        }
    });
    // The honest consumer subscribes while the attacker's wait for `require`.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(Duration::from_secs(15), consumer.subscribed(1))
        .await
        .expect("the honest consumer is admitted");
    let held = tokio::time::timeout(WAIT, attack).await.unwrap().unwrap();
    println!("refusals {:?}", producer.refusals());
    assert_eq!(held, 0);
    assert_eq!(refused(&producer, "no_capacity"), 0, "{:?}", producer.refusals());
    assert_eq!(refused(&producer, "require"), 4);
    assert_eq!(producer.consumers(), 1);
    for node in &nodes {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_require_on_the_consumer_holds_up_no_other_producer_and_close_ends_it() {
    let nodes = nodes("admission-consumer-require", 3).await;
    let (hung, fine, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let stream = Digest::from_name("followed");
    // The predicate hangs on `hung` until released (20 s at most).
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let require = Require::new({
        let (release, hung) = (release.clone(), hung.peer_id());
        move |entry| {
            if entry.entry().id() == hung {
                let (released, wake) = &*release;
                let guard = released.lock().unwrap();
                let _ = wake
                    .wait_timeout_while(guard, Duration::from_secs(20), |released| !*released)
                    .unwrap();
            }
            true
        }
    });
    let _hung_producer = hung.streams().producer(ProducerConfig::new(stream)).unwrap();
    let producer = fine.streams().producer(ProducerConfig::new(stream)).unwrap();
    let mut config = ConsumerConfig::new(stream);
    config.require = Some(require);
    let consumer = c.streams().consumer(config).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer.subscribed(1))
        .await
        .expect("the other producer is followed meanwhile");
    producer.send(Bytes::from_static(b"fine")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"fine");
    consumer.close();
    let left = eventually(Duration::from_secs(5), || producer.consumers() == 0).await;
    assert!(left, "closing the consumer ends its subscription");
    let (released, wake) = &*release;
    *released.lock().unwrap() = true;
    wake.notify_all();
    for node in &nodes {
        node.close().await;
    }
}
