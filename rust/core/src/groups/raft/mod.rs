//! mosaik's Raft variant as a deterministic state machine (no I/O, no clock).
//!
//! The driver feeds it bond changes, received messages, client requests and
//! the time, and takes back the messages to send and the outcomes of client
//! requests. That keeps every rule testable in a seeded simulation with
//! virtual time, and the same code runs on real bonds.
//!
//! What is mosaik's (the wire behaviour peers rely on, groups spec §3):
//! stale messages dropped, step-down on a higher term, the
//! equal/behind/ahead vote rule with `Abstained`, elections over whoever is
//! bonded, each batch sent once, laggards pulling gaps through log replay,
//! `RivalLeader`, forwarding. Where mosaik is unsafe and the wire allows,
//! [`SafetyRules`] makes us safer (each rule can be turned off, which the
//! simulation uses to show the hazard it closes):
//! - a leader commits by count only entries of its own term, and voters
//!   that abstained count as members that have acked nothing;
//! - a voter that abstains records its vote;
//! - a leader acknowledges forwarded commands only once they are appended;
//! - with `quorum = n`, a member leads and commits only with `n` members;
//! - a follower answers every append of its leader (heartbeats included,
//!   and a stale leader with its newer term), which lets a leader confirm a
//!   strong read (ReadIndex) without a lease.

mod candidate;
mod follower;
mod leader;
pub mod log;
pub mod message;

use std::{collections::BTreeSet, time::Duration};

use bytes::Bytes;
use iroh::EndpointId;
use rand::{Rng, SeedableRng, rngs::StdRng};

pub use self::message::{Cursor, Forward, Index, IndexRange, LogEntry, Message, Term, Vote};
use self::{candidate::Candidate, follower::Follower, leader::Leader, log::Log};
use super::config::{ConsensusConfig, ReplayConfig};

/// The most entries one AppendEntries carries; a bigger batch is split.
pub const MAX_ENTRIES_PER_APPEND: usize = 2000;
/// Roughly the most command bytes one AppendEntries carries (a single
/// larger command goes alone); the bond's frame limit is far above.
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;

/// Our rules beyond mosaik's (module doc). All on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SafetyRules {
    pub current_term_commit: bool,
    pub record_abstentions: bool,
    pub answer_every_append: bool,
    pub confirm_reads: bool,
    pub leader_offers_whole_log: bool,
}

impl Default for SafetyRules {
    fn default() -> Self {
        Self {
            current_term_commit: true,
            record_abstentions: true,
            answer_every_append: true,
            confirm_reads: true,
            leader_offers_whole_log: true,
        }
    }
}

impl SafetyRules {
    /// mosaik 0.3.13's behaviour, for tests that show a hazard.
    pub const FAITHFUL: Self = Self {
        current_term_commit: false,
        record_abstentions: false,
        answer_every_append: false,
        confirm_reads: false,
        leader_offers_whole_log: false,
    };
}

/// A client request's handle, chosen by the driver.
pub type RequestId = u64;

/// Why a client request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No leader could take it; nothing was appended.
    Offline,
    /// Handed to a leader that did not confirm in time: it may or may not
    /// be appended (and later committed).
    Unknown,
}

/// Who asked a strong query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryOrigin {
    Local(RequestId),
    Remote { peer: EndpointId, request_id: u64 },
}

/// What the driver must do after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send(EndpointId, Message),
    /// To every bonded peer.
    Broadcast(Message),
    /// The commands of `request` have these indices in the log of the
    /// leader of `term`. If those indices later hold entries of another
    /// term, the commands were lost with that leader.
    Assigned {
        request: RequestId,
        range: IndexRange,
        term: Term,
    },
    Failed {
        request: RequestId,
        failure: Failure,
    },
    /// Run `query` on the local machine once it has applied `at`, and
    /// answer its origin (a remote one with `Forward::QueryResponse`).
    RunQuery {
        origin: QueryOrigin,
        query: Bytes,
        at: Index,
    },
    /// The leader answered a strong query forwarded by us.
    QueryAnswered {
        request: RequestId,
        result: Bytes,
        position: Index,
    },
}

/// The role and its state.
#[derive(Debug)]
enum Role {
    Follower(Follower),
    Candidate(Candidate),
    Leader(Leader),
}

/// What kind of member this is, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Follower,
    Candidate,
    Leader,
}

/// One member's consensus state.
#[derive(Debug)]
pub struct Raft {
    me: EndpointId,
    config: ConsensusConfig,
    replay: ReplayConfig,
    rules: SafetyRules,
    rng: StdRng,
    term: Term,
    /// The last vote: (term, candidate). In memory, as mosaik.
    voted: Option<(Term, EndpointId)>,
    log: Log,
    committed: Index,
    bonds: BTreeSet<EndpointId>,
    leader: Option<EndpointId>,
    online: bool,
    role: Role,
    outbox: Vec<Output>,
}

