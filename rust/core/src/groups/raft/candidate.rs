//! The candidate: asks every bonded peer for its vote and wins with a
//! majority of those asked, less those who abstained (mosaik's dynamic
//! quorum, groups spec §3.6), and never with fewer than our `quorum`
//! members bound to it.

use std::{collections::BTreeSet, time::Duration};

use iroh::EndpointId;

use super::{Message, Raft, Role, Term, Vote};

#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) deadline: Duration,
    asked: BTreeSet<EndpointId>,
    granted: BTreeSet<EndpointId>,
    abstained: BTreeSet<EndpointId>,
}

impl Candidate {
    /// mosaik's quorum: a majority of (asked − abstained).
    fn quorum(&self) -> usize {
        (self.asked.len() - self.abstained.len()) / 2 + 1
    }
}

impl Raft {
    fn candidate(&mut self) -> &mut Candidate {
        match &mut self.role {
            Role::Candidate(c) => c,
            _ => unreachable!("candidate handler on another role"),
        }
    }

    /// Stands in `term` (or the first later term we have not voted in).
    pub(super) fn start_election(&mut self, now: Duration, mut term: Term) {
        self.fail_pending();
        while !self.can_vote(term, self.me) {
            term += 1;
        }
        self.term = term;
        self.voted = Some((term, self.me));
        self.online = false;
        let deadline = now + self.election_timeout();
        let mut asked = self.bonds.clone();
        asked.insert(self.me);
        self.role = Role::Candidate(Candidate {
            deadline,
            asked,
            granted: [self.me].into(),
            abstained: BTreeSet::new(),
        });
        self.outbox.push(super::Output::Broadcast(Message::RequestVote {
            term,
            candidate: self.me,
            log_position: self.log.last(),
        }));
        self.check_won(now);
    }

    pub(super) fn candidate_tick(&mut self, now: Duration) {
        if now >= self.candidate().deadline {
            if self.quorum_reachable() {
                self.start_election(now, self.term + 1);
            } else {
                let term = self.term;
                self.become_follower(now, term, None);
            }
        }
    }

    pub(super) fn candidate_receive(&mut self, now: Duration, from: EndpointId, message: Message) {
        match message {
            Message::RequestVoteResponse { term, vote } if term == self.term => {
                let candidate = self.candidate();
                if !candidate.asked.contains(&from) {
                    return;
                }
                match vote {
                    Vote::Granted => {
                        candidate.granted.insert(from);
                    }
                    Vote::Abstained => {
                        candidate.abstained.insert(from);
                    }
                    Vote::Denied => {}
                }
                self.check_won(now);
            }
            // A leader of our term exists: follow it and take its append.
            Message::AppendEntries { leader, .. } => {
                let term = self.term;
                self.become_follower(now, term, Some(leader));
                self.follower_receive(now, from, message);
            }
            _ => {}
        }
    }

    fn check_won(&mut self, now: Duration) {
        let quorum = self.config.quorum;
        let abstentions_bind = self.rules.record_abstentions;
        let candidate = self.candidate();
        let won = match quorum {
            // mosaik's rule: a majority of whoever was asked and did not abstain.
            None => candidate.granted.len() >= candidate.quorum(),
            // Ours: `quorum` members bound to us in this term, counting
            // those that granted and those that abstained (they recorded
            // the vote, so they back no one else, and they are behind us,
            // so we hold all they hold). With `quorum` a majority of the
            // deployment, two candidates of one term never both win, and
            // every committed entry is held by one of our supporters.
            Some(floor) => {
                let bound = candidate.granted.len()
                    + if abstentions_bind {
                        candidate.abstained.len()
                    } else {
                        0
                    };
                bound >= floor
            }
        };
        if won {
            let granted = candidate.granted.clone();
            let abstained = candidate.abstained.clone();
            self.become_leader(now, granted, abstained);
        }
    }
}
