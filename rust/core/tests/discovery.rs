//! Discovery between our own nodes on loopback: convergence, tags,
//! departure, and hostile input on the sync protocol.

use std::time::Duration;

use bytes::Bytes;
use iroh::{EndpointAddr, SecretKey};
use mosaik_core::{
    Digest, Node, NodeConfig,
    discovery::{
        Event, PeerEntry, PeerEntryVersion,
        entry::now_ms,
        sync::{CatalogSync, encode_snapshot},
    },
    network::{CloseReason, Link, LinkError, Protocol, route_repair::RouteRepair},
};

const WAIT: Duration = Duration::from_secs(15);

fn config(network: &str) -> NodeConfig {
    let mut config = NodeConfig::local(Digest::from_name(network));
    config.discovery.sync_timeout = Duration::from_secs(1);
    config
}

async fn node_with(network: &str, bootstrap: &[&Node]) -> Node {
    let mut config = config(network);
    config.bootstrap = bootstrap.iter().map(|n| n.addr()).collect();
    Node::spawn(config).await.unwrap()
}

async fn wait_for_peers(node: &Node, n: usize) {
    tokio::time::timeout(WAIT, node.discovery().wait_for_peers(n))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{node:?} knows {} peers, wanted {n}",
                node.discovery().peers().len()
            )
        });
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_nodes_with_one_bootstrap_address_reach_full_catalogs() {
    let first = node_with("converge", &[]).await;
    let mut nodes = vec![first.clone()];
    for _ in 0..9 {
        nodes.push(node_with("converge", &[&first]).await);
    }
    for node in &nodes {
        wait_for_peers(node, 9).await;
    }
    futures::future::join_all(nodes.iter().map(|n| n.close())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_appear_and_changes_propagate() {
    let mut config = config("tags");
    config.tags = vec![Digest::from_name("api")];
    let a = Node::spawn(config).await.unwrap();
    let b = node_with("tags", &[&a]).await;
    wait_for_peers(&b, 1).await;
    let seen = b.discovery().get(&a.peer_id()).unwrap();
    assert!(seen.entry().tags.contains(&Digest::from_name("api")));

    let mut events = b.discovery().subscribe();
    assert!(a.discovery().add_tags([Digest::from_name("db")]).await);
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Updated(entry)) = events.recv().await
                && entry.entry().tags.contains(&Digest::from_name("db"))
            {
                return;
            }
        }
    })
    .await
    .expect("tag change reached b");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closing_node_is_reported_departed() {
    let a = node_with("depart", &[]).await;
    let b = node_with("depart", &[&a]).await;
    wait_for_peers(&a, 1).await;
    wait_for_peers(&b, 1).await;
    // Departure travels by gossip: wait until the two are neighbours.
    tokio::time::timeout(WAIT, async {
        while a.discovery().neighbors() == 0 || b.discovery().neighbors() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("gossip neighbours");
    let mut events = a.discovery().subscribe();
    let started = std::time::Instant::now();
    b.close().await;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::Departed(entry)) = events.recv().await {
                assert_eq!(entry.entry().id(), b.peer_id());
                return;
            }
        }
    })
    .await
    .expect("departure within 5 s");
    assert!(a.discovery().get(&b.peer_id()).is_none());
    assert!(started.elapsed() < Duration::from_secs(5));
    a.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_with_another_network_imports_nothing() {
    let a = node_with("net-a", &[]).await;
    let b = node_with("net-b", &[]).await;
    b.discovery().sync_with(a.addr()).await.unwrap();
    assert!(b.discovery().peers().is_empty());
    assert_eq!(b.discovery().rejections().get("other_network"), Some(&1));
    a.close().await;
    b.close().await;
}

/// Opens a raw sync link to `target` and sends `payload` as the snapshot.
async fn send_snapshot(from: &Node, target: &Node, payload: Bytes) -> Result<Bytes, LinkError> {
    let mut link = Link::<CatalogSync>::open(from.endpoint(), target.addr()).await?;
    link.send_raw(payload).await?;
    let reply = link.recv_raw().await?;
    link.close(CloseReason::Success, Duration::from_millis(200)).await;
    Ok(reply)
}

