//! Tickets gate streams and groups on real endpoints: a peer without a
//! valid ticket is refused, an expiring ticket ends what it allowed within
//! a second, a renewed one keeps it and a removed one ends it.
//!
//! The validator here is a plain test class (the JWT validator has its own
//! tests): a ticket `grant:<peer id hex>:<unix seconds | never>` holds for
//! that peer until that time.

mod common;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use mosaik_core::{
    Digest, Node,
    discovery::{PeerEntry, Ticket},
    groups::{ConsensusConfig, Group, GroupKey, JoinOptions, MachineSpec, ReplayConfig, SafetyRules},
    network::{CloseReason, Link},
    streams::{ConsumerConfig, ProducerConfig, protocol::StreamsProtocol},
    tickets::{Expiration, InvalidTicket, TicketValidator, Validators},
};

use common::{WAIT, hold_subscription, nodes, until_statuses};

struct Grants;

impl Grants {
    fn class() -> Digest {
        Digest::from_name("mosaik-python.tests.grant")
    }

    fn ticket(peer: &Node, until: Option<Duration>) -> Ticket {
        let until = until.map_or("never".to_owned(), |left| {
            (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + left)
                .as_secs()
                .to_string()
        });
        Ticket {
            class: Self::class(),
            data: format!("grant:{}:{until}", peer.peer_id()).into_bytes(),
        }
    }

    /// When a grant made by `ticket` (with an expiry) runs out.
    fn expiry(ticket: &Ticket) -> SystemTime {
        let text = std::str::from_utf8(&ticket.data).unwrap();
        let secs: u64 = text.rsplit(':').next().unwrap().parse().unwrap();
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn required() -> Validators {
        Validators::from([Arc::new(Grants) as Arc<dyn TicketValidator>])
    }
}

impl TicketValidator for Grants {
    fn class(&self) -> Digest {
        Self::class()
    }

    fn signature(&self) -> Digest {
        Digest::from_name("grants validator")
    }

