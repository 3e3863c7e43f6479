//! Nodes on loopback: startup options, addresses and the ping protocol.

use std::time::{Duration, Instant};

use mosaik_core::{ConfigError, Digest, Node, NodeConfig, NodeError, RelayChoice, network::parse_address};

fn local(name: &str) -> NodeConfig {
    NodeConfig::local(Digest::from_name(name))
}

#[tokio::test]
async fn ping_returns_the_peers_signed_entry_with_growing_versions() {
    let mut config = local("demo");
    config.tags = vec![Digest::from_name("api")];
    let a = Node::spawn(config).await.unwrap();
    let b = Node::spawn(local("demo")).await.unwrap();
    let first = b.ping(a.addr(), Duration::from_secs(5)).await.unwrap();
    let second = b.ping(a.addr(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.entry().id(), a.peer_id());
    assert_eq!(first.entry().network, Digest::from_name("demo"));
    assert!(first.entry().tags.contains(&Digest::from_name("api")));
    assert!(second.entry().version > first.entry().version);
    assert_eq!(
        second.entry().version.started_at_ms(),
        first.entry().version.started_at_ms()
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn local_nodes_advertise_only_loopback_and_parse_their_own_address() {
    let node = Node::spawn(local("demo")).await.unwrap();
    let addr = node.addr();
    assert!(addr.ip_addrs().all(|ip| ip.ip().is_loopback()));
    assert!(addr.ip_addrs().count() >= 1);
    assert_eq!(addr.relay_urls().count(), 0);
    assert_eq!(parse_address(&node.address()).unwrap(), addr);
    node.close().await;
    node.close().await; // idempotent
    assert!(node.is_closed());
}

#[tokio::test]
async fn an_unreachable_relay_does_not_delay_startup() {
    let mut config = local("demo");
    config.relay = RelayChoice::Url("http://127.0.0.1:9".parse().unwrap());
    let started = Instant::now();
    let node = Node::spawn(config).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    node.close().await;
}

#[tokio::test]
async fn local_mode_refuses_non_loopback_binds_and_relays() {
    let mut config = local("demo");
    config.bind = Some("0.0.0.0:0".parse().unwrap());
    assert!(matches!(
        Node::spawn(config).await,
        Err(NodeError::Config(ConfigError::NotLoopback { option: "bind", .. }))
    ));
    let mut config = local("demo");
    config.relay = RelayChoice::Url("https://relay.example.com".parse().unwrap());
    assert!(matches!(
        Node::spawn(config).await,
        Err(NodeError::Config(ConfigError::NotLoopback {
            option: "relay",
            ..
        }))
    ));
}

#[tokio::test]
async fn a_fixed_secret_key_gives_a_fixed_peer_id() {
    let mut config = local("demo");
    config.secret_key = Some([7u8; 32]);
    let node = Node::spawn(config.clone()).await.unwrap();
    let id = node.peer_id();
    node.close().await;
    let again = Node::spawn(config).await.unwrap();
    assert_eq!(again.peer_id(), id);
    again.close().await;
}