fn entry_for(key: &SecretKey, network: &str, version: (i64, i64)) -> PeerEntry {
    let mut entry = PeerEntry::new(Digest::from_name(network), EndpointAddr::new(key.public()));
    entry.version = PeerEntryVersion(version.0, version.1);
    entry
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_snapshot_entries_are_rejected_and_counted() {
    let target = node_with("hostile", &[]).await;
    let attacker = Node::spawn(config("elsewhere")).await.unwrap();
    let now = now_ms();
    let honest_key = SecretKey::generate(&mut rand::rng());
    let honest = entry_for(&honest_key, "hostile", (now, now))
        .sign(&honest_key)
        .unwrap();
    let stale_key = SecretKey::generate(&mut rand::rng());
    let stale = entry_for(&stale_key, "hostile", (now - 400_000, now - 400_000))
        .sign(&stale_key)
        .unwrap();
    let future_key = SecretKey::generate(&mut rand::rng());
    let future = entry_for(&future_key, "hostile", (now + 120_000, now + 120_000))
        .sign(&future_key)
        .unwrap();
    let foreign_key = SecretKey::generate(&mut rand::rng());
    let foreign = entry_for(&foreign_key, "elsewhere", (now, now))
        .sign(&foreign_key)
        .unwrap();
    let forged_key = SecretKey::generate(&mut rand::rng());
    let forged_src = entry_for(&forged_key, "hostile", (now, now))
        .sign(&forged_key)
        .unwrap();
    let mut forged_wire = forged_src.wire().to_vec();
    *forged_wire.last_mut().unwrap() ^= 1;

    let mut payload = encode_snapshot([&honest, &stale, &future, &foreign].into_iter()).to_vec();
    payload[0] = 5;
    payload.extend_from_slice(&forged_wire);
    send_snapshot(&attacker, &target, payload.into()).await.unwrap();
    // The target answers before it merges what it got: wait for the merge.
    tokio::time::timeout(Duration::from_secs(10), async {
        while target.discovery().rejections().values().sum::<u64>() < 4
            || target.discovery().peers().is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the target merges the snapshot");

    let peers: Vec<_> = target
        .discovery()
        .peers()
        .iter()
        .map(|e| e.entry().id())
        .collect();
    assert_eq!(peers, vec![honest_key.public()], "only the honest entry is taken");
    let rejections = target.discovery().rejections();
    for reason in ["stale", "future_dated", "other_network", "forged_signature"] {
        assert_eq!(rejections.get(reason), Some(&1), "{reason}: {rejections:?}");
    }
    target.close().await;
    attacker.close().await;
}

/// A hostile peer: opens a sync stream to `target` and writes `bytes` raw.
/// The send half comes back too: dropping it would end the stream.
async fn raw_sync_write(
    from: &Node,
    target: &Node,
    bytes: &[u8],
) -> (iroh::endpoint::Connection, iroh::endpoint::SendStream) {
    let connection = from
        .endpoint()
        .connect(target.addr(), CatalogSync::ALPN)
        .await
        .unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    (connection, send)
}

/// The application close code `connection` ends with.
async fn close_code(connection: &iroh::endpoint::Connection) -> u64 {
    match tokio::time::timeout(WAIT, connection.closed()).await.unwrap() {
        iroh::endpoint::ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_oversized_frames_end_the_link_with_400() {
    let target = node_with("garbage", &[]).await;
    let attacker = Node::spawn(config("garbage")).await.unwrap();
    let err = send_snapshot(&attacker, &target, Bytes::from_static(&[3, 1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(err.remote_code(), Some(400), "{err}");

    let (oversized, _send) = raw_sync_write(&attacker, &target, &u32::MAX.to_be_bytes()).await;
    assert_eq!(close_code(&oversized).await, 400);
    // The link closes as it refuses the frame; the count follows a moment later.
    let counted = async {
        while !target.discovery().rejections().contains_key("oversized_frame") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(WAIT, counted).await;
    let rejections = target.discovery().rejections();
    assert_eq!(rejections.get("undecodable"), Some(&1), "{rejections:?}");
    assert_eq!(rejections.get("oversized_frame"), Some(&1), "{rejections:?}");
    assert!(target.discovery().peers().is_empty());
    target.close().await;
    attacker.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_peer_does_not_block_other_syncs() {
    let target = node_with("silent", &[]).await;
    let attacker = Node::spawn(config("silent")).await.unwrap();
    // Connect and open a stream, but never send a frame... except a partial
    // header, so QUIC tells the target about the stream.
    let (connection, _send) = raw_sync_write(&attacker, &target, &[0, 0]).await;

    let honest = node_with("silent", &[]).await;
    let started = std::time::Instant::now();
    honest.discovery().sync_with(target.addr()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "sync served while a peer stalls"
    );
    assert_eq!(
        target.discovery().get(&honest.peer_id()).map(|e| e.entry().id()),
        Some(honest.peer_id())
    );

    assert_eq!(
        close_code(&connection).await,
        u64::from(CloseReason::Cancelled.code())
    );
    assert_eq!(target.discovery().rejections().get("silent_peer"), Some(&1));
    for node in [target, attacker, honest] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_gossip_is_rejected_and_counted() {
    use iroh::{address_lookup::memory::MemoryLookup, endpoint_info::EndpointInfo, protocol::Router};
    use iroh_gossip::{net::Gossip, proto::TopicId};
    use mosaik_core::{
        discovery::announce::ANNOUNCE_ALPN,
        discovery::announce::{Announcement, GracefulDeparture},
    };

    let target = node_with("gossip-hostile", &[]).await;
    // A bare gossip participant on the network's topic, not a mosaik node.
    let lookup = MemoryLookup::new();
    lookup.add_endpoint_info(EndpointInfo::from(target.addr()));
    let endpoint = config("gossip-hostile")
        .bind_endpoint(SecretKey::generate(&mut rand::rng()), lookup, RouteRepair::new())
        .await
        .unwrap();
    let gossip = Gossip::builder().alpn(ANNOUNCE_ALPN).spawn(endpoint.clone());
    let _router = Router::builder(endpoint.clone())
        .accept(ANNOUNCE_ALPN, gossip.clone())
        .spawn();
    let topic = TopicId::from_bytes(*Digest::from_name("gossip-hostile").as_bytes());
    let mut joined = gossip.subscribe(topic, vec![target.peer_id()]).await.unwrap();
    tokio::time::timeout(WAIT, joined.joined())
        .await
        .unwrap()
        .unwrap();
    let (sender, _receiver) = joined.split();

    let now = now_ms();
    let signed = |network: &str, at: i64| {
        let key = SecretKey::generate(&mut rand::rng());
        entry_for(&key, network, (at, at)).sign(&key).unwrap()
    };
    let announce = |entry| Announcement::OwnEntryUpdate(entry).encode().unwrap();
    let mut forged = announce(signed("gossip-hostile", now)).to_vec();
    *forged.last_mut().unwrap() ^= 1;
    let departing = SecretKey::generate(&mut rand::rng());
    let mut bad_departure =
        GracefulDeparture::new(&departing, PeerEntryVersion(now, now), chrono::Utc::now());
    bad_departure.last_version = PeerEntryVersion(now, now + 1);
    let honest = signed("gossip-hostile", now);

    for message in [
        Bytes::from(forged),
        announce(signed("another-network", now)),
        announce(signed("gossip-hostile", now - 60_000)),
        announce(signed("gossip-hostile", now + 120_000)),
        Bytes::from_static(&[9, 9, 9]),
        Announcement::GracefulDeparture(bad_departure).encode().unwrap(),
        announce(honest.clone()),
    ] {
        sender.broadcast(message).await.unwrap();
    }
    tokio::time::timeout(WAIT, async {
        while target.discovery().get(&honest.entry().id()).is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the honest entry arrives");
    let rejections = target.discovery().rejections();
    let expected = [
        ("forged_signature", 2),
        ("other_network", 1),
        ("stale", 1),
        ("future_dated", 1),
        ("undecodable", 1),
    ];
    for (reason, count) in expected {
        assert_eq!(rejections.get(reason), Some(&count), "{reason}: {rejections:?}");
    }
    assert_eq!(target.discovery().peers().len(), 1);
    target.close().await;
}