impl Raft {
    pub fn new(
        me: EndpointId,
        config: ConsensusConfig,
        replay: ReplayConfig,
        rules: SafetyRules,
        seed: u64,
        now: Duration,
    ) -> Self {
        let mut raft = Self {
            me,
            config,
            replay,
            rules,
            rng: StdRng::seed_from_u64(seed),
            term: 0,
            voted: None,
            log: Log::default(),
            committed: 0,
            bonds: BTreeSet::new(),
            leader: None,
            online: false,
            role: Role::Follower(Follower::placeholder()),
            outbox: Vec::new(),
        };
        raft.become_follower(now, 0, None);
        raft
    }

    // ---- what the driver reads -------------------------------------------------------

    pub fn id(&self) -> EndpointId {
        self.me
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn leader(&self) -> Option<EndpointId> {
        self.leader
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub fn role(&self) -> RoleKind {
        match self.role {
            Role::Follower(_) => RoleKind::Follower,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }

    /// A leader is known and this member is in sync with it.
    pub fn is_online(&self) -> bool {
        self.online
    }

    pub fn committed(&self) -> Index {
        self.committed
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn bonds(&self) -> &BTreeSet<EndpointId> {
        &self.bonds
    }

    pub fn config(&self) -> &ConsensusConfig {
        &self.config
    }

    /// Takes the outputs of the steps so far.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outbox)
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Duration {
        match &self.role {
            Role::Follower(f) => f.next_deadline(),
            Role::Candidate(c) => c.deadline,
            Role::Leader(l) => l.next_deadline(),
        }
    }

    // ---- inputs ----------------------------------------------------------------------

    pub fn bond_up(&mut self, now: Duration, peer: EndpointId) {
        if peer != self.me {
            self.bonds.insert(peer);
        }
        self.tick(now);
    }

    pub fn bond_down(&mut self, now: Duration, peer: EndpointId) {
        self.bonds.remove(&peer);
        if let Role::Leader(leader) = &mut self.role {
            leader.forget(&peer);
        }
        self.tick(now);
    }

    /// Timers: elections, heartbeats, request timeouts, catch-up.
    pub fn tick(&mut self, now: Duration) {
        match &self.role {
            Role::Follower(_) => self.follower_tick(now),
            Role::Candidate(_) => self.candidate_tick(now),
            Role::Leader(_) => self.leader_tick(now),
        }
    }

    /// A message from a bonded peer.
    pub fn receive(&mut self, now: Duration, from: EndpointId, message: Message) {
        if let Some(term) = message.term() {
            if term < self.term {
                self.stale(from, &message);
                return;
            }
            if term > self.term {
                let leader = match &message {
                    Message::AppendEntries { leader, .. } => Some(*leader),
                    _ => None,
                };
                // A follower keeps its election timer when a candidate's
                // newer term reaches it: only a vote or a leader resets it.
                // Otherwise candidates behind us, standing again and again,
                // keep the member that could win from ever standing.
                let kept = match &self.role {
                    Role::Follower(f) if leader.is_none() => Some(f.election_deadline),
                    _ => None,
                };
                self.become_follower(now, term, leader);
                if let (Some(deadline), Role::Follower(f)) = (kept, &mut self.role) {
                    f.election_deadline = deadline;
                }
            }
        }
        match message {
            Message::RequestVote {
                term,
                candidate,
                log_position,
            } => self.answer_vote(now, from, term, candidate, log_position),
            Message::StateSync(request) => self.replay_message(now, from, request),
            message => match &self.role {
                Role::Follower(_) => self.follower_receive(now, from, message),
                Role::Candidate(_) => self.candidate_receive(now, from, message),
                Role::Leader(_) => self.leader_receive(now, from, message),
            },
        }
        self.tick(now);
    }

    /// Commands to append. A leader appends them at once; a follower hands
    /// them to its leader.
    pub fn propose(&mut self, now: Duration, request: RequestId, commands: Vec<Bytes>) {
        if commands.is_empty() {
            return;
        }
        match &self.role {
            Role::Leader(_) => {
                let range = self.leader_append(now, commands);
                self.outbox.push(Output::Assigned {
                    request,
                    range,
                    term: self.term,
                });
            }
            Role::Follower(_) => self.follower_forward(now, request, commands),
            Role::Candidate(_) => self.outbox.push(Output::Failed {
                request,
                failure: Failure::Offline,
            }),
        }
    }

    /// A strong (linearizable) query.
    pub fn query(&mut self, now: Duration, request: RequestId, query: Bytes) {
        match &self.role {
            Role::Leader(_) => self.leader_read(now, QueryOrigin::Local(request), query),
            Role::Follower(_) => self.follower_query(now, request, query),
            Role::Candidate(_) => self.outbox.push(Output::Failed {
                request,
                failure: Failure::Offline,
            }),
        }
    }

    /// Sends what the leader appended since the last flush.
    pub fn flush(&mut self, now: Duration) {
        if matches!(self.role, Role::Leader(_)) {
            self.leader_flush(now);
        }
    }

    // ---- common rules ----------------------------------------------------------------

    /// A message from an older term. mosaik drops it silently; answering a
    /// stale leader or candidate with our term makes it step down at once
    /// (textbook Raft, and a mosaik peer does step down on it).
    fn stale(&mut self, from: EndpointId, message: &Message) {
        if !self.rules.answer_every_append {
            return;
        }
        let answer = match message {
            Message::AppendEntries { .. } => Message::AppendEntriesResponse {
                term: self.term,
                last_log_index: self.log.last_index(),
                vote: Vote::Denied,
            },
            // A candidate that restarted (terms start at 0 again) would
            // otherwise stand in stale terms forever.
            Message::RequestVote { .. } => Message::RequestVoteResponse {
                term: self.term,
                vote: Vote::Denied,
            },
            _ => return,
        };
        self.outbox.push(Output::Send(from, answer));
    }

    /// mosaik's vote rule: grant only to a candidate whose log ends where
    /// ours does, deny one behind us, abstain for one ahead of us.
    fn answer_vote(
        &mut self,
        now: Duration,
        from: EndpointId,
        term: Term,
        candidate: EndpointId,
        position: Cursor,
    ) {
        let vote = if !self.can_vote(term, candidate) || position < self.log.last() {
            Vote::Denied
        } else if self.log.last() < position {
            if self.rules.record_abstentions {
                self.voted = Some((term, candidate));
            }
            Vote::Abstained
        } else if self.config.observer && self.config.readers_abstain {
            Vote::Abstained
        } else {
            self.voted = Some((term, candidate));
            Vote::Granted
        };
        self.vote_reply(now, from, term, vote);
    }

    fn vote_reply(&mut self, now: Duration, to: EndpointId, term: Term, vote: Vote) {
        if vote != Vote::Denied {
            let deadline = now + self.election_timeout();
            if let Role::Follower(follower) = &mut self.role {
                follower.election_deadline = deadline;
            }
        }
        self.outbox
            .push(Output::Send(to, Message::RequestVoteResponse { term, vote }));
    }

    /// Whether we may vote for `candidate` in `term`: not if we voted for
    /// someone else in that term or a later one.
    fn can_vote(&self, term: Term, candidate: EndpointId) -> bool {
        match self.voted {
            Some((voted_term, voted_for)) => {
                voted_term < term || (voted_term == term && voted_for == candidate)
            }
            None => true,
        }
    }

    fn replay_message(&mut self, now: Duration, from: EndpointId, message: replay_message::ReplayMessage) {
        // mosaik offers only what it has committed. A leader's whole log is
        // the one to follow, so ours offers all of it: entries it appended
        // while no follower heard them can then still reach followers,
        // which acknowledge them, and the group commits again (with
        // mosaik's cap it stalls for good; groups spec §5.4).
        let whole = self.is_leader() && self.rules.leader_offers_whole_log;
        let offered = if whole {
            self.log.last_index()
        } else {
            self.committed
        };
        if let Some(answer) =
            crate::groups::replay::serve(&message, &self.log, offered, self.replay.batch_size)
        {
            self.outbox.push(Output::Send(from, Message::StateSync(answer)));
            return;
        }
        if let Role::Follower(follower) = &mut self.role
            && let Some(session) = &mut follower.catch_up
        {
            session.receive(from, message);
            self.follower_tick(now);
        }
    }

    /// Uniform in `[election_timeout, election_timeout + jitter)`.
    fn election_timeout(&mut self) -> Duration {
        let jitter = self.config.election_timeout_jitter.as_micros() as u64;
        self.config.election_timeout + Duration::from_micros(self.rng.random_range(0..jitter.max(1)))
    }

    /// Members that must agree for us to lead or commit: our `quorum`
    /// rule, or 1 under mosaik's.
    fn quorum_floor(&self) -> usize {
        self.config.quorum.unwrap_or(1)
    }

    /// Whether enough members are bonded for us to stand or lead.
    fn quorum_reachable(&self) -> bool {
        self.bonds.len() + 1 >= self.quorum_floor()
    }

    fn become_follower(&mut self, now: Duration, term: Term, leader: Option<EndpointId>) {
        self.fail_pending();
        self.term = term;
        self.leader = leader;
        self.online = false;
        let mut timeout = self.election_timeout();
        if term == 0 {
            timeout += self.config.bootstrap_delay;
        }
        self.role = Role::Follower(Follower::new(now + timeout));
    }

    /// Fails every request the current role holds: a role change drops
    /// them (the outcome of a forwarded command is then unknown).
    fn fail_pending(&mut self) {
        let failed = match &mut self.role {
            Role::Follower(f) => f.take_pending(),
            Role::Leader(l) => l.take_reads(),
            Role::Candidate(_) => vec![],
        };
        self.outbox.extend(failed);
    }

    /// Commits up to `index` (never backwards).
    fn commit_to(&mut self, index: Index) {
        let index = index.min(self.log.last_index());
        if index > self.committed {
            self.committed = index;
        }
    }
}

/// Where the catch-up messages come from (a short path for the handlers).
mod replay_message {
    pub use crate::groups::replay::ReplayMessage;
}

#[cfg(test)]
mod hazard_tests;
#[cfg(test)]
mod tests;
