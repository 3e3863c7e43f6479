//! The leader: appends commands, sends each batch once, commits what enough
//! members acknowledged, answers forwards, and confirms strong reads.
//!
//! Commit (groups spec §3.7, made safer): the members are this leader and
//! every bonded peer that voted for it, abstained, or acknowledged an append
//! in this term (abstainers at index 0). An index commits once the larger of
//! a majority of those members and our `quorum` acknowledged it and, under
//! `SafetyRules::current_term_commit`, only if it holds an entry of this
//! term (Raft §5.4.2); earlier entries commit with it.
//!
//! Strong reads are ReadIndex: the read waits for a heartbeat sent after it
//! arrived to be answered, in this term, by enough members; then it runs at
//! an index that covers every entry committed before it arrived.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use bytes::Bytes;
use iroh::EndpointId;

use super::{
    Failure, Index, IndexRange, MAX_APPEND_BYTES, MAX_ENTRIES_PER_APPEND, Message, Output, QueryOrigin, Raft,
    Role, Vote,
    message::{Cursor, Forward, LogEntry},
};

#[derive(Debug)]
struct Read {
    origin: QueryOrigin,
    query: Bytes,
    /// Appends sent to each peer when the read arrived (its heartbeat included).
    marks: BTreeMap<EndpointId, u64>,
    /// Every entry committed before the read arrived is at or below this.
    index: Index,
    deadline: Duration,
}

#[derive(Debug)]
pub(super) struct Leader {
    heartbeat_due: Duration,
    /// The highest index each member is known to hold like ours.
    acks: BTreeMap<EndpointId, Index>,
    /// The first index not yet sent.
    unsent_from: Index,
    /// The first index of this term.
    term_start: Index,
    /// Appends sent to, and answers received from, each peer this term.
    sent: BTreeMap<EndpointId, u64>,
    answered: BTreeMap<EndpointId, u64>,
    reads: Vec<Read>,
    /// When the last heartbeat sent for reads went out.
    read_heartbeat: Option<Duration>,
    below_quorum_since: Option<Duration>,
}

/// Strong reads a leader holds while it confirms them; more are refused.
const MAX_PENDING_READS: usize = 4096;

impl Leader {
    pub(super) fn next_deadline(&self) -> Duration {
        let reads = self.reads.iter().map(|r| r.deadline).min();
        [Some(self.heartbeat_due), reads, self.below_quorum_since]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::MAX)
    }

    pub(super) fn forget(&mut self, peer: &EndpointId) {
        self.acks.remove(peer);
        self.sent.remove(peer);
        self.answered.remove(peer);
    }

    pub(super) fn take_reads(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.reads)
            .into_iter()
            .filter_map(|read| match read.origin {
                QueryOrigin::Local(request) => Some(Output::Failed {
                    request,
                    failure: Failure::Offline,
                }),
                QueryOrigin::Remote { .. } => None,
            })
            .collect()
    }
}

impl Raft {
    fn leader_state(&mut self) -> &mut Leader {
        match &mut self.role {
            Role::Leader(l) => l,
            _ => unreachable!("leader handler on another role"),
        }
    }

    pub(super) fn become_leader(
        &mut self,
        now: Duration,
        granted: BTreeSet<EndpointId>,
        abstained: BTreeSet<EndpointId>,
    ) {
        let last = self.log.last_index();
        let mut acks: BTreeMap<EndpointId, Index> = granted
            .into_iter()
            .filter(|p| *p != self.me)
            .map(|p| (p, last))
            .collect();
        if self.rules.current_term_commit {
            // Abstainers are members that hold less than we do.
            acks.extend(abstained.into_iter().map(|p| (p, 0)));
        }
        self.leader = Some(self.me);
        self.online = true;
        self.role = Role::Leader(Leader {
            // Tell everyone at once (mosaik waits a heartbeat interval).
            heartbeat_due: now,
            acks,
            unsent_from: last + 1,
            term_start: last + 1,
            sent: BTreeMap::new(),
            answered: BTreeMap::new(),
            reads: Vec::new(),
            read_heartbeat: None,
            below_quorum_since: None,
        });
        self.update_commit(now);
    }

