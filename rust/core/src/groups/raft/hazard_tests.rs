//! One test per hazard of mosaik's Raft variant that our rules close
//! (groups spec §3.11, §5.4): each runs the same steps under mosaik's
//! rules (`SafetyRules::FAITHFUL`, no `quorum`), where the hazard shows,
//! and under ours, where it does not.

use std::time::Duration;

use bytes::Bytes;
use iroh::{EndpointId, SecretKey};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn peer(i: u8) -> EndpointId {
    SecretKey::from_bytes(&[i + 1; 32]).public()
}

fn config(quorum: Option<usize>) -> ConsensusConfig {
    ConsensusConfig {
        election_timeout: 200 * MS,
        election_timeout_jitter: 100 * MS,
        bootstrap_delay: Duration::ZERO,
        quorum,
        ..ConsensusConfig::default()
    }
}

fn member(i: u8, quorum: Option<usize>, rules: SafetyRules) -> Raft {
    Raft::new(
        peer(i),
        config(quorum),
        ReplayConfig::default(),
        rules,
        u64::from(i),
        Duration::ZERO,
    )
}

/// A follower holding `count` entries of `term` from leader `from`, none
/// committed.
fn holding(raft: &mut Raft, from: EndpointId, term: Term, count: u64, now: Duration) {
    raft.bond_up(now, from);
    raft.receive(
        now,
        from,
        Message::AppendEntries {
            term,
            leader: from,
            prev_log_position: Cursor::default(),
            entries: (0..count)
                .map(|i| LogEntry {
                    term,
                    command: Bytes::from(vec![i as u8]),
                })
                .collect(),
            leader_commit: 0,
        },
    );
    raft.drain();
}

/// Stands for election once its timer fires (everything it sends dropped).
fn stand(raft: &mut Raft, at: Duration) -> Term {
    raft.tick(at);
    assert_eq!(raft.role(), RoleKind::Candidate, "stood for election");
    raft.drain();
    raft.term()
}

/// Makes `raft` leader with `voter`'s vote (bonding with it first);
/// returns the term and the time it leads from.
fn elected_by(raft: &mut Raft, voter: EndpointId) -> (Term, Duration) {
    raft.bond_up(MS, voter);
    let term = stand(raft, Duration::from_secs(1));
    let now = Duration::from_secs(1) + MS;
    let vote = Message::RequestVoteResponse {
        term,
        vote: Vote::Granted,
    };
    raft.receive(now, voter, vote);
    assert!(raft.is_leader());
    (term, now)
}

/// mosaik: a leader elected only by abstentions (everyone else behind it)
/// commits its whole log alone at once, entries of earlier terms included,
/// though no other member holds them. Ours: abstainers count as members
/// that hold nothing, and only an entry of the new term commits by count.
#[test]
fn a_leader_elected_by_abstentions_does_not_commit_alone() {
    for (rules, commits_alone) in [(SafetyRules::FAITHFUL, true), (SafetyRules::default(), false)] {
        let mut a = member(0, None, rules);
        holding(&mut a, peer(9), 1, 3, MS);
        a.bond_down(MS, peer(9));
        a.bond_up(MS, peer(1));
        a.bond_up(MS, peer(2));
        let term = stand(&mut a, Duration::from_secs(1));
        for voter in [peer(1), peer(2)] {
            a.receive(
                Duration::from_secs(1),
                voter,
                Message::RequestVoteResponse {
                    term,
                    vote: Vote::Abstained,
                },
            );
        }
        assert!(a.is_leader());
        assert_eq!(
            a.committed() == 3,
            commits_alone,
            "rules {rules:?}: committed {}",
            a.committed()
        );
    }
}

/// mosaik: a voter behind a candidate abstains without recording it, and
/// then grants its vote to a second candidate of the same term: both count
/// it. Ours: the abstention binds the voter for that term.
#[test]
fn an_abstaining_voter_backs_no_one_else_in_that_term() {
    for (rules, second_vote) in [
        (SafetyRules::FAITHFUL, Vote::Granted),
        (SafetyRules::default(), Vote::Denied),
    ] {
        let mut voter = member(0, None, rules);
        holding(&mut voter, peer(9), 1, 1, MS);
        let ahead = Message::RequestVote {
            term: 5,
            candidate: peer(1),
            log_position: Cursor::new(1, 5),
        };
        voter.receive(2 * MS, peer(1), ahead);
        let equal = Message::RequestVote {
            term: 5,
            candidate: peer(2),
            log_position: Cursor::new(1, 1),
        };
        voter.receive(3 * MS, peer(2), equal);
        let votes: Vec<Vote> = voter
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(_, Message::RequestVoteResponse { vote, .. }) => Some(vote),
                _ => None,
            })
            .collect();
        assert_eq!(votes, vec![Vote::Abstained, second_vote], "rules {rules:?}");
    }
}

