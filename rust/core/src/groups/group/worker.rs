//! The group worker: one task per group member. It owns the bonds, steps
//! the consensus core with what they deliver and with the time, routes
//! what the core decides, and dials the members discovery finds.
//!
//! Dialing differs from mosaik where mosaik loses bonds (groups spec §2.6):
//! dials to a peer are never run twice at once, a bond is only ever
//! removed by the bond id that formed it, and a peer whose bond failed or
//! was refused as a duplicate is dialed again after a short jittered
//! backoff instead of at the next catalog change.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use iroh::{Endpoint, EndpointId, endpoint::Side};
use rand::Rng;
use tokio::{
    sync::{broadcast, mpsc, oneshot, watch},
    time::Instant,
};
use tracing::{debug, warn};

use super::{INBOX, QUERY_QUEUE, QueryTask, Shared, Status};
use crate::{
    discovery::{Discovery, SignedPeerEntry, event::Event},
    groups::{
        bond::{
            Bond, BondEvent,
            handshake::{Credentials, DialError, Formed, dial},
            protocol::BondMessage,
            worker as bond_worker,
        },
        error::GroupError,
        id::GroupId,
        raft::{Failure, Forward, Index, IndexRange, Message, Output, QueryOrigin, Raft, RequestId, Term},
        rejection::Rejection,
        service::{Groups, JoinOptions},
    },
    network::{CLOSE_GRACE, CloseReason},
    primitives::Digest,
    tickets::{Gate, Verdicts},
};

/// What the worker is asked to do.
pub enum Input {
    Accepted(Box<(Formed, SignedPeerEntry)>),
    Propose(Vec<Bytes>, ProposalReply),
    Query(Bytes, QueryReply),
}

/// Where the outcome of a proposal goes.
pub type ProposalReply = oneshot::Sender<Result<Assignment, GroupError>>;

/// Where a leader put proposed commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub range: IndexRange,
    /// The leader's term: the entries hold it unless that leader lost them.
    pub term: Term,
}
/// Where a strong query's answer goes: the result and the index it reflects.
pub type QueryReply = oneshot::Sender<Result<(Bytes, Index), GroupError>>;

/// What spawned helpers report back.
enum Done {
    Dialed(Box<(SignedPeerEntry, Result<Formed, DialError>)>),
    Queried(QueryOrigin, Bytes, Index),
}

/// How often the worker looks over the catalog and its own entry.
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// How long a bond the peer closed as a duplicate stays listed while the
/// bond the peer keeps forms here (a handshake on loopback takes ms).
const REPLACEMENT_GRACE: Duration = Duration::from_secs(1);
/// Backoff bounds for dialing a member again.
const REDIAL_MIN: Duration = Duration::from_millis(100);
const REDIAL_MAX: Duration = Duration::from_secs(5);
/// Requests taken from the inbox for one step of the core.
const INPUT_BATCH: usize = 1024;
/// How long an outside machine may take to answer a strong query.
const QUERY_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the worker of a new member and returns the state it shares.
pub(crate) fn start(
    groups: Groups,
    discovery: &Discovery,
    endpoint: &Endpoint,
    id: GroupId,
    options: JoinOptions,
) -> Arc<Shared> {
    let me = endpoint.id();
    let (inbox, inputs) = mpsc::channel(INBOX);
    let (query_tx, query_rx) = mpsc::channel(QUERY_QUEUE);
    let seed: u64 = rand::rng().random();
    let raft = Raft::new(
        me,
        options.consensus.clone(),
        options.replay.clone(),
        options.rules,
        seed,
        Duration::ZERO,
    );
    let shared = Arc::new(Shared {
        id,
        credentials: Credentials {
            me,
            network: discovery.network(),
            group: id,
            key: options.key,
            handshake_timeout: groups.handshake_timeout(),
        },
        inbox,
        bonded: Mutex::new(BTreeMap::new()),
        status: watch::Sender::new(Status::default()),
        applied: watch::Sender::new(0),
        raft: Mutex::new(raft),
        queries: Mutex::new(Some(super::QueryInbox {
            receiver: query_rx,
            held: Default::default(),
        })),
        external_machine: options.external_machine,
        tickets: options.tickets.clone(),
        forward_timeout: options.consensus.forward_timeout,
        election_timeout: options.consensus.election_timeout + options.consensus.election_timeout_jitter,
        cancel: discovery.cancel_token().child_token(),
        finished: watch::Sender::new(false),
    });
    let (bond_events_tx, bond_events) = mpsc::channel(INBOX);
    let (done_tx, done) = mpsc::channel(INBOX);
    let bond_context = bond_worker::BondContext {
        config: options.consensus.clone(),
        discovery: discovery.clone(),
        events: bond_events_tx,
        rejections: groups.rejections().clone(),
        cancel: shared.cancel.clone(),
    };
    let worker = Worker {
        groups,
        shared: shared.clone(),
        discovery: discovery.clone(),
        started: Instant::now(),
        inputs,
        bond_events,
        bond_context,
        done,
        done_tx,
        query_tx,
        bonds: HashMap::new(),
        dialing: HashSet::new(),
        replacing: HashMap::new(),
        redial: HashMap::new(),
        proposals: HashMap::new(),
        queries: HashMap::new(),
        next_request: 0,
        announced_version: None,
        tickets: Verdicts::default(),
    };
    discovery.tasks().spawn(worker.run());
    shared
}

