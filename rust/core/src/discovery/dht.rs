//! DHT auto-bootstrap: strangers who share only a network id find each
//! other through the Mainline DHT, as mosaik 0.3.13 does.
//!
//! The network id seeds a chain of [`CHAIN_DEPTH`] slots (slot 0 is the id,
//! each next slot is `blake3(prev ‖ prev)`). A slot's id is the seed of an
//! Ed25519 keypair, and the slot's content is a pkarr record signed with it:
//! TXT `_id` = base58 peer id, one `_ip` per direct address (`ip:port`), one
//! `_r` per relay URL, all with a 600 s TTL. Anyone who knows the network id
//! can read and write every slot, so every record is only a hint: a peer
//! counts once it answers a ping with an entry of our network.
//!
//! Each round resolves all slots at once, pings the peers found and syncs
//! catalogs with the healthy ones; dead or empty slots become candidates,
//! and a node not listed anywhere claims one at random (compare-and-swap on
//! the record it read). Rounds repeat every 5 s while we have no gossip
//! neighbours and every 60 s once we do, plus up to a third of jitter.

use std::{collections::BTreeSet, net::Ipv4Addr, time::Duration};

use futures::future::join_all;
use iroh::{EndpointAddr, EndpointId, RelayUrl, TransportAddr};
use pkarr::{Client, Keypair, SignedPacket, Timestamp, dns::rdata::RData, errors::PublishError};
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use super::{ping::ping, service::Discovery};
use crate::primitives::Digest;

/// Slots in the bootstrap chain: more slots mean less write contention when
/// many nodes boot at once, at the cost of more lookups per round.
pub const CHAIN_DEPTH: usize = 16;
/// TTL of every TXT record we publish; also how long we trust our own
/// publish before claiming a slot again (a fresh write may not be visible
/// to the next lookup yet, and we must not fill the chain with ourselves).
const RECORD_TTL: Duration = Duration::from_secs(600);
/// Bound on one ping of a listed peer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Lost compare-and-swaps retried at once before waiting for the next round.
const MAX_IMMEDIATE_RETRIES: u32 = 3;

/// How a node reaches the DHT and how often it looks.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// DHT bootstrap nodes as `"ip:port"` (mainline keeps IPv4 only);
    /// `None` uses the public Mainline defaults.
    pub bootstrap: Option<Vec<String>>,
    /// Bind the DHT client to 127.0.0.1 rather than every interface (tests).
    pub bind_localhost: bool,
    /// Time between rounds while we have gossip neighbours.
    pub relaxed_interval: Duration,
    /// Time between rounds while we have none, so a lone node joins quickly.
    pub aggressive_interval: Duration,
    /// Bound on each DHT request (mosaik: 5 s). A lookup or publish ends
    /// only once every node it asked has answered or timed out, and some
    /// node rarely answers, so each one usually takes about this long.
    pub request_timeout: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            bootstrap: None,
            bind_localhost: false,
            relaxed_interval: Duration::from_secs(60),
            aggressive_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The first `depth` slot ids of `network`'s chain; each is the secret-key
/// seed of that slot's pkarr keypair.
pub fn slot_seeds(network: Digest, depth: usize) -> Vec<[u8; 32]> {
    let mut seeds = Vec::with_capacity(depth);
    let mut seed = *network.as_bytes();
    for _ in 0..depth {
        seeds.push(seed);
        // mosaik's `derive(prev, prev)`: the id hashed with itself as info.
        let mut hasher = blake3::Hasher::new();
        hasher.update(&seed).update(&seed);
        seed = *hasher.finalize().as_bytes();
    }
    seeds
}

/// Starts the bootstrap loop on `discovery`'s tasks; it ends when discovery
/// is cancelled.
pub fn spawn(discovery: Discovery, config: DhtConfig) {
    discovery.clone().spawn(run(discovery, config));
}

