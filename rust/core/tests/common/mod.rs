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