struct Worker {
    groups: Groups,
    shared: Arc<Shared>,
    discovery: Discovery,
    started: Instant,
    inputs: mpsc::Receiver<Input>,
    bond_events: mpsc::Receiver<BondEvent>,
    bond_context: bond_worker::BondContext,
    done: mpsc::Receiver<Done>,
    done_tx: mpsc::Sender<Done>,
    query_tx: mpsc::Sender<QueryTask>,
    bonds: HashMap<EndpointId, Bond>,
    dialing: HashSet<EndpointId>,
    /// Bonds the peer closed as duplicates (30429), kept listed until the
    /// bond it keeps forms here or the instant passes.
    replacing: HashMap<EndpointId, (Digest, Instant)>,
    /// Failed dials: (failures in a row, not before).
    redial: HashMap<EndpointId, (u32, Instant)>,
    proposals: HashMap<RequestId, ProposalReply>,
    queries: HashMap<RequestId, QueryReply>,
    next_request: RequestId,
    announced_version: Option<crate::discovery::entry::PeerEntryVersion>,
    /// What our ticket validators said about members we might dial.
    tickets: Verdicts,
}

impl Worker {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    async fn run(mut self) {
        let id = self.shared.id;
        self.discovery.update_local(|entry| entry.groups.insert(id)).await;
        let mut events = self.discovery.subscribe();
        let mut scan = tokio::time::interval(SCAN_EVERY);
        let cancel = self.shared.cancel.clone();
        loop {
            let deadline = self.started
                + self
                    .shared
                    .raft
                    .lock()
                    .expect("raft")
                    .next_deadline()
                    .min(Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(event) = self.bond_events.recv() => self.bond_event(event),
                Some(done) = self.done.recv() => self.done(done),
                Some(input) = self.inputs.recv() => self.inputs(input),
                event = events.recv() => match event {
                    Ok(Event::Discovered(entry) | Event::Updated(entry)) => self.consider(&entry),
                    Ok(Event::Departed(_)) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.scan(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = scan.tick() => self.scan(),
                _ = tokio::time::sleep_until(deadline) => {
                    let now = self.now();
                    self.step(|raft| raft.tick(now));
                }
            }
        }
        self.shutdown().await;
    }

    async fn shutdown(mut self) {
        for bond in self.bonds.values() {
            bond.close();
        }
        // Give the bond workers a moment to say goodbye.
        let deadline = Instant::now() + bond_worker::DEPARTURE_GRACE;
        while !self.bonds.is_empty() {
            match tokio::time::timeout_at(deadline, self.bond_events.recv()).await {
                Ok(Some(BondEvent::Down { peer, .. })) => {
                    self.bonds.remove(&peer);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(GroupError::Closed));
        }
        for (_, reply) in self.queries.drain() {
            let _ = reply.send(Err(GroupError::Closed));
        }
        let id = self.shared.id;
        self.groups.remove(&id);
        if !self.discovery.cancel_token().is_cancelled() {
            self.discovery
                .update_local(|entry| entry.groups.remove(&id))
                .await;
        }
        // A closed member leads nothing and is in sync with no one.
        self.shared.status.send_modify(|status| {
            status.leader = None;
            status.online = false;
            status.role = crate::groups::raft::RoleKind::Follower;
            status.bonds.clear();
        });
        self.shared.finished.send_replace(true);
        debug!(group = %id.to_hex(), "group closed");
    }

    /// Runs `f` on the core, then carries out what it decided.
    fn step(&mut self, f: impl FnOnce(&mut Raft)) {
        let now = self.now();
        let (outputs, status) = {
            let mut raft = self.shared.raft.lock().expect("raft");
            f(&mut raft);
            raft.flush(now);
            let status = Status {
                term: raft.term(),
                role: raft.role(),
                leader: raft.leader(),
                online: raft.is_online(),
                committed: raft.committed(),
                log_position: raft.log().last(),
                bonds: raft.bonds().iter().copied().collect(),
            };
            (raft.drain(), status)
        };
        for output in outputs {
            self.output(output);
        }
        if !self.shared.external_machine && status.committed > *self.shared.applied.borrow() {
            // NoOp: committing is applying.
            self.shared.applied.send_replace(status.committed);
        }
        self.shared.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    fn send(&self, peer: &EndpointId, message: Message) {
        if let Some(bond) = self.bonds.get(peer) {
            bond.send(BondMessage::Raft(message));
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::Send(peer, message) => self.send(&peer, message),
            Output::Broadcast(message) => {
                for bond in self.bonds.values() {
                    bond.send(BondMessage::Raft(message.clone()));
                }
            }
            Output::Assigned { request, range, term } => {
                if let Some(reply) = self.proposals.remove(&request) {
                    let _ = reply.send(Ok(Assignment { range, term }));
                }
            }
            Output::Failed { request, failure } => {
                let error = match failure {
                    Failure::Offline => GroupError::Offline,
                    Failure::Unknown => GroupError::OutcomeUnknown,
                };
                if let Some(reply) = self.proposals.remove(&request) {
                    let _ = reply.send(Err(error));
                } else if let Some(reply) = self.queries.remove(&request) {
                    let _ = reply.send(Err(GroupError::Offline));
                }
            }
            Output::QueryAnswered {
                request,
                result,
                position,
            } => {
                if let Some(reply) = self.queries.remove(&request) {
                    let _ = reply.send(Ok((result, position)));
                }
            }
            Output::RunQuery { origin, query, at } => self.run_query(origin, query, at),
        }
    }

    /// Runs a strong query on the machine once it has applied `at`.
    fn run_query(&mut self, origin: QueryOrigin, query: Bytes, at: Index) {
        if !self.shared.external_machine {
            // NoOp: `()` answers `()`, which encodes to nothing.
            self.answer_query(origin, Bytes::new(), at);
            return;
        }
        let (reply, answer) = oneshot::channel();
        if self.query_tx.try_send(QueryTask { query, at, reply }).is_err() {
            warn!("too many strong queries waiting for the machine; one is dropped");
            if let QueryOrigin::Local(request) = origin
                && let Some(reply) = self.queries.remove(&request)
            {
                let _ = reply.send(Err(GroupError::Offline));
            }
            return;
        }
        let done = self.done_tx.clone();
        self.discovery.spawn(async move {
            if let Ok(Ok(result)) = tokio::time::timeout(QUERY_ANSWER_TIMEOUT, answer).await {
                let _ = done.send(Done::Queried(origin, result, at)).await;
            }
        });
    }

    fn answer_query(&mut self, origin: QueryOrigin, result: Bytes, at: Index) {
        match origin {
            QueryOrigin::Local(request) => {
                if let Some(reply) = self.queries.remove(&request) {
                    let _ = reply.send(Ok((result, at)));
                }
            }
            QueryOrigin::Remote { peer, request_id } => self.send(
                &peer,
                Message::Forward(Forward::QueryResponse {
                    request_id,
                    result,
                    position: at,
                }),
            ),
        }
    }

    /// Takes `first` and whatever else is already waiting (a bounded
    /// number), and steps the core once for all their commands and queries:
    /// concurrent callers share one append and one flush.
    fn inputs(&mut self, first: Input) {
        let now = self.now();
        let mut proposals = Vec::new();
        let mut queries = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(input) = next {
            match input {
                Input::Accepted(accepted) => {
                    let (formed, entry) = *accepted;
                    self.formed(formed, entry);
                }
                Input::Propose(commands, reply) => {
                    let request = self.request_id();
                    self.proposals.insert(request, reply);
                    proposals.push((request, commands));
                }
                Input::Query(query, reply) => {
                    let request = self.request_id();
                    self.queries.insert(request, reply);
                    queries.push((request, query));
                }
            }
            taken += 1;
            next = if taken < INPUT_BATCH {
                self.inputs.try_recv().ok()
            } else {
                None
            };
        }
        if proposals.is_empty() && queries.is_empty() {
            return;
        }
        self.step(|raft| {
            for (request, commands) in proposals {
                raft.propose(now, request, commands);
            }
            for (request, query) in queries {
                raft.query(now, request, query);
            }
        });
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    fn done(&mut self, done: Done) {
        match done {
            Done::Dialed(dialed) => {
                let (entry, result) = *dialed;
                let peer = entry.entry().id();
                self.dialing.remove(&peer);
                match result {
                    Ok(formed) => self.formed(formed, entry),
                    Err(e) => {
                        debug!(peer = %peer.fmt_short(), error = %e, "bond dial failed");
                        self.backoff(peer);
                    }
                }
            }
            Done::Queried(origin, result, at) => self.answer_query(origin, result, at),
        }
    }

    fn bond_event(&mut self, event: BondEvent) {
        let now = self.now();
        match event {
            BondEvent::Raft { peer, message } => {
                if self.bonds.contains_key(&peer) {
                    self.step(|raft| raft.receive(now, peer, *message));
                }
            }
            BondEvent::Formed(entry) => self.consider(&entry),
            BondEvent::Down {
                peer,
                id,
                reason,
                duplicate,
            } => {
                // Only the bond that formed with this id ends here: a
                // duplicate closing must not take the kept bond with it.
                if self.bonds.get(&peer).is_some_and(|b| b.id == id) {
                    if duplicate {
                        // The peer keeps the other bond of a simultaneous
                        // pair, which may not have formed here yet: wait
                        // for it rather than drop to no bond in between.
                        debug!(peer = %peer.fmt_short(), "bond closed as a duplicate; awaiting the kept one");
                        self.replacing
                            .insert(peer, (id, Instant::now() + REPLACEMENT_GRACE));
                        return;
                    }
                    debug!(peer = %peer.fmt_short(), reason, "bond down");
                    self.bond_lost(now, peer);
                }
            }
        }
    }

    /// Ends our bond with `peer` for the core, and dials again later.
    fn bond_lost(&mut self, now: Duration, peer: EndpointId) {
        self.replacing.remove(&peer);
        self.bonds.remove(&peer);
        self.shared.bonded.lock().expect("bonded").remove(&peer);
        self.step(|raft| raft.bond_down(now, peer));
        self.backoff(peer);
    }

    /// Bonds closed as duplicates whose replacement never formed: down now.
    fn replacements_overdue(&mut self) {
        let now = Instant::now();
        let overdue: Vec<EndpointId> = self
            .replacing
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in overdue {
            debug!(peer = %peer.fmt_short(), "the kept bond never formed; bond down");
            let at = self.now();
            self.bond_lost(at, peer);
        }
    }

    /// A bond finished its handshake: keep it unless we have one already.
    /// Two members that dial each other at once form two bonds, one on each
    /// side first; keeping whichever formed first here could keep a
    /// different one on each side and close both. Both ends keep the
    /// connection dialed by the smaller peer id instead.
    fn formed(&mut self, formed: Formed, entry: SignedPeerEntry) {
        let peer = formed.link.remote_id();
        let replaces = match self.bonds.get(&peer) {
            None => None,
            // The peer closed ours as a duplicate: this is the one it keeps.
            Some(existing)
                if self
                    .replacing
                    .get(&peer)
                    .is_some_and(|(id, _)| *id == existing.id) =>
            {
                self.replacing.remove(&peer);
                Some(existing.clone())
            }
            Some(existing) => {
                let dialed_by_us = formed.link.connection().side() == Side::Client;
                let keep_ours = self.discovery.endpoint().id() < peer;
                if dialed_by_us == keep_ours && existing.dialed_by_us != keep_ours {
                    Some(existing.clone())
                } else {
                    let link = formed.link;
                    self.discovery
                        .spawn(link.close(CloseReason::AlreadyBonded, CLOSE_GRACE));
                    return;
                }
            }
        };
        // Checked before the dial or by the acceptor; the entry may have
        // changed since, and from here the gate follows it.
        let gate = match Gate::admit(self.shared.tickets.clone(), &self.discovery, entry.entry()) {
            Ok(gate) => gate,
            Err(refusal) => {
                self.groups
                    .rejections()
                    .record(Rejection::NotAllowed, &peer, &refusal);
                let link = formed.link;
                self.discovery
                    .spawn(link.close(CloseReason::GroupNotAllowed, CLOSE_GRACE));
                return;
            }
        };
        self.redial.remove(&peer);
        for other in &formed.their_bonds {
            self.consider(other);
        }
        for bond in self.bonds.values() {
            bond.send(BondMessage::BondFormed(entry.clone()));
        }
        let bond = bond_worker::spawn(formed.link, formed.id, gate, &self.bond_context);
        self.bonds.insert(peer, bond);
        self.shared.bonded.lock().expect("bonded").insert(peer, entry);
        if let Some(duplicate) = replaces {
            // The peer stays bonded throughout: the core sees no change.
            debug!(peer = %peer.fmt_short(), "bond replaced by the one both ends keep");
            duplicate.close_as_duplicate();
            return;
        }
        let now = self.now();
        self.step(|raft| raft.bond_up(now, peer));
    }

    fn backoff(&mut self, peer: EndpointId) {
        let failures = self.redial.get(&peer).map_or(0, |(n, _)| *n);
        let base = REDIAL_MIN.saturating_mul(1 << failures.min(6)).min(REDIAL_MAX);
        let jitter = Duration::from_millis(rand::rng().random_range(0..=base.as_millis() as u64));
        self.redial
            .insert(peer, (failures + 1, Instant::now() + base / 2 + jitter / 2));
    }

    /// Dials `entry`'s node if it is a member we are not bonded with.
    fn consider(&mut self, entry: &SignedPeerEntry) {
        let peer = entry.entry().id();
        let me = self.shared.credentials().me;
        if peer == me
            || self.bonds.contains_key(&peer)
            || self.dialing.contains(&peer)
            || !entry.entry().groups.contains(&self.shared.id)
            || entry.entry().network != self.discovery.network()
            || self.redial.get(&peer).is_some_and(|(_, at)| Instant::now() < *at)
            || self.tickets.check(&self.shared.tickets, entry.entry()).is_err()
        {
            return;
        }
        self.dialing.insert(peer);
        let (discovery, credentials) = (self.discovery.clone(), self.shared.credentials().clone());
        let (entry, ours, done) = (entry.clone(), self.shared.bonded_entries(), self.done_tx.clone());
        self.discovery.spawn(async move {
            let result = dial(&discovery, &credentials, &entry, ours).await;
            let _ = done.send(Done::Dialed(Box::new((entry, result)))).await;
        });
    }

    /// Dials every member in the catalog we are not bonded with, and tells
    /// our bonds when our own entry changed.
    fn scan(&mut self) {
        self.replacements_overdue();
        let peers = self.discovery.peers();
        let listed: HashSet<EndpointId> = peers.iter().map(|e| e.entry().id()).collect();
        self.tickets.retain(|id| listed.contains(id));
        for entry in peers {
            self.consider(&entry);
        }
        let version = self.discovery.local().version();
        if self.announced_version != Some(version) {
            let entry = self.discovery.local().current();
            if self.announced_version.is_some() {
                for bond in self.bonds.values() {
                    bond.send(BondMessage::PeerEntryUpdate(entry.clone()));
                }
            }
            self.announced_version = Some(version);
        }
    }
}
