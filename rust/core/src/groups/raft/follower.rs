//! The follower: takes the leader's appends, catches up when it finds a
//! gap, forwards commands and strong queries, and stands for election when
//! the leader goes quiet (groups spec §3.8).

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use iroh::EndpointId;

use super::{
    Failure, Index, Message, Output, Raft, RequestId, Role, Vote,
    message::{Cursor, Forward, LogEntry},
};
use crate::groups::replay::CatchUp;

/// How often a catch-up session looks at its timers.
const CATCH_UP_POLL: Duration = Duration::from_millis(100);

/// A request handed to the leader and not yet answered.
#[derive(Debug)]
struct Pending {
    request: RequestId,
    deadline: Duration,
    /// Commands: sent, so the outcome is unknown if no ack comes.
    is_command: bool,
}

#[derive(Debug)]
pub(super) struct Follower {
    pub(super) election_deadline: Duration,
    pub(super) catch_up: Option<CatchUp>,
    /// When the catch-up session is next polled (it re-asks on timers).
    catch_up_poll: Duration,
    forwarded: BTreeMap<u64, Pending>,
}

impl Follower {
    pub(super) fn new(election_deadline: Duration) -> Self {
        Self {
            election_deadline,
            catch_up: None,
            catch_up_poll: Duration::MAX,
            forwarded: BTreeMap::new(),
        }
    }

    pub(super) fn placeholder() -> Self {
        Self::new(Duration::MAX)
    }

    pub(super) fn next_deadline(&self) -> Duration {
        let forwards = self.forwarded.values().map(|p| p.deadline).min();
        // A catch-up session re-asks on its own schedule: look again soon.
        let catch_up = self.catch_up.as_ref().map(|_| self.catch_up_poll);
        [Some(self.election_deadline), forwards, catch_up]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::MAX)
    }

    pub(super) fn take_pending(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.forwarded)
            .into_values()
            .map(|p| Output::Failed {
                request: p.request,
                failure: if p.is_command {
                    Failure::Unknown
                } else {
                    Failure::Offline
                },
            })
            .collect()
    }
}

impl Raft {
    fn follower(&mut self) -> &mut Follower {
        match &mut self.role {
            Role::Follower(f) => f,
            _ => unreachable!("follower handler on another role"),
        }
    }