async fn run(discovery: Discovery, config: DhtConfig) {
    // Building the client resolves bootstrap host names and waits for the
    // DHT actor thread to bind: blocking work, kept off the runtime.
    let build_config = config.clone();
    let client = match tokio::task::spawn_blocking(move || build_client(&build_config)).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            warn!(error = %e, "no DHT client, so no DHT bootstrap");
            return;
        }
        Err(e) => {
            warn!(error = %e, "building the DHT client panicked, so no DHT bootstrap");
            return;
        }
    };
    let slots: Vec<Keypair> = slot_seeds(discovery.network(), CHAIN_DEPTH)
        .iter()
        .map(Keypair::from_secret_key)
        .collect();
    let mut last_published: Option<Instant> = None;
    let mut races_lost = 0;
    loop {
        let scan = scan_chain(&discovery, &client, &slots).await;
        let recently_published = last_published.is_some_and(|at| at.elapsed() < RECORD_TTL);
        let target = match scan.stale_own_slot {
            // Peers that read the old addresses cannot reach us: refresh now.
            Some((slot, timestamp)) => Some((slot, Some(timestamp))),
            None if scan.listed || recently_published => None,
            None => pick_random(&scan.free_slots),
        };
        if let Some((slot, cas)) = target {
            match publish(&discovery, &client, &slots[slot], cas).await {
                Ok(true) => {
                    debug!(slot, "published ourselves in the DHT bootstrap chain");
                    last_published = Some(Instant::now());
                }
                Ok(false) => {}
                // Someone wrote the slot since we read it: look again now.
                // The bound keeps a slot that always refuses us (say, a
                // record stamped by a clock ahead of ours) from spinning.
                Err(PublishError::Concurrency(e)) if races_lost < MAX_IMMEDIATE_RETRIES => {
                    trace!(slot, error = %e, "lost the race for a DHT slot; rescanning");
                    races_lost += 1;
                    continue;
                }
                Err(e) => debug!(slot, error = %e, "could not publish to the DHT bootstrap chain"),
            }
        }
        races_lost = 0;
        tokio::time::sleep(next_round_delay(&discovery, &config)).await;
    }
}

fn build_client(config: &DhtConfig) -> Result<Client, pkarr::errors::BuildError> {
    let mut builder = Client::builder();
    // Mainline only (mosaik's choice): no HTTP relays, and no cache, since
    // each round wants what the DHT holds now.
    builder
        .no_relays()
        .cache_size(0)
        .request_timeout(config.request_timeout);
    if let Some(nodes) = &config.bootstrap {
        builder.bootstrap(nodes);
    }
    if config.bind_localhost {
        builder.dht(|dht| dht.bind_address(Ipv4Addr::LOCALHOST));
    }
    builder.build()
}

/// What one round learned about the chain.
#[derive(Default)]
struct ChainScan {
    /// Some slot holds us with our current addresses.
    listed: bool,
    /// A slot holds us with old addresses (and the record's timestamp).
    stale_own_slot: Option<(usize, Timestamp)>,
    /// Empty slots (`None`) and slots of unreachable peers (their timestamp).
    free_slots: Vec<(usize, Option<Timestamp>)>,
}

enum SlotState {
    Empty,
    Ours { current: bool, timestamp: Timestamp },
    Healthy,
    Unhealthy(Timestamp),
}

/// Resolves and checks every slot at once: one slow slot or ping must not
/// delay the others.
async fn scan_chain(discovery: &Discovery, client: &Client, slots: &[Keypair]) -> ChainScan {
    let states = join_all(slots.iter().map(|slot| check_slot(discovery, client, slot))).await;
    let mut scan = ChainScan::default();
    for (index, state) in states.into_iter().enumerate() {
        match state {
            SlotState::Empty => scan.free_slots.push((index, None)),
            SlotState::Unhealthy(timestamp) => scan.free_slots.push((index, Some(timestamp))),
            SlotState::Healthy => {}
            SlotState::Ours { current: true, .. } => scan.listed = true,
            SlotState::Ours {
                current: false,
                timestamp,
            } => scan.stale_own_slot = Some((index, timestamp)),
        }
    }
    scan
}

