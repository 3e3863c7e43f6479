//! Discovery's verification CPU under attack: links that keep sending
//! 16 MiB snapshots of entries with bad signatures must cost the victim a
//! few verifications each, not one per entry, must be closed with 400, and
//! must not stall a stream the victim consumes meanwhile.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use iroh::{EndpointAddr, SecretKey};
use mosaik_core::{
    Digest, Node,
    discovery::{DiscoveryConfig, PeerEntry, sync::CatalogSync},
    network::{CloseReason, Link, Protocol},
    primitives::varint,
    streams::{ConsumerConfig, ProducerConfig},
};

mod common;

use common::{WAIT, pair};

const NETWORK: &str = "forged-cpu";
const ATTACK: Duration = Duration::from_secs(5);
const LINKS: usize = 4;

/// A snapshot frame of as many copies of one entry with a broken signature
/// as fit in 16 MiB.
fn forged_snapshot() -> Bytes {
    let key = SecretKey::generate(&mut rand::rng());
    let entry = PeerEntry::new(Digest::from_name(NETWORK), EndpointAddr::new(key.public()))
        .sign(&key)
        .unwrap();
    let mut wire = entry.wire().to_vec();
    *wire.last_mut().unwrap() ^= 1;
    let count = (CatalogSync::MAX_FRAME - varint::MAX_LEN) / wire.len();
    let mut out = BytesMut::with_capacity(CatalogSync::MAX_FRAME);
    varint::encode(&mut out, count as u64);
    for _ in 0..count {
        out.put_slice(&wire);
    }
    out.freeze()
}

/// Sends `payload` as a sync snapshot over fresh links until `until`;
/// returns the close code of each link.
async fn keep_sending(attacker: Node, victim: EndpointAddr, payload: Bytes, until: Instant) -> Vec<u64> {
    let mut codes = Vec::new();
    while Instant::now() < until {
        let mut link = Link::<CatalogSync>::open(attacker.endpoint(), victim.clone())
            .await
            .unwrap();
        link.send_raw(payload.clone()).await.unwrap();
        // The victim answers before it merges, then closes the link.
        let _ = tokio::time::timeout(WAIT, link.recv_raw()).await.unwrap();
        let closed = tokio::time::timeout(WAIT, link.closed()).await.unwrap();
        codes.push(closed.remote_code().unwrap_or_else(|| panic!("{closed}")));
    }
    codes
}

#[tokio::test(flavor = "multi_thread")]
async fn links_of_forged_snapshots_are_closed_with_400_and_do_not_stall_a_stream() {
    let (producer_node, victim) = pair(NETWORK).await;
    let stream = Digest::from_name("ticks");
    let producer = producer_node
        .streams()
        .producer(ProducerConfig::new(stream))
        .unwrap();
    let consumer = victim.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    tokio::time::timeout(WAIT, producer.subscribed(1)).await.unwrap();

    let payload = forged_snapshot();
    let mut attackers = Vec::new();
    for _ in 0..LINKS {
        attackers.push(
            Node::spawn(mosaik_core::NodeConfig::local(Digest::from_name(NETWORK)))
                .await
                .unwrap(),
        );
    }
    let started = Instant::now();
    let until = started + ATTACK;
    let attacks: Vec<_> = attackers
        .iter()
        .map(|a| tokio::spawn(keep_sending(a.clone(), victim.addr(), payload.clone(), until)))
        .collect();

    // A datum every 10 ms through the attack and a second after it.
    let sending = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut sent = 0u32;
        while Instant::now() < until + Duration::from_secs(1) {
            tick.tick().await;
            producer
                .send(Bytes::copy_from_slice(&sent.to_be_bytes()))
                .await
                .unwrap();
            sent += 1;
        }
        sent
    });
    let mut next = 0u32;
    let mut last_arrival = Instant::now();
    let mut longest_gap = Duration::ZERO;
    while last_arrival < until {
        let batch = tokio::time::timeout(WAIT, consumer.recv_batch(256))
            .await
            .expect("datums keep coming");
        let now = Instant::now();
        longest_gap = longest_gap.max(now - last_arrival);
        last_arrival = now;
        for datum in batch.iter().flat_map(|arrival| arrival.deliveries()) {
            assert_eq!(
                u32::from_be_bytes(datum.payload[..].try_into().unwrap()),
                next,
                "in order, no gap"
            );
            next += 1;
        }
    }
    let mut codes = Vec::new();
    for attack in attacks {
        codes.extend(attack.await.unwrap());
    }
    let sent = sending.await.unwrap();
    let forged = victim.discovery().rejections().get("forged_signature").copied();
    eprintln!(
        "{} forged snapshots of {} bytes on {LINKS} links in {:?}; longest stream gap {longest_gap:?} \
         ({next} of {sent} datums received during the attack); forged_signature = {forged:?}",
        codes.len(),
        payload.len(),
        started.elapsed(),
    );
    assert!(
        longest_gap < Duration::from_secs(1),
        "the stream stalled for {longest_gap:?}"
    );
    // A snapshot that arrived is closed with 400 after its few bad entries;
    // one that took longer than `sync_timeout` to arrive (four 16 MiB
    // uploads share loopback on a debug build) is cut off (102) unread.
    let violation = u64::from(CloseReason::ProtocolViolation.code());
    let cut_off = u64::from(CloseReason::Cancelled.code());
    let refused = codes.iter().filter(|code| **code == violation).count() as u64;
    assert!(
        refused >= LINKS as u64,
        "every link is refused at least once: {codes:?}"
    );
    assert!(
        codes.iter().all(|code| *code == violation || *code == cut_off),
        "{codes:?}"
    );
    // Exact counts: a few verifications per snapshot, every one counted.
    let per_link = DiscoveryConfig::default().max_forged_per_link as u64;
    assert_eq!(forged, Some(per_link * refused));
    for node in attackers.into_iter().chain([producer_node, victim]) {
        node.close().await;
    }
}

/// Links that open a catalog sync and then say nothing hold the victim's
/// served-sync slots until its sync timeout: beyond `MAX_SERVED_SYNCS` they
/// are closed at once and counted (`sync_busy`), and once the attacker is
/// gone an honest sync works again.
#[tokio::test(flavor = "multi_thread")]
async fn silent_syncs_beyond_the_served_limit_are_closed_at_once() {
    use mosaik_core::discovery::sync::MAX_SERVED_SYNCS;

    let (victim, attacker) = pair("sync-slots").await;
    let extra = 8;
    let mut silent = Vec::new();
    for _ in 0..MAX_SERVED_SYNCS + extra {
        // A refused one may be closed before its stream opens: that is fine.
        if let Ok(link) = Link::<CatalogSync>::open(attacker.endpoint(), victim.addr()).await {
            silent.push(link);
        }
    }
    // The ones past the limit are closed with 102 as they arrive.
    let busy = || {
        victim
            .discovery()
            .rejections()
            .get("sync_busy")
            .copied()
            .unwrap_or(0)
    };
    let counted = async {
        while busy() < extra as u64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, counted)
        .await
        .unwrap_or_else(|_| panic!("only {} syncs refused as busy", busy()));
    assert!(
        busy() < (MAX_SERVED_SYNCS + extra) as u64,
        "the first ones were served"
    );
    drop(silent);
    let honest = Node::spawn(mosaik_core::NodeConfig::local(Digest::from_name("sync-slots")))
        .await
        .unwrap();
    let synced = async {
        loop {
            if honest.discovery().sync_with(victim.addr()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, synced)
        .await
        .expect("an honest sync works again");
    for node in [victim, attacker, honest] {
        node.close().await;
    }
}