/// mosaik: a leader cut off from every member keeps leading and commits
/// alone. Ours, with `quorum = 2` of 3: it commits nothing alone and steps
/// down within an election timeout.
#[test]
fn a_leader_cut_off_stops_committing_and_steps_down() {
    for (quorum, rules, alone) in [
        (None, SafetyRules::FAITHFUL, true),
        (Some(2), SafetyRules::default(), false),
    ] {
        let mut leader = member(0, quorum, rules);
        leader.bond_up(MS, peer(2));
        let (_, now) = elected_by(&mut leader, peer(1));
        // The partition: both bonds go.
        leader.bond_down(now, peer(1));
        leader.bond_down(now, peer(2));
        leader.propose(now, 1, vec![Bytes::from_static(b"w")]);
        leader.flush(now);
        assert_eq!(
            leader.committed() == 1,
            alone,
            "quorum {quorum:?}: committed {}",
            leader.committed()
        );
        leader.tick(now + config(quorum).election_timeout);
        assert_eq!(leader.is_leader(), alone, "quorum {quorum:?}: still leading");
    }
}

/// mosaik's leader acknowledges a forwarded command before appending it
/// (and drops it if it loses leadership first). Ours appends it, then
/// acknowledges with the indices it really has.
#[test]
fn a_forwarded_command_is_appended_before_it_is_acknowledged() {
    let mut leader = member(0, None, SafetyRules::default());
    let (term, now) = elected_by(&mut leader, peer(1));
    leader.drain();
    leader.receive(
        now,
        peer(1),
        Message::Forward(Forward::Command {
            commands: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            request_id: Some(7),
        }),
    );
    let ack = leader.drain().into_iter().find_map(|o| match o {
        Output::Send(
            _,
            Message::Forward(Forward::CommandAck {
                request_id: 7,
                assigned,
            }),
        ) => Some(assigned),
        _ => None,
    });
    let assigned = ack.expect("acknowledged");
    assert_eq!(assigned, IndexRange::new(1, 2));
    assert_eq!(
        leader.log().get(1).map(|e| e.command.clone()),
        Some(Bytes::from_static(b"a"))
    );
    assert_eq!(
        leader.log().get(2).map(|e| (e.term, e.command.clone())),
        Some((term, Bytes::from_static(b"b")))
    );
}

/// mosaik 0.3.14's rule, offered as an option: an observer that abstains
/// answers votes and appends with `Abstained`, so it backs no quorum; by
/// default (0.3.13) it grants like any member.
#[test]
fn readers_abstain_only_when_asked_to() {
    for (readers_abstain, expected) in [(false, Vote::Granted), (true, Vote::Abstained)] {
        let mut reader = Raft::new(
            peer(0),
            ConsensusConfig {
                observer: true,
                readers_abstain,
                ..config(None)
            },
            ReplayConfig::default(),
            SafetyRules::default(),
            0,
            Duration::ZERO,
        );
        reader.bond_up(MS, peer(1));
        reader.receive(
            MS,
            peer(1),
            Message::RequestVote {
                term: 1,
                candidate: peer(1),
                log_position: Cursor::default(),
            },
        );
        reader.receive(
            2 * MS,
            peer(1),
            Message::AppendEntries {
                term: 1,
                leader: peer(1),
                prev_log_position: Cursor::default(),
                entries: vec![LogEntry {
                    term: 1,
                    command: Bytes::new(),
                }],
                leader_commit: 0,
            },
        );
        let votes: Vec<Vote> = reader
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(_, Message::RequestVoteResponse { vote, .. })
                | Output::Send(_, Message::AppendEntriesResponse { vote, .. }) => Some(vote),
                _ => None,
            })
            .collect();
        assert_eq!(
            votes,
            vec![expected, expected],
            "readers_abstain {readers_abstain}"
        );
        // An observer never stands.
        reader.tick(Duration::from_secs(60));
        assert_ne!(reader.role(), RoleKind::Candidate);
    }
}
