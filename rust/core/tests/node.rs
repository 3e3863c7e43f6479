//! Nodes on loopback: startup options, addresses and the ping protocol.

use std::time::{Duration, Instant};

use mosaik_core::{
    ConfigError, Digest, Node, NodeConfig, NodeError, RelayChoice,
    discovery::DiscoveryConfigError,
    network::parse_address,
    streams::{ConsumerConfig, ProducerConfig, StreamsConfigError, StreamsError},
};

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

#[tokio::test]
async fn settings_discovery_cannot_run_with_are_refused_not_clamped() {
    let mut config = local("demo");
    config.discovery.events_backlog = 0;
    let refused = Node::spawn(config).await.unwrap_err();
    assert_eq!(refused.to_string(), "events_backlog: must be at least 1, got 0");
    let mut config = local("demo");
    config.discovery.announce_jitter = 1.5;
    assert!(matches!(
        Node::spawn(config).await,
        Err(NodeError::Config(ConfigError::Discovery(
            DiscoveryConfigError::Jitter(_)
        )))
    ));
    let mut config = local("demo");
    config.discovery.sync_timeout = Duration::ZERO;
    let refused = Node::spawn(config).await.unwrap_err();
    assert_eq!(refused.to_string(), "sync_timeout: must be longer than zero");
}

#[tokio::test]
async fn producer_and_consumer_settings_are_refused_not_clamped() {
    let node = Node::spawn(local("demo")).await.unwrap();
    let stream = Digest::from_name("ticks");
    let mut producer = ProducerConfig::new(stream);
    producer.buffer_size = 0;
    let refused = node.streams().producer(producer).err().unwrap();
    assert_eq!(refused.to_string(), "buffer_size: must be at least 1, got 0");
    let mut consumer = ConsumerConfig::new(stream);
    consumer.queue_size = 0;
    let refused = node.streams().consumer(consumer).err().unwrap();
    assert_eq!(refused.to_string(), "queue_size: must be at least 1, got 0");
    let mut consumer = ConsumerConfig::new(stream);
    consumer.backoff.factor = 0.5;
    assert!(matches!(
        node.streams().consumer(consumer),
        Err(StreamsError::Config(StreamsConfigError::BackoffFactor(_)))
    ));
    // Nothing was made by the refused calls: the stream can still be produced.
    assert!(node.streams().producer(ProducerConfig::new(stream)).is_ok());
    node.close().await;
}
