//! Shared by the integration tests: two local nodes of one network that know each other.

use std::time::Duration;

use mosaik_core::{Digest, Node, NodeConfig};

pub const WAIT: Duration = Duration::from_secs(15);

#[allow(dead_code, reason = "not every test binary uses it")]
pub async fn pair(network: &str) -> (Node, Node) {
    let a = Node::spawn(NodeConfig::local(Digest::from_name(network)))
        .await
        .unwrap();
    let mut config = NodeConfig::local(Digest::from_name(network));
    config.bootstrap = vec![a.addr()];
    let b = Node::spawn(config).await.unwrap();
    tokio::time::timeout(WAIT, a.discovery().wait_for_peers(1))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, b.discovery().wait_for_peers(1))
        .await
        .unwrap();
    (a, b)
}