    pub(super) fn leader_tick(&mut self, now: Duration) {
        let timeout = self.config.election_timeout;
        if !self.quorum_reachable() {
            let since = *self.leader_state().below_quorum_since.get_or_insert(now);
            if now >= since + timeout {
                let term = self.term;
                self.become_follower(now, term, None);
                return;
            }
        } else {
            self.leader_state().below_quorum_since = None;
        }
        if now >= self.leader_state().heartbeat_due {
            self.leader_flush(now);
            if now >= self.leader_state().heartbeat_due {
                self.heartbeat(now);
            }
        }
        self.serve_reads(now);
    }

    /// Appends `commands` in this term; they go out with the next flush.
    pub(super) fn leader_append(&mut self, _now: Duration, commands: Vec<Bytes>) -> IndexRange {
        let start = self.log.last_index() + 1;
        for command in commands {
            self.log.append(self.term, command);
        }
        IndexRange::new(start, self.log.last_index())
    }

    /// Sends every entry not yet sent, each once, in batches.
    pub(super) fn leader_flush(&mut self, now: Duration) {
        let last = self.log.last_index();
        let mut from = self.leader_state().unsent_from;
        if from > last {
            return;
        }
        while from <= last {
            let mut end = (from + MAX_ENTRIES_PER_APPEND as u64 - 1).min(last);
            let candidates = self.log.range(IndexRange::new(from, end), u64::MAX);
            // Keep each append well inside the frame limit: cut the batch
            // where its commands pass `MAX_APPEND_BYTES` (one at least).
            let mut bytes = 0;
            for (offset, entry) in candidates.iter().enumerate() {
                bytes += entry.command.len() + 16;
                if bytes > MAX_APPEND_BYTES && offset > 0 {
                    end = from + offset as u64 - 1;
                    break;
                }
            }
            let entries: Vec<LogEntry> = self.log.range(IndexRange::new(from, end), u64::MAX).to_vec();
            let prev = Cursor::new(self.log.term_at(from - 1).expect("below last"), from - 1);
            self.send_append(prev, entries);
            from = end + 1;
        }
        let interval = self.config.heartbeat_interval;
        let leader = self.leader_state();
        leader.unsent_from = last + 1;
        leader.heartbeat_due = now + interval;
        self.update_commit(now);
    }

    fn heartbeat(&mut self, now: Duration) {
        self.send_append(self.log.last(), vec![]);
        let interval = self.config.heartbeat_interval;
        self.leader_state().heartbeat_due = now + interval;
    }

    fn send_append(&mut self, prev: Cursor, entries: Vec<LogEntry>) {
        let message = Message::AppendEntries {
            term: self.term,
            leader: self.me,
            prev_log_position: prev,
            entries,
            leader_commit: self.committed,
        };
        let bonds = self.bonds.clone();
        let leader = self.leader_state();
        for peer in bonds {
            *leader.sent.entry(peer).or_default() += 1;
        }
        self.outbox.push(Output::Broadcast(message));
    }

    pub(super) fn leader_receive(&mut self, now: Duration, from: EndpointId, message: Message) {
        match message {
            Message::AppendEntriesResponse {
                term: _,
                last_log_index,
                vote,
            } => {
                let last = self.log.last_index();
                let keep_abstainers = self.rules.current_term_commit;
                let leader = self.leader_state();
                *leader.answered.entry(from).or_default() += 1;
                match vote {
                    Vote::Granted => {
                        let acked = leader.acks.entry(from).or_default();
                        *acked = (*acked).max(last_log_index.min(last));
                    }
                    Vote::Abstained if !keep_abstainers => {
                        leader.acks.remove(&from);
                    }
                    Vote::Abstained | Vote::Denied => {}
                }
                self.update_commit(now);
                self.serve_reads(now);
            }
            // RivalLeader: another leader in our term. Stand again, one
            // term up, as mosaik does.
            Message::AppendEntries { .. } => {
                self.leader = None;
                self.start_election(now, self.term + 1);
            }
            Message::Forward(Forward::Command { commands, request_id }) => {
                if commands.is_empty() {
                    return;
                }
                // Appended before it is acknowledged (mosaik acks first).
                let assigned = self.leader_append(now, commands);
                if let Some(request_id) = request_id {
                    self.outbox.push(Output::Send(
                        from,
                        Message::Forward(Forward::CommandAck { request_id, assigned }),
                    ));
                }
            }
            Message::Forward(Forward::Query { query, request_id }) => {
                self.leader_read(
                    now,
                    QueryOrigin::Remote {
                        peer: from,
                        request_id,
                    },
                    query,
                );
            }
            _ => {}
        }
    }

