//! Ping under volume and ping answers that are not what was asked for.
//!
//! Peers pinging a node as fast as they can must not push the node's entry
//! version ahead of its clock (its peers drop entries dated too far in the
//! future); a ping answered with another peer's entry is an error, and one
//! of another network is wherever the network matters (DHT slots).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use iroh::{
    EndpointAddr, SecretKey,
    address_lookup::memory::MemoryLookup,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler, Router},
};
use mosaik_core::{
    Digest, Node, NodeConfig, NodeError,
    discovery::{
        PeerEntry, SignedPeerEntry,
        entry::now_ms,
        ping::{self, Ping, PingError},
    },
    network::{Link, Protocol, route_repair::RouteRepair},
};

const NETWORK: &str = "pings";
const RUN: Duration = Duration::from_secs(5);
const PINGERS: usize = 64;
/// How far past the clock our entry may be dated: mosaik's rule of thumb.
const AHEAD_BOUND_MS: i64 = 1_000;

fn config() -> NodeConfig {
    NodeConfig::local(Digest::from_name(NETWORK))
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_at_volume_do_not_move_our_version_past_the_clock() {
    let victim = Node::spawn(config()).await.unwrap();
    let pinger = Node::spawn(config()).await.unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let furthest_ahead = Arc::new(AtomicI64::new(i64::MIN));
    let until = Instant::now() + RUN;
    let tasks: Vec<_> = (0..PINGERS)
        .map(|_| {
            let (pinger, target) = (pinger.clone(), victim.addr());
            let (answered, furthest_ahead) = (answered.clone(), furthest_ahead.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    if let Ok(reply) = pinger.ping(target.clone(), Duration::from_secs(5)).await {
                        let ahead = reply.entry().version.updated_at_ms() - now_ms();
                        furthest_ahead.fetch_max(ahead, Ordering::Relaxed);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    let furthest_ahead = furthest_ahead.load(Ordering::Relaxed);
    let stored_ahead = victim
        .discovery()
        .local()
        .current()
        .entry()
        .version
        .updated_at_ms()
        - now_ms();
    eprintln!(
        "{answered} pings in {RUN:?} ({:.0}/s); replies at most {furthest_ahead} ms ahead, stored entry {stored_ahead} ms",
        answered as f64 / RUN.as_secs_f64()
    );
    assert!(answered > 0);
    assert!(
        furthest_ahead <= AHEAD_BOUND_MS,
        "a reply dated {furthest_ahead} ms ahead"
    );
    assert!(
        stored_ahead <= AHEAD_BOUND_MS,
        "our entry dated {stored_ahead} ms ahead"
    );
    pinger.close().await;
    victim.close().await;
}

/// A ping server that answers every ping with `reply`, whoever it is.
#[derive(Debug, Clone)]
struct Impostor {
    reply: SignedPeerEntry,
}

impl ProtocolHandler for Impostor {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let Ok(mut link) = Link::<Ping>::accept(connection).await else {
            return Ok(());
        };
        if link.recv::<()>().await.is_ok() && link.send(&self.reply).await.is_ok() {
            let _ = link.closed().await;
        }
        Ok(())
    }
}

/// An endpoint that answers pings with `reply`; returns its address.
async fn impostor(reply: impl FnOnce(&SecretKey) -> SignedPeerEntry) -> (Router, EndpointAddr) {
    let key = SecretKey::generate(&mut rand::rng());
    let reply = reply(&key);
    let endpoint = config()
        .bind_endpoint(key, MemoryLookup::new(), RouteRepair::new())
        .await
        .unwrap();
    let addr = endpoint.addr();
    let router = Router::builder(endpoint)
        .accept(Ping::ALPN, Impostor { reply })
        .spawn();
    (router, addr)
}

fn entry_of(key: &SecretKey, network: &str) -> SignedPeerEntry {
    PeerEntry::new(Digest::from_name(network), EndpointAddr::new(key.public()))
        .sign(key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ping_answered_by_another_peer_is_an_error_and_another_network_is_reported() {
    let node = Node::spawn(config()).await.unwrap();
    let someone_else = SecretKey::generate(&mut rand::rng());
    let (_router, relaying) = impostor(|_| entry_of(&someone_else, NETWORK)).await;
    match node.ping(relaying.clone(), Duration::from_secs(5)).await {
        Err(NodeError::Ping(PingError::WrongPeer { dialed, answered })) => {
            assert_eq!((dialed, answered), (relaying.id, someone_else.public()));
        }
        other => panic!("{other:?}"),
    }
    let (_router, foreign) = impostor(|key| entry_of(key, "another-network")).await;
    // An app may ping a peer of any network (mosaik answers everyone); the
    // entry says which network it is of.
    let answer = node.ping(foreign.clone(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.entry().network, Digest::from_name("another-network"));
    // Where the network matters (a DHT slot's peer), the answer is refused.
    let refused = ping::ping(
        node.discovery().dialer(),
        foreign,
        Some(node.network_id()),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, PingError::OtherNetwork { .. }), "{refused:?}");
    assert!(refused.to_string().contains("another network"), "{refused}");
    node.close().await;
}
