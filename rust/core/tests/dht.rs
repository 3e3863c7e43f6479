//! DHT auto-bootstrap on a private Mainline testnet on loopback: two nodes
//! that were given no peers find each other through the DHT alone.

use std::time::Duration;

use iroh::EndpointId;
use mosaik_core::{
    Digest, Node, NodeConfig,
    discovery::dht::{self, DhtConfig},
};
use pkarr::mainline::Testnet;

const WAIT: Duration = Duration::from_secs(20);

fn ids(node: &Node) -> Vec<EndpointId> {
    node.discovery().peers().iter().map(|e| e.entry().id()).collect()
}

async fn wait_to_know(node: &Node, other: &Node) {
    let found = tokio::time::timeout(WAIT, async {
        while !ids(node).contains(&other.peer_id()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{node:?} did not find {other:?} through the DHT within {WAIT:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_without_bootstrap_peers_meet_through_the_dht() {
    // Building the testnet blocks while its nodes seed each other.
    let testnet = tokio::task::spawn_blocking(|| Testnet::builder(5).build())
        .await
        .unwrap()
        .expect("a Mainline testnet on 127.0.0.1");
    let network = Digest::from_name("dht-bootstrap");
    let a = Node::spawn(NodeConfig::local(network)).await.unwrap();
    let b = Node::spawn(NodeConfig::local(network)).await.unwrap();
    assert!(a.bootstrap().is_empty() && b.bootstrap().is_empty());
    for node in [&a, &b] {
        dht::spawn(
            node.discovery().clone(),
            DhtConfig {
                bootstrap: Some(testnet.bootstrap.clone()),
                bind_localhost: true,
                aggressive_interval: Duration::from_millis(500),
                // Every lookup waits this out (some node never answers), so
                // keep rounds short on loopback.
                request_timeout: Duration::from_secs(1),
                ..Default::default()
            },
        );
    }

    wait_to_know(&a, &b).await;
    wait_to_know(&b, &a).await;
    assert_eq!(ids(&a), vec![b.peer_id()]);
    assert_eq!(ids(&b), vec![a.peer_id()]);

    a.close().await;
    b.close().await;
    // The testnet's DHT threads stop once its nodes are dropped.
    drop(testnet);
}