    /// The members whose acknowledgements count, and how many must agree.
    fn commit_quorum(&mut self) -> (Vec<Index>, usize) {
        let last = self.log.last_index();
        let bonds = &self.bonds;
        let leader = match &self.role {
            Role::Leader(l) => l,
            _ => unreachable!(),
        };
        let mut acked: Vec<Index> = leader
            .acks
            .iter()
            .filter(|(peer, _)| bonds.contains(*peer))
            .map(|(_, index)| *index)
            .collect();
        acked.push(last);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let required = (acked.len() / 2 + 1).max(self.quorum_floor());
        (acked, required)
    }

    fn update_commit(&mut self, now: Duration) {
        let (acked, required) = self.commit_quorum();
        let Some(&candidate) = acked.get(required - 1) else {
            return;
        };
        if candidate <= self.committed {
            return;
        }
        if self.rules.current_term_commit && self.log.term_at(candidate) != Some(self.term) {
            return;
        }
        self.commit_to(candidate);
        // Tell followers soon, so they apply (and their `execute` returns).
        let leader = self.leader_state();
        leader.heartbeat_due = leader.heartbeat_due.min(now);
    }

    pub(super) fn leader_read(&mut self, now: Duration, origin: QueryOrigin, query: Bytes) {
        if !self.rules.confirm_reads {
            // mosaik: the leader answers at once from what it has committed.
            let at = self.committed;
            self.outbox.push(Output::RunQuery { origin, query, at });
            return;
        }
        if self.leader_state().reads.len() >= MAX_PENDING_READS {
            // Bounded: a leader flooded with reads refuses the excess.
            if let QueryOrigin::Local(request) = origin {
                self.outbox.push(Output::Failed {
                    request,
                    failure: Failure::Offline,
                });
            }
            return;
        }
        // A fresh heartbeat whose answers confirm we still lead (one per
        // instant, whatever the number of reads arriving in it).
        self.leader_flush(now);
        if self.leader_state().read_heartbeat != Some(now) {
            self.heartbeat(now);
            self.leader_state().read_heartbeat = Some(now);
        }
        let term_committed = self.committed >= self.leader_state().term_start;
        let index = if term_committed {
            self.committed
        } else {
            self.log.last_index()
        };
        let deadline = now + self.config.query_timeout;
        let leader = self.leader_state();
        let marks = leader.sent.clone();
        leader.reads.push(Read {
            origin,
            query,
            marks,
            index,
            deadline,
        });
        self.serve_reads(now);
    }

    fn serve_reads(&mut self, now: Duration) {
        let (acked, required) = self.commit_quorum();
        let _ = acked;
        let committed = self.committed;
        let bonds = self.bonds.clone();
        let leader = self.leader_state();
        let mut ready = Vec::new();
        let mut failed = Vec::new();
        leader.reads.retain(|read| {
            let confirmed = 1 + read
                .marks
                .iter()
                .filter(|(peer, mark)| {
                    bonds.contains(*peer) && leader.answered.get(*peer).copied().unwrap_or(0) >= **mark
                })
                .count();
            if confirmed >= required && committed >= read.index {
                ready.push(Output::RunQuery {
                    origin: read.origin,
                    query: read.query.clone(),
                    at: read.index,
                });
                false
            } else if now >= read.deadline {
                if let QueryOrigin::Local(request) = read.origin {
                    failed.push(Output::Failed {
                        request,
                        failure: Failure::Offline,
                    });
                }
                false
            } else {
                true
            }
        });
        self.outbox.extend(ready);
        self.outbox.extend(failed);
    }
}
