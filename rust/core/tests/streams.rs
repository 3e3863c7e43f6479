//! Streams between our nodes on loopback: delivery in order, the acceptor's
//! close codes, and graceful producer shutdown.

use std::time::Duration;

use bytes::Bytes;
use mosaik_core::{
    Digest, Node, NodeConfig,
    network::{CloseReason, Link},
    streams::{
        ConsumerConfig, ProducerConfig, Require, State, StreamsProtocol,
        handshake::{ConsumerHandshake, Criteria, StartStream},
    },
};

mod common;

use common::{WAIT, hold_subscription, pair};

#[tokio::test(flavor = "multi_thread")]
async fn every_datum_arrives_in_order() {
    let (a, b) = pair("streams-order").await;
    let stream = Digest::from_name("numbers");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1))
        .await
        .expect("consumer connects");
    tokio::time::timeout(WAIT, producer.subscribed(1))
        .await
        .expect("producer sees it");
    let sender = tokio::spawn({
        let producer = producer.clone();
        async move {
            for i in 0u32..5000 {
                producer
                    .send(Bytes::from(i.to_be_bytes().to_vec()))
                    .await
                    .unwrap();
            }
        }
    });
    let mut next = 0u32;
    while next < 5000 {
        let batch = tokio::time::timeout(WAIT, consumer.recv_batch(512))
            .await
            .expect("datums keep coming");
        let datums = batch.iter().flat_map(|arrival| arrival.deliveries());
        for datum in datums {
            assert_eq!(u32::from_be_bytes(datum.payload[..].try_into().unwrap()), next);
            next += 1;
        }
    }
    sender.await.unwrap();
    assert_eq!(producer.stats().datums(), 5000);
    assert_eq!(consumer.stats().datums(), 5000);
    assert_eq!(consumer.stats().bytes(), 5000 * 4);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_producer_ends_the_subscription_for_good() {
    let (a, b) = pair("streams-close").await;
    let stream = Digest::from_name("ticks");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    assert!(
        a.streams().producer(ProducerConfig::new(stream)).is_err(),
        "one producer per stream"
    );
    // Everything `send` accepted before the close still arrives.
    for n in 0..1000u32 {
        producer
            .send(Bytes::copy_from_slice(&n.to_be_bytes()))
            .await
            .unwrap();
    }
    producer.close();
    let mut received = 0u32;
    while received < 1000 {
        let batch = tokio::time::timeout(WAIT, consumer.recv_batch(1000))
            .await
            .expect("accepted datums are delivered");
        for datum in batch.iter().flat_map(|arrival| arrival.deliveries()) {
            assert_eq!(
                u32::from_be_bytes(datum.payload[..].try_into().unwrap()),
                received
            );
            received += 1;
        }
    }
    tokio::time::timeout(WAIT, async {
        while consumer.producers() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the consumer sees the producer go");
    // 204 is terminal: no reconnect even though the stream is still advertised.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(consumer.producers(), 0);
    a.close().await;
    b.close().await;
}

async fn raw_subscribe(from: &Node, to: &Node, network: &str, stream: &str) -> Result<StartStream, u64> {
    // A refusal before the handshake (401) can close the connection before the stream opens.
    let mut link = match Link::<StreamsProtocol>::open(from.endpoint(), to.addr()).await {
        Ok(link) => link,
        Err(e) => return Err(e.remote_code().unwrap_or_else(|| panic!("{e}"))),
    };
    let handshake = ConsumerHandshake {
        network_id: Digest::from_name(network),
        stream_id: Digest::from_name(stream),
        criteria: Criteria {},
    };
    if let Err(e) = link.send(&handshake).await {
        return Err(e.remote_code().unwrap_or_else(|| panic!("{e}")));
    }
    match tokio::time::timeout(WAIT, link.recv::<StartStream>())
        .await
        .unwrap()
    {
        Ok(start) => Ok(start),
        Err(e) => Err(e.remote_code().unwrap_or_else(|| panic!("{e}"))),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_acceptor_refuses_with_mosaiks_codes() {
    let (a, b) = pair("streams-accept").await;
    a.streams()
        .producer(ProducerConfig::new(Digest::from_name("known")))
        .unwrap();
    let start = raw_subscribe(&b, &a, "streams-accept", "known").await.unwrap();
    assert_eq!(
        start,
        StartStream(Digest::from_name("streams-accept"), Digest::from_name("known"))
    );
    assert_eq!(
        raw_subscribe(&b, &a, "streams-accept", "unknown")
            .await
            .unwrap_err(),
        u64::from(CloseReason::StreamNotFound.code())
    );
    assert_eq!(
        raw_subscribe(&b, &a, "another-network", "known")
            .await
            .unwrap_err(),
        u64::from(CloseReason::DifferentNetwork.code())
    );
    let stranger = Node::spawn(NodeConfig::local(Digest::from_name("streams-accept")))
        .await
        .unwrap();
    assert_eq!(
        raw_subscribe(&stranger, &a, "streams-accept", "known")
            .await
            .unwrap_err(),
        u64::from(CloseReason::UnknownPeer.code())
    );
    for node in [a, b, stranger] {
        node.close().await;
    }
}

/// A consumer that reads nothing until the producer has sent `count` big
/// datums, then drains: what it gets shows the producer's lagging policy.
async fn slow_consumer_receives(lagging: mosaik_core::streams::Lagging, count: u32) -> Vec<u32> {
    let (a, b) = pair(&format!("streams-lagging-{lagging:?}")).await;
    let stream = Digest::from_name("big");
    let mut config = ProducerConfig::new(stream);
    config.buffer_size = 4;
    config.lagging = lagging;
    let producer = a.streams().producer(config).unwrap();
    let mut consumer_config = ConsumerConfig::new(stream);
    consumer_config.queue_size = 4;
    let consumer = b.streams().consumer(consumer_config).unwrap();
    tokio::time::timeout(WAIT, producer.subscribed(1)).await.unwrap();
    let sender = tokio::spawn({
        let producer = producer.clone();
        async move {
            for i in 0..count {
                let mut datum = vec![0u8; 64 * 1024];
                datum[..4].copy_from_slice(&i.to_be_bytes());
                producer.send(Bytes::from(datum)).await.unwrap();
            }
        }
    });
    let mut sent_before_reading = false;
    if lagging != mosaik_core::streams::Lagging::Block {
        tokio::time::timeout(WAIT, sender)
            .await
            .expect("the producer never waits on a slow consumer")
            .unwrap();
        sent_before_reading = true;
    }
    let mut got = Vec::new();
    // Drain until two quiet seconds: there is no "done" event from a lossy policy.
    while let Ok(Some(datum)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        got.push(u32::from_be_bytes(datum.payload[..4].try_into().unwrap()));
    }
    assert!(sent_before_reading || got.len() == count as usize);
    a.close().await;
    b.close().await;
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn block_loses_nothing_for_a_slow_consumer() {
    let got = slow_consumer_receives(mosaik_core::streams::Lagging::Block, 200).await;
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_skips_datums_for_a_slow_consumer_but_keeps_order() {
    let got = slow_consumer_receives(mosaik_core::streams::Lagging::Drop, 200).await;
    assert!(got.len() < 200, "some datums were dropped for the slow consumer");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_cuts_off_a_slow_consumer() {
    let (a, b) = pair("streams-lagging-disconnect").await;
    let stream = Digest::from_name("big");
    let mut config = ProducerConfig::new(stream);
    config.buffer_size = 4;
    let producer = a.streams().producer(config).unwrap(); // Lagging::Disconnect is the default
    let mut consumer_config = ConsumerConfig::new(stream);
    consumer_config.queue_size = 4;
    let _never_read = b.streams().consumer(consumer_config).unwrap();
    tokio::time::timeout(WAIT, producer.subscribed(1)).await.unwrap();
    // Once cut off (10413) the producer is offline and `send` waits; the
    // consumer comes back after its backoff. What we check is the cut.
    let sender = tokio::spawn({
        let producer = producer.clone();
        async move {
            // Far more than QUIC's windows can park on the consumer's side.
            for i in 0u32..4000 {
                let mut datum = vec![0u8; 64 * 1024];
                datum[..4].copy_from_slice(&i.to_be_bytes());
                let _ = producer.send(Bytes::from(datum)).await;
            }
        }
    });
    tokio::time::timeout(WAIT, async {
        while producer.consumers() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the slow consumer is disconnected");
    sender.abort();
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_the_producer_forgot_is_let_in_after_a_catalog_sync() {
    let network = Digest::from_name("streams-401");
    // The producer forgets peers after 2 s; the consumer re-announces only hourly.
    let mut producer_side = NodeConfig::local(network);
    producer_side.discovery.purge_after = Duration::from_secs(2);
    let a = Node::spawn(producer_side).await.unwrap();
    let mut consumer_side = NodeConfig::local(network);
    consumer_side.discovery.announce_interval = Duration::from_secs(3600);
    consumer_side.bootstrap = vec![a.addr()];
    let b = Node::spawn(consumer_side).await.unwrap();
    tokio::time::timeout(WAIT, a.discovery().wait_for_peers(1))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while a.discovery().knows(&b.peer_id()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the producer forgets the consumer");

    let stream = Digest::from_name("after-401");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, async {
        while !b
            .discovery()
            .get(&a.peer_id())
            .is_some_and(|e| e.entry().streams.contains(&stream))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the consumer sees the stream advertised");
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    // First attempt: 401; the receiver syncs catalogs and retries.
    tokio::time::timeout(WAIT, consumer.subscribed(1))
        .await
        .expect("connected after the sync");
    producer.send(Bytes::from_static(b"welcome back")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"welcome back");
    a.close().await;
    b.close().await;
}

/// Polls `done` (there is no event for it) until it holds, or fails after `WAIT`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_producer_checks_capacity_then_require() {
    let network = "streams-require";
    let a = Node::spawn(NodeConfig::local(Digest::from_name(network)))
        .await
        .unwrap();
    let spawn_member = |tag: &str| {
        let mut config = NodeConfig::local(Digest::from_name(network));
        config.bootstrap = vec![a.addr()];
        config.tags = vec![Digest::from_name(tag)];
        Node::spawn(config)
    };
    let trusted = spawn_member("trusted").await.unwrap();
    let other = spawn_member("guest").await.unwrap();
    tokio::time::timeout(WAIT, a.discovery().wait_for_peers(2))
        .await
        .unwrap();
    let mut config = ProducerConfig::new(Digest::from_name("guarded"));
    config.max_consumers = 1;
    config.require = Some(Require::new(|entry| {
        entry.entry().tags.contains(&Digest::from_name("trusted"))
    }));
    let producer = a.streams().producer(config).unwrap();

    assert_eq!(
        hold_subscription(&other, &a, "guarded").await.unwrap_err(),
        u64::from(CloseReason::NotAllowed.code()),
        "require says no: 10403"
    );
    let _held = hold_subscription(&trusted, &a, "guarded").await.unwrap();
    until("the trusted consumer is connected", || producer.consumers() == 1).await;
    let channels = producer.channels();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].peer(), trusted.peer_id());
    assert_eq!(channels[0].state(), State::Connected);
    assert_eq!(
        hold_subscription(&other, &a, "guarded").await.unwrap_err(),
        u64::from(CloseReason::NoCapacity.code()),
        "capacity is checked before require, as mosaik does"
    );
    for node in [a, trusted, other] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_follows_only_the_producers_it_requires() {
    let network = Digest::from_name("streams-consumer-require");
    let mut config = NodeConfig::local(network);
    config.tags = vec![Digest::from_name("primary")];
    let primary = Node::spawn(config).await.unwrap();
    let mut config = NodeConfig::local(network);
    config.bootstrap = vec![primary.addr()];
    let secondary = Node::spawn(config).await.unwrap();
    let mut config = NodeConfig::local(network);
    config.bootstrap = vec![primary.addr()];
    let reader = Node::spawn(config).await.unwrap();
    let stream = Digest::from_name("prices");
    let from_primary = primary.streams().producer(ProducerConfig::new(stream)).unwrap();
    let from_secondary = secondary.streams().producer(ProducerConfig::new(stream)).unwrap();
    until("the reader sees both producers", || {
        reader
            .discovery()
            .peers()
            .iter()
            .filter(|e| e.entry().streams.contains(&stream))
            .count()
            == 2
    })
    .await;

    let mut config = ConsumerConfig::new(stream);
    config.require = Some(Require::new(|entry| {
        entry.entry().tags.contains(&Digest::from_name("primary"))
    }));
    let consumer = reader.streams().consumer(config).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    from_primary.send(Bytes::from_static(b"primary")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"primary");
    let channels = consumer.channels();
    assert_eq!(channels.len(), 1, "only the required producer is followed");
    assert_eq!(channels[0].peer(), primary.peer_id());
    assert_eq!(channels[0].stats().datums(), 1);
    assert_eq!(from_secondary.consumers(), 0);
    for node in [primary, secondary, reader] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_producer_is_left_until_its_entry_changes() {
    let (a, b) = pair("streams-reject").await;
    let stream = Digest::from_name("garbage");
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    producer.send(Bytes::from_static(b"\xff")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(consumer.reject(datum.channel, "not a datum of ours"));
    until("the producer sees the consumer leave", || {
        producer.consumers() == 0
    })
    .await;
    assert!(consumer.channels().is_empty());
    // The producer's entry is unchanged: no reconnect loop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(producer.consumers(), 0);
    // A re-signed entry (the producer changed something) earns another try.
    a.discovery().add_tags([Digest::from_name("fixed")]).await;
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    a.close().await;
    b.close().await;
}
