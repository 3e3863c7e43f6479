//! Shared by the integration tests: two local nodes of one network that know each other.

use std::time::Duration;

use mosaik_core::{
    Digest, Node, NodeConfig,
    network::Link,
    streams::{
        handshake::{ConsumerHandshake, Criteria, StartStream},
        protocol::StreamsProtocol,
    },
};

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

/// Until `condition` holds over the members' statuses (its answer), checked
/// again each time any status changes: no polling.
#[allow(dead_code, reason = "only the groups tests use it")]
pub async fn until_statuses<T>(
    groups: &[mosaik_core::groups::Group],
    mut condition: impl FnMut(&[mosaik_core::groups::Status]) -> Option<T>,
) -> T {
    let mut watches: Vec<_> = groups.iter().map(|g| g.watch_status()).collect();
    loop {
        let statuses: Vec<_> = watches
            .iter_mut()
            .map(|w| w.borrow_and_update().clone())
            .collect();
        if let Some(answer) = condition(&statuses) {
            return answer;
        }
        let changes = watches.iter_mut().map(|w| Box::pin(w.changed()));
        let (changed, _, _) = futures::future::select_all(changes).await;
        changed.expect("a member's status outlives its wait");
    }
}

/// `n` local nodes of `network`, each bootstrapped from the first, once
/// every one knows all the others.
#[allow(dead_code, reason = "not every test binary uses it")]
pub async fn nodes(network: &str, n: usize) -> Vec<Node> {
    let first = Node::spawn(NodeConfig::local(Digest::from_name(network)))
        .await
        .unwrap();
    let mut nodes = vec![first];
    for _ in 1..n {
        let mut config = NodeConfig::local(Digest::from_name(network));
        config.bootstrap = vec![nodes[0].addr()];
        nodes.push(Node::spawn(config).await.unwrap());
    }
    for node in &nodes {
        tokio::time::timeout(WAIT, node.discovery().wait_for_peers(n - 1))
            .await
            .unwrap();
    }
    nodes
}

/// Subscribes `from` to `stream` at `to` by hand and keeps the link open:
/// `Ok(link)` once the producer started the stream, its close code otherwise.
#[allow(dead_code, reason = "not every test binary uses it")]
pub async fn hold_subscription(from: &Node, to: &Node, stream: &str) -> Result<Link<StreamsProtocol>, u64> {
    let mut link = Link::<StreamsProtocol>::open(from.endpoint(), to.addr())
        .await
        .map_err(|e| e.remote_code().unwrap())?;
    let handshake = ConsumerHandshake {
        network_id: from.discovery().network(),
        stream_id: Digest::from_name(stream),
        criteria: Criteria {},
    };
    link.send(&handshake)
        .await
        .map_err(|e| e.remote_code().unwrap())?;
    match tokio::time::timeout(WAIT, link.recv::<StartStream>())
        .await
        .unwrap()
    {
        Ok(_) => Ok(link),
        Err(e) => Err(e.remote_code().unwrap_or_else(|| panic!("{e}"))),
    }
}

/// This process's resident memory (`VmRSS` in `/proc/self/status`), in bytes.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}
