//! Hostile bond peers on real endpoints: every refusal carries mosaik's
//! close code and is counted, and the member under attack keeps serving.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mosaik_core::{
    Digest, Node, NodeConfig,
    groups::{
        ConsensusConfig, Group, GroupKey, JoinOptions, MachineSpec, ReplayConfig, SafetyRules,
        bond::{
            handshake::{Credentials, Formed, dial},
            protocol::{BondMessage, HandshakeStart},
        },
        protocol::GroupsProtocol,
        raft::{Cursor, Forward, Message},
        service::HANDSHAKE_TIMEOUT,
    },
    network::{Link, LinkError},
    primitives::encoding,
    tickets::Validators,
};

use common::{WAIT, until_statuses};

const NETWORK: &str = "groups-hostile";
const KEY: &str = "hostile-secret";

fn options(key: &str) -> JoinOptions {
    JoinOptions {
        key: GroupKey::from_secret(key),
        machine: MachineSpec::noop(),
        consensus: ConsensusConfig {
            bootstrap_delay: Duration::from_millis(100),
            election_timeout: Duration::from_millis(600),
            election_timeout_jitter: Duration::from_millis(100),
            ..ConsensusConfig::default()
        },
        replay: ReplayConfig::default(),
        rules: SafetyRules::default(),
        external_machine: false,
        tickets: Validators::from([]),
    }
}

/// The member under attack, leading its group alone, and an attacker node
/// it knows (in its catalog) that has not joined.
async fn victim_and_attacker() -> (Node, Group, Node) {
    let victim = Node::spawn(NodeConfig::local(Digest::from_name(NETWORK)))
        .await
        .unwrap();
    let group = victim.groups().join(options(KEY)).unwrap();
    until_online(&group).await;
    let mut config = NodeConfig::local(Digest::from_name(NETWORK));
    config.bootstrap = vec![victim.addr()];
    let attacker = Node::spawn(config).await.unwrap();
    tokio::time::timeout(WAIT, victim.discovery().wait_for_peers(1))
        .await
        .unwrap();
    (victim, group, attacker)
}

/// A valid bond from `attacker` to `victim`, made with the group's key.
async fn bond_as_member(victim: &Node, group: &Group, attacker: &Node) -> Formed {
    let credentials = Credentials {
        me: attacker.peer_id(),
        network: attacker.network_id(),
        group: group.id(),
        key: GroupKey::from_secret(KEY),
        handshake_timeout: HANDSHAKE_TIMEOUT,
    };
    let peer = victim.discovery().local().current();
    dial(attacker.discovery(), &credentials, &peer, vec![])
        .await
        .unwrap()
}

/// Until `group` is led and in sync.
async fn until_online(group: &Group) {
    let online = until_statuses(std::slice::from_ref(group), |s| s[0].online.then_some(()));
    tokio::time::timeout(WAIT, online)
        .await
        .expect("the member leads (again)");
}

/// Sends `start` on a fresh link and returns the code the victim closed with.
async fn refused_with(attacker: &Node, victim: &Node, payload: Bytes) -> u64 {
    let mut link = Link::<GroupsProtocol>::open(attacker.endpoint(), victim.addr())
        .await
        .unwrap();
    link.send_raw(payload).await.unwrap();
    closed_code(&mut link).await
}

async fn closed_code(link: &mut Link<GroupsProtocol>) -> u64 {
    let error = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = link.recv_raw().await {
                return e;
            }
        }
    })
    .await
    .expect("the victim closes the link");
    error
        .remote_code()
        .unwrap_or_else(|| panic!("closed without a code: {error}"))
}

fn handshake(attacker: &Node, group: &Group, proof: Digest) -> Bytes {
    encoding::encode(&HandshakeStart {
        network_id: attacker.network_id(),
        group_id: group.id(),
        proof,
        bonds: vec![],
    })
    .unwrap()
}