async fn check_slot(discovery: &Discovery, client: &Client, slot: &Keypair) -> SlotState {
    let Some(packet) = client.resolve_most_recent(&slot.public_key()).await else {
        return SlotState::Empty;
    };
    let timestamp = packet.timestamp();
    let Some(listed) = parse_record(&packet) else {
        // Garbage in a slot is as good as an empty one, but CAS on it.
        return SlotState::Unhealthy(timestamp);
    };
    let endpoint = discovery.endpoint();
    if listed.id == endpoint.id() {
        let current = reachable_part(&endpoint.addr()) == listed.addrs;
        return SlotState::Ours { current, timestamp };
    }
    // The ping proves the peer is alive and reachable, and that its entry
    // is its own and of our network; anything else makes the record a stray.
    match ping(
        discovery.dialer(),
        listed.clone(),
        Some(discovery.network()),
        PING_TIMEOUT,
    )
    .await
    {
        Ok(entry) => {
            if !discovery.knows(&listed.id) {
                trace!(peer = %listed.id.fmt_short(), "peer found through the DHT");
                if let Err(e) = discovery.sync_with(entry.entry().address.clone()).await {
                    debug!(peer = %listed.id.fmt_short(), error = %e, "sync with DHT peer failed");
                }
            }
            SlotState::Healthy
        }
        Err(e) => {
            trace!(peer = %listed.id.fmt_short(), error = %e, "peer in DHT slot did not answer");
            SlotState::Unhealthy(timestamp)
        }
    }
}

/// A random slot spreads nodes booting together over the chain, so their
/// compare-and-swaps rarely collide.
fn pick_random(free_slots: &[(usize, Option<Timestamp>)]) -> Option<(usize, Option<Timestamp>)> {
    if free_slots.is_empty() {
        return None;
    }
    Some(free_slots[rand::random_range(0..free_slots.len())])
}

/// Writes our record into `slot`; `Ok(false)` when there was nothing worth
/// writing, so the next round tries again.
async fn publish(
    discovery: &Discovery,
    client: &Client,
    slot: &Keypair,
    cas: Option<Timestamp>,
) -> Result<bool, PublishError> {
    let addr = discovery.endpoint().addr();
    // A record with no address would only send peers to a dead end.
    if reachable_part(&addr).is_empty() {
        trace!("no address to publish yet");
        return Ok(false);
    }
    match build_record(&addr, slot) {
        Ok(packet) => client.publish(&packet, cas).await.map(|()| true),
        Err(e) => {
            // pkarr caps a packet at 1000 bytes: too many addresses.
            warn!(error = %e, "our DHT bootstrap record cannot be built");
            Ok(false)
        }
    }
}

