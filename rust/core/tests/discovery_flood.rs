//! Discovery under volume: a member floods a node with entries it signed for
//! 100k fresh identities, or with entries so large that the node's catalog
//! outgrows a sync frame. The node must keep its catalog within its caps,
//! count what it refused, pace its dials to the addresses the attacker
//! chose, and still complete an honest catalog sync both ways.

use std::{
    collections::HashSet,
    net::{SocketAddr, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use iroh::{EndpointAddr, SecretKey, TransportAddr};
use mosaik_core::{
    Digest, Node, NodeConfig,
    discovery::{
        DiscoveryConfig, PeerEntry, PeerEntryVersion, SignedPeerEntry,
        entry::now_ms,
        sync::{CatalogSync, encode_snapshot},
    },
    network::{CloseReason, Link, LinkError, Protocol},
};

const NETWORK: &str = "flood";
const WAIT: Duration = Duration::from_secs(30);

/// Room for a 16 MiB upload on a debug build while the other test signs
/// 100k entries on both cores.
fn config() -> NodeConfig {
    let mut config = NodeConfig::local(Digest::from_name(NETWORK));
    config.discovery.sync_timeout = Duration::from_secs(15);
    config
}

/// Opens a raw sync link to `target`, sends `payload` as our snapshot and
/// returns the target's.
async fn send_snapshot(from: &Node, target: &Node, payload: Bytes) -> Result<Bytes, LinkError> {
    let mut link = Link::<CatalogSync>::open(from.endpoint(), target.addr()).await?;
    link.send_raw(payload).await?;
    let reply = link.recv_raw().await?;
    link.close(CloseReason::Success, Duration::from_millis(200)).await;
    Ok(reply)
}

/// Waits (bounded) until `condition` holds, checking every 10 ms: the
/// merge a node runs after answering a sync has no event of its own.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(WAIT, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{what} within {WAIT:?}"));
}

/// Entries for `n` fresh identities of our network, each claiming to be
/// reachable at `at`, signed on two threads.
fn forge(n: usize, at: SocketAddr, tags: usize) -> Vec<SignedPeerEntry> {
    let now = now_ms();
    let forge_one = || {
        let key = SecretKey::generate(&mut rand::rng());
        let address = EndpointAddr::from_parts(key.public(), [TransportAddr::Ip(at)]);
        let mut entry = PeerEntry::new(Digest::from_name(NETWORK), address);
        entry.version = PeerEntryVersion(now, now);
        entry.tags = (0..tags as u32).map(|t| Digest::hash(&t.to_be_bytes())).collect();
        entry.sign(&key).unwrap()
    };
    std::thread::scope(|scope| {
        let halves: Vec<_> = [n / 2, n - n / 2]
            .into_iter()
            .map(|count| scope.spawn(move || (0..count).map(|_| forge_one()).collect::<Vec<_>>()))
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// The address the forged entries name: a UDP socket that counts the QUIC
/// connection attempts (distinct destination connection ids of long-header
/// packets) the victim makes to it, and never answers.
struct DialSink {
    addr: SocketAddr,
    attempts: Arc<Mutex<HashSet<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl DialSink {
    fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let attempts = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (attempts.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                let Ok(len) = socket.recv(&mut buf) else { continue };
                let packet = &buf[..len];
                // Long header: flags, version (4), DCID length, DCID.
                if len > 6 && packet[0] & 0x80 != 0 {
                    let dcid_len = packet[5] as usize;
                    if let Some(dcid) = packet.get(6..6 + dcid_len) {
                        seen.lock().unwrap().insert(dcid.to_vec());
                    }
                }
            }
        });
        Self { addr, attempts, stop }
    }

    fn attempts(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }
}

impl Drop for DialSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_forged_identities_is_capped_and_honest_syncs_still_work() {
    const FORGED: usize = 100_000;
    const CAP: usize = 2_500;
    let sink = DialSink::bind();
    let forging = Instant::now();
    let forged = forge(FORGED, sink.addr, 0);
    let payload = encode_snapshot(forged.iter());
    eprintln!(
        "forged {FORGED} entries ({} bytes) in {:?}",
        payload.len(),
        forging.elapsed()
    );
    assert!(
        payload.len() <= CatalogSync::MAX_FRAME,
        "one frame carries the flood"
    );

    let mut victim_config = config();
    victim_config.discovery.max_catalog_entries = CAP;
    let victim = Node::spawn(victim_config).await.unwrap();
    let victim_started = Instant::now();
    let defaults = DiscoveryConfig::default();

    // Three members send the same 100k entries: each may add its budget of
    // new peers, the catalog cap refuses the rest.
    for round in 1..=3u64 {
        let attacker = Node::spawn(config()).await.unwrap();
        let sent = Instant::now();
        send_snapshot(&attacker, &victim, payload.clone())
            .await
            .expect("the victim answers a flooding snapshot");
        let answered = sent.elapsed();
        wait_until("the merge", || {
            victim.discovery().rejections().get("oversized_snapshot") == Some(&round)
        })
        .await;
        eprintln!(
            "snapshot {round}: answered after {answered:?}, merged after {:?} (catalog {})",
            sent.elapsed(),
            victim.discovery().peers().len()
        );
        attacker.close().await;
    }
    let rejections = victim.discovery().rejections();
    eprintln!("rejections: {rejections:?}");
    assert_eq!(
        victim.discovery().peers().len(),
        CAP,
        "the catalog stays at its cap"
    );
    // Each round reads 10k entries. Round 1 takes its budget of 1000 and
    // refuses 9000; round 2 skips those 1000 (not newer), takes 1000 and
    // refuses 8000; round 3 skips 2000 and takes the 500 left before the
    // cap, and the catalog refuses the other 7500.
    assert_eq!(defaults.max_snapshot_entries, 10_000);
    assert_eq!(defaults.max_new_entries_per_source, 1_000);
    assert_eq!(rejections.get("source_budget"), Some(&17_000));
    assert_eq!(rejections.get("catalog_full"), Some(&7_500));
    assert_eq!(rejections.get("oversized_snapshot"), Some(&3));
    assert_eq!(rejections.get("forged_signature"), None);
    assert!(victim.discovery().pending_syncs() <= defaults.max_pending_syncs);

    // Dials to the attacker's address follow the budget: a burst, then
    // `per_interval` per interval. (Counted now: the honest member below
    // dials the forged peers it learns too.)
    let elapsed = victim_started.elapsed().as_secs_f64();
    let allowed =
        defaults.sync_dials_per_interval as f64 * (1.0 + elapsed / defaults.sync_dial_interval.as_secs_f64());
    let dials = sink.attempts();
    eprintln!("{dials} dials to the forged address in {elapsed:.1} s (budget {allowed:.0})");
    assert!(dials as f64 <= allowed, "{dials} dials in {elapsed:.1} s");

    // An honest member syncs both ways, and takes a place in the full
    // catalog from a forged entry (its entry came from itself).
    let honest = Node::spawn(config()).await.unwrap();
    honest
        .discovery()
        .sync_with(victim.addr())
        .await
        .expect("honest -> victim");
    assert!(honest.discovery().get(&victim.peer_id()).is_some());
    wait_until("the honest entry in the victim's catalog", || {
        victim.discovery().get(&honest.peer_id()).is_some()
    })
    .await;
    assert_eq!(victim.discovery().peers().len(), CAP);
    victim
        .discovery()
        .sync_with(honest.addr())
        .await
        .expect("victim -> honest");

    for node in [victim, honest] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn our_snapshot_fits_a_frame_however_large_the_catalog_grows() {
    // Entries of ~58 KiB (1800 tags): two members' 250 each hold ~28 MiB.
    let unreachable: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let big = forge(500, unreachable, 1800);
    let victim = Node::spawn(config()).await.unwrap();
    for (round, half) in big.chunks(250).enumerate() {
        let attacker = Node::spawn(config()).await.unwrap();
        let payload = encode_snapshot(half.iter());
        assert!(payload.len() <= CatalogSync::MAX_FRAME);
        send_snapshot(&attacker, &victim, payload).await.unwrap();
        wait_until("the merge", || {
            victim.discovery().peers().len() == 250 * (round + 1)
        })
        .await;
        attacker.close().await;
    }
    let held: usize = victim.discovery().peers().iter().map(|e| e.wire().len()).sum();
    assert!(
        held > CatalogSync::MAX_FRAME,
        "the catalog outgrew a frame: {held} bytes"
    );

    let honest = Node::spawn(config()).await.unwrap();
    let taken = honest
        .discovery()
        .sync_with(victim.addr())
        .await
        .expect("a sync we serve never fails for its size");
    assert!(honest.discovery().get(&victim.peer_id()).is_some());
    eprintln!("honest took {taken} entries of a {held}-byte catalog");
    victim
        .discovery()
        .sync_with(honest.addr())
        .await
        .expect("victim -> honest");
    for node in [victim, honest] {
        node.close().await;
    }
}