    pub(super) fn follower_tick(&mut self, now: Duration) {
        // Forwarded requests the leader left unanswered.
        let expired: Vec<u64> = self
            .follower()
            .forwarded
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let pending = self.follower().forwarded.remove(&id).expect("listed");
            let failure = if pending.is_command {
                Failure::Unknown
            } else {
                Failure::Offline
            };
            self.outbox.push(Output::Failed {
                request: pending.request,
                failure,
            });
        }
        self.poll_catch_up(now);
        if now >= self.follower().election_deadline {
            let timeout = self.election_timeout();
            // The leader went quiet: a catch-up towards it is moot (mosaik
            // keeps it and never stands, which can stall the group).
            self.follower().catch_up = None;
            let standing = !self.config.observer && self.quorum_reachable();
            if standing {
                self.start_election(now, self.term + 1);
            } else {
                self.follower().election_deadline = now + timeout;
            }
        }
    }

    fn poll_catch_up(&mut self, now: Duration) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        let Some(session) = &mut follower.catch_up else {
            return;
        };
        let mut sends = Vec::new();
        let done = session.poll(now, &mut self.log, &self.bonds, self.leader, &mut sends);
        for (peer, message) in sends {
            self.outbox.push(Output::Send(peer, Message::StateSync(message)));
        }
        if done {
            follower.catch_up = None;
        }
        follower.catch_up_poll = now + CATCH_UP_POLL;
    }

    pub(super) fn follower_receive(&mut self, now: Duration, from: EndpointId, message: Message) {
        match message {
            Message::AppendEntries {
                term: _,
                leader,
                prev_log_position,
                entries,
                leader_commit,
            } => self.append_entries(now, from, leader, prev_log_position, entries, leader_commit),
            Message::Forward(Forward::CommandAck { request_id, assigned }) => {
                if let Some(pending) = self.follower().forwarded.remove(&request_id) {
                    // Acks only come from the leader of our term (a new
                    // term fails every pending forward).
                    self.outbox.push(Output::Assigned {
                        request: pending.request,
                        range: assigned,
                        term: self.term,
                    });
                }
            }
            Message::Forward(Forward::QueryResponse {
                request_id,
                result,
                position,
            }) => {
                if let Some(pending) = self.follower().forwarded.remove(&request_id) {
                    self.outbox.push(Output::QueryAnswered {
                        request: pending.request,
                        result,
                        position,
                    });
                }
            }
            // Forwards to a non-leader are dropped; the sender times out.
            _ => {}
        }
    }

    fn append_entries(
        &mut self,
        now: Duration,
        from: EndpointId,
        leader: EndpointId,
        prev: Cursor,
        entries: Vec<LogEntry>,
        leader_commit: Index,
    ) {
        if self.leader != Some(leader) {
            self.leader = Some(leader);
        }
        let timeout = self.election_timeout();
        self.follower().election_deadline = now + timeout;
        let had_entries = !entries.is_empty();
        let consistent = match self.log.term_at(prev.index) {
            Some(term) if term == prev.term => true,
            Some(_) => {
                self.log.truncate_from(prev.index);
                false
            }
            None => false,
        };
        if !consistent {
            self.online = false;
            let (batch, timeout) = (self.replay.batch_size, self.replay.fetch_timeout);
            let follower = self.follower();
            match &mut follower.catch_up {
                Some(session) if session.target() <= prev.index => session.buffer(prev, entries),
                _ => {
                    follower.catch_up = Some(CatchUp::new(prev, entries, batch, timeout));
                    // What we hold past our committed index may be another
                    // leader's: fetched entries must not be appended after
                    // it (mosaik does, and can then commit a log that
                    // differs below the leader's). Fetch it again instead.
                    self.log.truncate_from(self.committed + 1);
                }
            }
            self.poll_catch_up(now);
            if self.rules.answer_every_append {
                self.answer_leader(from, Vote::Abstained);
            }
            return;
        }
        self.online = true;
        // A consistent append ends any catch-up (the gap is gone).
        self.follower().catch_up = None;
        let mut matched = prev.index;
        for (offset, entry) in entries.into_iter().enumerate() {
            let index = prev.index + 1 + offset as u64;
            match self.log.term_at(index) {
                Some(term) if term == entry.term => {}
                Some(_) => {
                    self.log.truncate_from(index);
                    self.log.append(entry.term, entry.command);
                }
                None => {
                    self.log.append(entry.term, entry.command);
                }
            }
            matched = index;
        }
        if had_entries || self.rules.answer_every_append {
            // Acknowledge only what we know matches the leader's log.
            let acked = if self.rules.answer_every_append {
                matched
            } else {
                self.log.last_index()
            };
            // mosaik 0.3.14's readers abstain, so they are not counted.
            let vote = if self.config.observer && self.config.readers_abstain {
                Vote::Abstained
            } else {
                Vote::Granted
            };
            self.outbox.push(Output::Send(
                from,
                Message::AppendEntriesResponse {
                    term: self.term,
                    last_log_index: acked,
                    vote,
                },
            ));
        }
        self.commit_to(leader_commit.min(matched));
    }

    fn answer_leader(&mut self, to: EndpointId, vote: Vote) {
        self.outbox.push(Output::Send(
            to,
            Message::AppendEntriesResponse {
                term: self.term,
                last_log_index: self.log.last_index(),
                vote,
            },
        ));
    }

    fn new_request_id(&mut self) -> u64 {
        use rand::Rng;
        loop {
            let id: u64 = self.rng.random();
            if !self.follower().forwarded.contains_key(&id) {
                return id;
            }
        }
    }

    pub(super) fn follower_forward(&mut self, now: Duration, request: RequestId, commands: Vec<Bytes>) {
        let timeout = self.config.forward_timeout;
        self.forward_to_leader(now + timeout, request, true, |request_id| Forward::Command {
            commands,
            request_id: Some(request_id),
        });
    }

    pub(super) fn follower_query(&mut self, now: Duration, request: RequestId, query: Bytes) {
        let timeout = self.config.query_timeout;
        self.forward_to_leader(now + timeout, request, false, |request_id| Forward::Query {
            query,
            request_id,
        });
    }

    /// Hands a request to the leader and waits for its answer until
    /// `deadline`; `Offline` at once without a bonded leader.
    fn forward_to_leader(
        &mut self,
        deadline: Duration,
        request: RequestId,
        is_command: bool,
        forward: impl FnOnce(u64) -> Forward,
    ) {
        let Some(leader) = self.leader.filter(|l| self.bonds.contains(l)) else {
            self.outbox.push(Output::Failed {
                request,
                failure: Failure::Offline,
            });
            return;
        };
        let request_id = self.new_request_id();
        self.follower().forwarded.insert(
            request_id,
            Pending {
                request,
                deadline,
                is_command,
            },
        );
        self.outbox
            .push(Output::Send(leader, Message::Forward(forward(request_id))));
    }
}