/// The addresses a record can carry: direct IPs and relay URLs.
fn reachable_part(addr: &EndpointAddr) -> BTreeSet<TransportAddr> {
    addr.addrs
        .iter()
        .filter(|a| matches!(a, TransportAddr::Ip(_) | TransportAddr::Relay(_)))
        .cloned()
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("invalid DNS text: {0}")]
    Dns(#[from] pkarr::dns::SimpleDnsError),
    #[error(transparent)]
    Sign(#[from] pkarr::errors::SignedPacketBuildError),
}

/// Our bootstrap record for `slot`, in mosaik's format.
fn build_record(addr: &EndpointAddr, slot: &Keypair) -> Result<SignedPacket, RecordError> {
    let ttl = RECORD_TTL.as_secs() as u32;
    let id = b58::encode(addr.id.as_bytes());
    let mut builder = SignedPacket::builder().txt("_id".try_into()?, id.as_str().try_into()?, ttl);
    for transport in &addr.addrs {
        let (name, value) = match transport {
            TransportAddr::Ip(ip) => ("_ip", ip.to_string()),
            TransportAddr::Relay(url) => ("_r", url.to_string()),
            _ => continue,
        };
        builder = builder.txt(name.try_into()?, value.as_str().try_into()?, ttl);
    }
    Ok(builder.sign(slot)?)
}

/// The peer a record names, with every address that parses (the rest are
/// skipped, as mosaik does); `None` without a valid `_id`. Public only for
/// the fuzz targets in `rust/core/fuzz`.
#[doc(hidden)]
pub fn parse_record(packet: &SignedPacket) -> Option<EndpointAddr> {
    let id = texts(packet, "_id").into_iter().next()?;
    let bytes: [u8; 32] = b58::decode(&id).ok()?.try_into().ok()?;
    let mut addr = EndpointAddr::new(EndpointId::from_bytes(&bytes).ok()?);
    for ip in texts(packet, "_ip") {
        if let Ok(ip) = ip.parse() {
            addr.addrs.insert(TransportAddr::Ip(ip));
        }
    }
    for relay in texts(packet, "_r") {
        if let Ok(url) = relay.parse::<RelayUrl>() {
            addr.addrs.insert(TransportAddr::Relay(url));
        }
    }
    Some(addr)
}

/// The TXT values under `name`, each its character strings joined: a value
/// longer than 255 bytes is split across several strings when written.
fn texts(packet: &SignedPacket, name: &str) -> Vec<String> {
    packet
        .resource_records(name)
        .filter_map(|record| match &record.rdata {
            RData::TXT(text) => String::try_from(text.clone()).ok(),
            _ => None,
        })
        .collect()
}

/// The wait before the next round: aggressive while we are alone, with up
/// to a third of jitter so nodes booting together do not write in lockstep.
fn next_round_delay(discovery: &Discovery, config: &DhtConfig) -> Duration {
    let base = if discovery.neighbors() == 0 {
        config.aggressive_interval
    } else {
        config.relaxed_interval
    };
    let jitter_ms = rand::random_range(0..=base.as_millis() as u64 / 3);
    base + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;

    #[test]
    fn slot_chain_matches_the_spec_vectors() {
        let seeds = slot_seeds(Digest::from_name("demo"), CHAIN_DEPTH);
        assert_eq!(seeds.len(), CHAIN_DEPTH);
        assert_eq!(
            hex::encode(seeds[0]),
            "811717648744df4f18656c5f4a833b7b09a90be78205a0e0eeff8b9dbb0202fe"
        );
        assert_eq!(
            hex::encode(seeds[1]),
            "8f576e94d7efbd50fc2d2a6801736d8c70d23d5cebebf24eda79fa05d87b0591"
        );
        assert_eq!(
            Keypair::from_secret_key(&seeds[0]).public_key().to_z32(),
            "aot9k3t7bccpzbmyfgmwii64so7zc6jb1zxs37btf9wawmx96yey"
        );
        assert_eq!(
            Keypair::from_secret_key(&seeds[1]).public_key().to_z32(),
            "wopm3oo4ky1gr3xicb6oing4qjdwi7b6e9a1qffq4m7sj7ety5yo"
        );
    }

    #[test]
    fn record_round_trips_to_the_same_address() {
        let id = SecretKey::from_bytes(&[7; 32]).public();
        let addr = EndpointAddr::new(id)
            .with_ip_addr("127.0.0.1:4433".parse().unwrap())
            .with_ip_addr("[::1]:5".parse().unwrap())
            .with_relay_url("https://relay.example.org./".parse().unwrap());
        let slot = Keypair::from_secret_key(&slot_seeds(Digest::from_name("demo"), 1)[0]);
        let packet = build_record(&addr, &slot).unwrap();

        assert_eq!(texts(&packet, "_id"), vec![b58::encode(id.as_bytes())]);
        assert!(texts(&packet, "_ip").contains(&"[::1]:5".to_string()));
        assert!(packet.all_resource_records().all(|r| r.ttl == 600));
        // Through the wire form, as another node would read it.
        let read = SignedPacket::deserialize(&packet.serialize()).unwrap();
        assert_eq!(parse_record(&read), Some(addr));
    }

    #[test]
    fn record_without_a_valid_id_is_ignored() {
        let slot = Keypair::from_secret_key(&[1; 32]);
        let packet = SignedPacket::builder()
            .txt("_id".try_into().unwrap(), "not-base58!".try_into().unwrap(), 600)
            .sign(&slot)
            .unwrap();
        assert_eq!(parse_record(&packet), None);
    }
}
