//! Gossip spy: a second, mosaik-free iroh endpoint in this process that joins
//! a mosaik network's announcement topic with plain iroh-gossip 0.97 (ALPN
//! `/mosaik/discovery/announce/1.0`, TopicId = NetworkId bytes), so that the
//! exact gossip payloads a real mosaik node broadcasts can be captured, and
//! hand-made payloads can be injected into the real node.
//!
//! Commands:
//! - `gossip_join {"network", "ticket" | "addr", "timeout_ms"?}`: joins via
//!   that mosaik node (its full address is put in a `MemoryLookup`); answers
//!   `spy_id` and `elapsed_ms` once the topic has a neighbor.
//! - `gossip_messages`: drains the capture list: `{"kind": "received",
//!   "delivered_from", "hex", "decoded" | "decode_error"}` plus
//!   `{"kind": "neighbor_up" | "neighbor_down", "peer_id"}` and `lagged`.
//! - `gossip_broadcast {"hex"}`: broadcasts those exact payload bytes.

use {
    crate::{announce, wire},
    anyhow::{Context, Result, bail},
    futures::StreamExt,
    iroh::{Endpoint, EndpointAddr, RelayMode, address_lookup::MemoryLookup, protocol::Router},
    iroh_gossip::{
        Gossip, TopicId,
        api::{Event as GossipEvent, GossipSender},
    },
    mosaik::{Bytes, NetworkId},
    serde_json::{Value, json},
    std::{
        net::Ipv4Addr,
        sync::{Arc, Mutex},
        time::Instant,
    },
    tokio::task::JoinHandle,
};

/// mosaik's announcement ALPN (`discovery/announce.rs:105`).
const ANNOUNCE_ALPN: &[u8] = b"/mosaik/discovery/announce/1.0";
/// Capture list bound, as for discovery events.
const MAX_MESSAGES: usize = 10_000;

/// A joined gossip spy.
pub struct Spy {
    router: Router,
    sender: GossipSender,
    captured: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl Spy {
    /// `gossip_join`.
    pub async fn join(cmd: &Value) -> Result<(Self, Value)> {
        let network = NetworkId::from(wire::str_field(cmd, "network")?);
        let target = wire::target_addr(cmd)?;
        let timeout = wire::timeout_field(cmd)?;
        let started = Instant::now();

        let (router, gossip) = spawn_endpoint(&target).await?;
        let topic = TopicId::from_bytes(*network.as_bytes());
        let subscribe = gossip.subscribe_and_join(topic, vec![target.id]);
        let topic = match tokio::time::timeout(timeout, subscribe).await {
            Ok(topic) => topic.context("gossip subscribe failed")?,
            Err(_) => {
                router.shutdown().await.ok();
                bail!("no gossip neighbor within {} ms", timeout.as_millis());
            }
        };
        let (sender, mut receiver) = topic.split();

        let captured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&captured);
        let task = tokio::spawn(async move {
            while let Some(event) = receiver.next().await {
                let record = match event {
                    Ok(event) => event_json(event),
                    Err(e) => json!({ "kind": "error", "error": e.to_string() }),
                };
                let mut list = sink.lock().expect("spy list poisoned");
                if list.len() < MAX_MESSAGES {
                    list.push(record);
                }
            }
        });

        let answer = json!({
            "spy_id": router.endpoint().id().to_string(),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        });
        let spy = Self {
            router,
            sender,
            captured,
            task,
        };
        Ok((spy, answer))
    }

    /// `gossip_messages`.
    pub fn drain(&self) -> Value {
        let mut list = self.captured.lock().expect("spy list poisoned");
        json!({ "messages": std::mem::take(&mut *list) })
    }

    /// `gossip_broadcast`.
    pub async fn broadcast(&self, cmd: &Value) -> Result<Value> {
        let payload = wire::hex_field(cmd, "hex")?;
        let len = payload.len();
        self.sender
            .broadcast(Bytes::from(payload))
            .await
            .context("gossip broadcast failed")?;
        Ok(json!({ "bytes": len }))
    }

    /// Stops the capture and closes the spy endpoint.
    pub async fn close(self) {
        self.task.abort();
        self.router.shutdown().await.ok();
    }
}

/// A loopback-only endpoint (no relay, no address services besides a
/// `MemoryLookup` holding `target`) serving iroh-gossip on mosaik's ALPN.
async fn spawn_endpoint(target: &EndpointAddr) -> Result<(Router, Gossip)> {
    let lookup = MemoryLookup::new();
    lookup.add_endpoint_info(target.clone());
    let endpoint = Endpoint::empty_builder()
        .relay_mode(RelayMode::Disabled)
        .bind_addr((Ipv4Addr::LOCALHOST, 0))
        .context("invalid bind address")?
        .address_lookup(lookup)
        .bind()
        .await
        .context("failed to bind the spy endpoint")?;
    let gossip = Gossip::builder().alpn(ANNOUNCE_ALPN).spawn(endpoint.clone());
    let router = Router::builder(endpoint)
        .accept(ANNOUNCE_ALPN, gossip.clone())
        .spawn();
    Ok((router, gossip))
}

fn event_json(event: GossipEvent) -> Value {
    match event {
        GossipEvent::NeighborUp(id) => json!({ "kind": "neighbor_up", "peer_id": id.to_string() }),
        GossipEvent::NeighborDown(id) => {
            json!({ "kind": "neighbor_down", "peer_id": id.to_string() })
        }
        GossipEvent::Lagged => json!({ "kind": "lagged" }),
        GossipEvent::Received(message) => {
            let hex = hex::encode(&message.content);
            let mut record = json!({
                "kind": "received",
                "delivered_from": message.delivered_from.to_string(),
                "hex": hex,
            });
            let decoded = announce::decode_announcement(&json!({ "hex": hex }));
            let extra = match decoded {
                Ok(decoded) => json!({ "decoded": decoded }),
                Err(e) => json!({ "decode_error": format!("{e:#}") }),
            };
            crate::vectors::extend(&mut record, extra);
            record
        }
    }
}