    fn validate(&self, ticket: &[u8], peer: &PeerEntry) -> Result<Expiration, InvalidTicket> {
        let text = std::str::from_utf8(ticket).map_err(|_| InvalidTicket::new("not text"))?;
        let mut parts = text.split(':');
        if parts.next() != Some("grant") || parts.next() != Some(&peer.id().to_string()) {
            return Err(InvalidTicket::new("not for this peer"));
        }
        let until = match parts.next() {
            Some("never") => Expiration::Never,
            Some(secs) => secs
                .parse()
                .ok()
                .and_then(Expiration::at_unix_seconds)
                .ok_or(InvalidTicket::new("bad time"))?,
            None => return Err(InvalidTicket::new("no time")),
        };
        if until.is_expired() {
            return Err(InvalidTicket::new("expired"));
        }
        Ok(until)
    }
}

/// Polls `done` (no event says "a subscription ended") until it holds.
async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(within, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Until `peer`'s catalog holds `node`'s entry at its current version:
/// a catalog sync carries it at once (gossip may take an announce period
/// when the topic is young), so the tests here do not lean on gossip.
async fn until_seen(peer: &Node, node: &Node) {
    let version = node.discovery().local().version();
    tokio::time::timeout(WAIT, peer.discovery().sync_with(node.addr()))
        .await
        .unwrap()
        .unwrap();
    until("the new entry is seen", WAIT, || {
        peer.discovery()
            .get(&node.peer_id())
            .is_some_and(|e| e.entry().version >= version)
    })
    .await;
}

/// The close code that ends a held subscription, and when it came.
async fn ended(mut link: Link<StreamsProtocol>) -> (u64, std::time::Instant) {
    loop {
        match tokio::time::timeout(WAIT, link.recv_raw()).await.unwrap() {
            Ok(_) => continue,
            Err(e) => return (e.remote_code().unwrap(), std::time::Instant::now()),
        }
    }
}

/// Fails unless now is past `expiry`, by less than a second.
fn assert_just_after(expiry: SystemTime, what: &str) {
    let late = SystemTime::now()
        .duration_since(expiry)
        .unwrap_or_else(|_| panic!("{what} before the expiry"));
    assert!(late < Duration::from_secs(1), "{what} {late:?} after the expiry");
}

const NOT_ALLOWED: u64 = CloseReason::NotAllowed.code() as u64;

#[tokio::test(flavor = "multi_thread")]
async fn a_gated_producer_admits_ticket_holders_until_their_ticket_expires() {
    let [producer_node, reader]: [Node; 2] = nodes("tickets-producer", 2).await.try_into().ok().unwrap();
    let mut config = ProducerConfig::new(Digest::from_name("orders"));
    config.tickets = Grants::required();
    let producer = producer_node.streams().producer(config).unwrap();

    assert_eq!(
        hold_subscription(&reader, &producer_node, "orders")
            .await
            .unwrap_err(),
        NOT_ALLOWED
    );
    // A ticket for someone else does not help.
    reader
        .discovery()
        .add_ticket(Grants::ticket(&producer_node, None))
        .await;
    until_seen(&producer_node, &reader).await;
    assert_eq!(
        hold_subscription(&reader, &producer_node, "orders")
            .await
            .unwrap_err(),
        NOT_ALLOWED
    );

    let expiring = Grants::ticket(&reader, Some(Duration::from_secs(2)));
    let expiry = Grants::expiry(&expiring);
    reader.discovery().add_ticket(expiring).await;
    until_seen(&producer_node, &reader).await;
    let link = hold_subscription(&reader, &producer_node, "orders")
        .await
        .unwrap();
    until("the producer counts the subscriber", WAIT, || {
        producer.consumers() == 1
    })
    .await;
    let (code, _) = ended(link).await;
    assert_eq!(
        code, NOT_ALLOWED,
        "an expired ticket ends the subscription with 10403"
    );
    assert_just_after(expiry, "the subscription ended");
    for node in [producer_node, reader] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_ticket_keeps_the_subscription_and_a_removed_one_ends_it() {
    let [producer_node, reader]: [Node; 2] = nodes("tickets-renewal", 2).await.try_into().ok().unwrap();
    let mut config = ProducerConfig::new(Digest::from_name("orders"));
    config.tickets = Grants::required();
    let producer = producer_node.streams().producer(config).unwrap();
    reader
        .discovery()
        .add_ticket(Grants::ticket(&reader, Some(Duration::from_secs(2))))
        .await;
    until_seen(&producer_node, &reader).await;
    let mut link = hold_subscription(&reader, &producer_node, "orders")
        .await
        .unwrap();

    let renewed = reader
        .discovery()
        .replace_ticket(Grants::ticket(&reader, Some(Duration::from_secs(120))))
        .await;
    assert_eq!(reader.discovery().local().current().entry().tickets.len(), 1);
    until_seen(&producer_node, &reader).await;
    // Past the first ticket's expiry, the subscription still carries datums.
    tokio::time::sleep(Duration::from_secs(3)).await;
    producer.send(Bytes::from_static(b"still here")).await.unwrap();
    let frame = tokio::time::timeout(WAIT, link.recv_raw())
        .await
        .unwrap()
        .unwrap();
    assert!(frame.ends_with(b"still here"));

    assert!(reader.discovery().remove_ticket(renewed).await);
    let (code, _) = ended(link).await;
    assert_eq!(code, NOT_ALLOWED, "a removed ticket ends the subscription");
    for node in [producer_node, reader] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gated_consumer_follows_only_producers_with_tickets() {
    let [with_ticket, without, reader]: [Node; 3] =
        nodes("tickets-consumer", 3).await.try_into().ok().unwrap();
    let stream = Digest::from_name("prices");
    let granted = with_ticket
        .discovery()
        .add_ticket(Grants::ticket(&with_ticket, None))
        .await;
    let from_holder = with_ticket
        .streams()
        .producer(ProducerConfig::new(stream))
        .unwrap();
    let from_other = without.streams().producer(ProducerConfig::new(stream)).unwrap();
    for producer in [&with_ticket, &without] {
        until_seen(&reader, producer).await;
    }
    let mut config = ConsumerConfig::new(stream);
    config.tickets = Grants::required();
    let consumer = reader.streams().consumer(config).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    from_holder.send(Bytes::from_static(b"granted")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"granted");
    assert_eq!(
        from_other.consumers(),
        0,
        "no subscription to a producer without a ticket"
    );

    with_ticket.discovery().remove_ticket(granted).await;
    until(
        "the consumer leaves the producer that lost its ticket",
        WAIT,
        || from_holder.consumers() == 0,
    )
    .await;
    for node in [with_ticket, without, reader] {
        node.close().await;
    }
}

fn gated(key: &str, tickets: Validators) -> JoinOptions {
    JoinOptions {
        key: GroupKey::from_secret(key),
        machine: MachineSpec::noop(),
        consensus: ConsensusConfig {
            bootstrap_delay: Duration::from_millis(300),
            election_timeout: Duration::from_millis(600),
            election_timeout_jitter: Duration::from_millis(300),
            ..ConsensusConfig::default()
        },
        replay: ReplayConfig::default(),
        rules: SafetyRules::default(),
        external_machine: false,
        tickets,
    }
}

fn bonds_of(group: &Group) -> usize {
    group.status().bonds.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn members_without_a_valid_ticket_never_bond_and_losing_it_ends_the_bond() {
    let nodes = nodes("tickets-group", 3).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        node.discovery().add_ticket(Grants::ticket(node, None)).await;
    }
    for node in &nodes {
        for other in [a, b] {
            if node.peer_id() != other.peer_id() {
                until_seen(node, other).await;
            }
        }
    }
    let open = gated("team", Validators::from([]));
    let options = gated("team", Grants::required());
    assert_ne!(
        options.group_id(),
        open.group_id(),
        "the validator's signature is part of the id"
    );

    let groups: Vec<Group> = nodes
        .iter()
        .map(|node| node.groups().join(options.clone()).unwrap())
        .collect();
    let pair = &groups[..2];
    tokio::time::timeout(
        WAIT,
        until_statuses(pair, |s| s.iter().all(|s| s.bonds.len() == 1).then_some(())),
    )
    .await
    .unwrap();
    // The outsider dials (it accepts their tickets) and is refused with
    // 30403; it keeps trying with backoff but never holds a bond.
    until("a member refused the outsider", WAIT, || {
        let refused = |node: &Node| node.groups().rejections().counts().get("not_allowed").copied();
        refused(a).or(refused(b)).unwrap_or(0) >= 1
    })
    .await;
    assert_eq!(bonds_of(&groups[2]), 0);
    // (Two members that dial each other at once may both drop the pair as
    // duplicates and re-dial: wait for the pair rather than sample it.)
    tokio::time::timeout(
        WAIT,
        until_statuses(pair, |s| s.iter().all(|s| s.bonds.len() == 1).then_some(())),
    )
    .await
    .unwrap();

    // b loses its ticket: a ends the bond (30403) as soon as it hears.
    let b_ticket = Grants::ticket(b, None).id();
    assert!(b.discovery().remove_ticket(b_ticket).await);
    tokio::time::timeout(
        WAIT,
        until_statuses(&groups[..1], |s| s[0].bonds.is_empty().then_some(())),
    )
    .await
    .unwrap();
    assert!(a.groups().rejections().counts()["not_allowed"] >= 1);
    for node in nodes {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gated_consumer_leaves_a_producer_whose_ticket_expires() {
    let [holder, reader]: [Node; 2] = nodes("tickets-consumer-expiry", 2).await.try_into().ok().unwrap();
    let stream = Digest::from_name("quotes");
    let expiring = Grants::ticket(&holder, Some(Duration::from_secs(2)));
    let expiry = Grants::expiry(&expiring);
    holder.discovery().add_ticket(expiring).await;
    let producer = holder.streams().producer(ProducerConfig::new(stream)).unwrap();
    until_seen(&reader, &holder).await;
    let mut config = ConsumerConfig::new(stream);
    config.tickets = Grants::required();
    let consumer = reader.streams().consumer(config).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    until("the consumer leaves at the expiry", WAIT, || {
        producer.consumers() == 0
    })
    .await;
    assert_just_after(expiry, "the consumer left");
    for node in [holder, reader] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_ticket_keeps_the_bond_and_an_expired_one_ends_it() {
    let nodes = nodes("tickets-group-expiry", 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    // a's ticket runs out first, but a renews it; b's runs out later.
    for (node, lasts) in [(a, 4), (b, 7)] {
        node.discovery()
            .add_ticket(Grants::ticket(node, Some(Duration::from_secs(lasts))))
            .await;
    }
    until_seen(a, b).await;
    until_seen(b, a).await;
    let groups: Vec<Group> = nodes
        .iter()
        .map(|node| node.groups().join(gated("expiring", Grants::required())).unwrap())
        .collect();
    tokio::time::timeout(
        WAIT,
        until_statuses(&groups, |s| s.iter().all(|s| s.bonds.len() == 1).then_some(())),
    )
    .await
    .unwrap();
    a.discovery()
        .replace_ticket(Grants::ticket(a, Some(Duration::from_secs(120))))
        .await;
    let b_ticket = b
        .discovery()
        .local()
        .current()
        .entry()
        .tickets
        .values()
        .next()
        .cloned();
    let b_expiry = Grants::expiry(&b_ticket.unwrap());
    // Ended by a (30403), not a bond lost and re-dialed after a duplicate.
    until("a ends the bond for b's expired ticket", WAIT, || {
        a.groups().rejections().counts().contains_key("not_allowed")
    })
    .await;
    assert_just_after(b_expiry, "the bond ended");
    until("both members lost the bond", WAIT, || {
        groups.iter().all(|g| g.status().bonds.is_empty())
    })
    .await;
    for node in nodes {
        node.close().await;
    }
}