async fn still_serves(group: &Group) {
    tokio::time::timeout(WAIT, group.execute(vec![Bytes::new()]))
        .await
        .expect("an execute in time")
        .expect("the victim still commits");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_handshakes_are_refused_with_mosaiks_codes_and_counted() {
    let (victim, group, attacker) = victim_and_attacker().await;
    // An unknown group (30404), a wrong proof (30405), garbage (400).
    let mut unknown = handshake(&attacker, &group, Digest::hash(b"proof")).to_vec();
    unknown[32] ^= 0xff; // the group id's first byte
    assert_eq!(
        refused_with(&attacker, &victim, Bytes::from(unknown)).await,
        30404
    );
    let wrong_proof = handshake(&attacker, &group, Digest::hash(b"not the proof"));
    assert_eq!(refused_with(&attacker, &victim, wrong_proof).await, 30405);
    assert_eq!(
        refused_with(&attacker, &victim, Bytes::from_static(&[0xff; 40])).await,
        400
    );
    // A frame far over the handshake limit (only its header is sent).
    let mut huge = Link::<GroupsProtocol>::open(attacker.endpoint(), victim.addr())
        .await
        .unwrap();
    let mut header = BytesMut::new();
    header.put_u32(64 * 1024 * 1024);
    header.put_slice(&[0; 16]);
    let mut wire = header.freeze();
    huge.write_wire(&mut wire).await.unwrap();
    assert_eq!(closed_code(&mut huge).await, 400);
    // Half a frame, then silence: the handshake timeout (30408).
    let mut silent = Link::<GroupsProtocol>::open(attacker.endpoint(), victim.addr())
        .await
        .unwrap();
    let mut partial = Bytes::from_static(&[0, 0, 0, 97, 1, 2, 3]);
    silent.write_wire(&mut partial).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(closed_code(&mut silent).await, 30408);
    assert!(started.elapsed() >= HANDSHAKE_TIMEOUT - Duration::from_millis(100));
    // A node the victim never heard of: 401 before anything is read, as
    // mosaik (its dialer then syncs and retries).
    let stranger = Node::spawn(NodeConfig::local(Digest::from_name("another-network")))
        .await
        .unwrap();
    let mut link = Link::<GroupsProtocol>::open(stranger.endpoint(), victim.addr())
        .await
        .unwrap();
    link.send_raw(handshake(&stranger, &group, Digest::hash(b"x")))
        .await
        .unwrap();
    assert_eq!(closed_code(&mut link).await, 401);

    let counts = victim.groups().rejections().counts();
    for (reason, at_least) in [
        ("group_not_found", 1),
        ("invalid_proof", 1),
        ("undecodable", 2),
        ("handshake_timeout", 1),
        ("unknown_peer", 1),
    ] {
        assert!(
            counts.get(reason).copied().unwrap_or(0) >= at_least,
            "{reason}: {counts:?}"
        );
    }
    still_serves(&group).await;
    assert!(group.status().bonds.is_empty());
    for node in [victim, attacker, stranger] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_sending_garbage_or_a_vote_storm_loses_its_bond() {
    let (victim, group, attacker) = victim_and_attacker().await;
    // Garbage after a valid handshake: 400, and the bond is gone.
    let mut formed = bond_as_member(&victim, &group, &attacker).await;
    formed
        .link
        .send_raw(Bytes::from_static(&[0x09, 0xff, 0xff]))
        .await
        .unwrap();
    assert_eq!(closed_code(&mut formed.link).await, 400);
    // Vote requests by the hundred: 400.
    let mut formed = bond_as_member(&victim, &group, &attacker).await;
    let mut storm = Ok(());
    for term in 1..=200u64 {
        let vote = BondMessage::Raft(Message::RequestVote {
            term: 1_000 + term,
            candidate: attacker.peer_id(),
            log_position: Cursor::default(),
        });
        storm = formed.link.send(&vote).await;
        if storm.is_err() {
            break;
        }
    }
    let code = match storm {
        Err(LinkError::ClosedByPeer(close)) => close.code,
        _ => closed_code(&mut formed.link).await,
    };
    assert_eq!(code, 400);
    let counts = victim.groups().rejections().counts();
    assert!(counts.get("undecodable").copied().unwrap_or(0) >= 1, "{counts:?}");
    assert!(counts.get("vote_storm").copied().unwrap_or(0) >= 1, "{counts:?}");
    // The storm's terms deposed the lone leader at most briefly.
    until_online(&group).await;
    still_serves(&group).await;
    victim.close().await;
    attacker.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_flood_is_absorbed_and_the_leader_keeps_serving() {
    let (victim, group, attacker) = victim_and_attacker().await;
    let mut formed = bond_as_member(&victim, &group, &attacker).await;
    let flood = BondMessage::Raft(Message::Forward(Forward::Command {
        commands: vec![Bytes::new(); 100],
        request_id: None,
    }));
    let payload = encoding::encode(&flood).unwrap();
    let sending = tokio::spawn(async move {
        for _ in 0..2_000 {
            if formed.link.feed_raw(payload.clone()).await.is_err() {
                break;
            }
        }
        let _ = formed.link.flush().await;
        formed
    });
    // Meanwhile the victim's own commands still commit promptly.
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        still_serves(&group).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    let _formed = tokio::time::timeout(WAIT, sending)
        .await
        .expect("the flood is taken")
        .unwrap();
    let committed = until_statuses(std::slice::from_ref(&group), |s| {
        (s[0].committed >= 200_000).then_some(())
    });
    tokio::time::timeout(WAIT, committed)
        .await
        .expect("every flooded command committed (they are valid commands from a member)");
    victim.close().await;
    attacker.close().await;
}
