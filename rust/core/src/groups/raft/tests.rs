//! A deterministic simulation of the Raft core: seeded, virtual time, bonds
//! that delay, drop and re-form, members that crash and restart empty (as
//! mosaik's, nothing is persisted). Every step checks the safety
//! properties: one leader per term, log matching, committed indices that
//! never move back, and one command per committed index everywhere.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::Duration,
};

use bytes::Bytes;
use iroh::{EndpointId, SecretKey};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn peer(i: usize) -> EndpointId {
    SecretKey::from_bytes(&[i as u8 + 1; 32]).public()
}

fn fast_config(quorum: Option<usize>) -> ConsensusConfig {
    ConsensusConfig {
        heartbeat_interval: 50 * MS,
        heartbeat_jitter: 10 * MS,
        election_timeout: 200 * MS,
        election_timeout_jitter: 100 * MS,
        bootstrap_delay: 100 * MS,
        forward_timeout: 200 * MS,
        query_timeout: 200 * MS,
        quorum,
        ..ConsensusConfig::default()
    }
}

/// The nemesis: what may go wrong in a run.
#[derive(Clone, Copy)]
struct Faults {
    partitions: bool,
    crashes: bool,
}

struct Sim {
    rng: StdRng,
    now: Duration,
    nodes: Vec<Option<Raft>>,
    /// Incarnation per node (a restart is a new member state).
    incarnation: Vec<u64>,
    config: ConsensusConfig,
    rules: SafetyRules,
    /// Bonded pairs (i < j).
    bonds: BTreeSet<(usize, usize)>,
    /// Cut pairs: no bond forms while cut.
    cut: BTreeSet<(usize, usize)>,
    /// In flight, per directed link, FIFO: (deliver at, message).
    links: BTreeMap<(usize, usize), VecDeque<(Duration, Message)>>,
    leaders: BTreeMap<Term, usize>,
    /// The command committed at each index, as first seen.
    committed: BTreeMap<Index, Bytes>,
    last_committed: Vec<Index>,
    next_command: u64,
    /// Commands whose commit an `execute` would have reported (committed on
    /// the leader that assigned them).
    acknowledged: BTreeMap<Index, Bytes>,
    assigned: BTreeMap<(usize, RequestId), ()>,
    /// Paused members: no timers, nothing delivered to them (it queues).
    frozen: BTreeSet<usize>,
    /// Strong reads answered: (member, request, index the answer reflects).
    reads: Vec<(usize, RequestId, Index)>,
    /// Strong reads refused.
    failed_reads: Vec<(usize, RequestId)>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    fn new(seed: u64, n: usize, config: ConsensusConfig, rules: SafetyRules) -> Self {
        let mut sim = Self {
            rng: StdRng::seed_from_u64(seed),
            now: Duration::ZERO,
            nodes: (0..n).map(|_| None).collect(),
            incarnation: vec![0; n],
            config,
            rules,
            bonds: BTreeSet::new(),
            cut: BTreeSet::new(),
            links: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_committed: vec![0; n],
            next_command: 0,
            acknowledged: BTreeMap::new(),
            assigned: BTreeMap::new(),
            frozen: BTreeSet::new(),
            reads: Vec::new(),
            failed_reads: Vec::new(),
        };
        for i in 0..n {
            sim.start(i);
        }
        for i in 0..n {
            for j in i + 1..n {
                sim.bond(i, j);
            }
        }
        sim
    }

    fn start(&mut self, i: usize) {
        self.incarnation[i] += 1;
        let seed = self.rng.random();
        self.nodes[i] = Some(Raft::new(
            peer(i),
            self.config.clone(),
            ReplayConfig::default(),
            self.rules,
            seed,
            self.now,
        ));
        self.last_committed[i] = 0;
    }

    fn index_of(&self, id: &EndpointId) -> usize {
        (0..self.nodes.len()).find(|i| peer(*i) == *id).expect("a member")
    }

    fn bond(&mut self, a: usize, b: usize) {
        if a == b || self.nodes[a].is_none() || self.nodes[b].is_none() || self.cut.contains(&pair(a, b)) {
            return;
        }
        if self.bonds.insert(pair(a, b)) {
            let now = self.now;
            self.step(a, |raft| raft.bond_up(now, peer(b)));
            self.step(b, |raft| raft.bond_up(now, peer(a)));
        }
    }

    fn unbond(&mut self, a: usize, b: usize) {
        if self.bonds.remove(&pair(a, b)) {
            self.links.remove(&(a, b));
            self.links.remove(&(b, a));
            let now = self.now;
            self.step(a, |raft| raft.bond_down(now, peer(b)));
            self.step(b, |raft| raft.bond_down(now, peer(a)));
        }
    }

    fn crash(&mut self, i: usize) {
        if std::env::var("RAFT_SIM_TRACE").is_ok() {
            eprintln!("{:?} crash m{i}", self.now);
        }
        for j in 0..self.nodes.len() {
            self.unbond(i, j);
        }
        self.nodes[i] = None;
    }

    /// Runs `f` on member `i`, then routes what it produced and checks.
    fn step(&mut self, i: usize, f: impl FnOnce(&mut Raft)) {
        let Some(raft) = self.nodes[i].as_mut() else {
            return;
        };
        let before = (raft.role(), raft.term());
        f(raft);
        if std::env::var("RAFT_SIM_TRACE").is_ok() && before != (raft.role(), raft.term()) {
            eprintln!(
                "{:?} m{i} {:?} -> {:?} term {} last {:?} bonds {}",
                self.now,
                before.0,
                raft.role(),
                raft.term(),
                raft.log().last(),
                raft.bonds().len()
            );
        }
        raft.flush(self.now);
        let outputs = raft.drain();
        for output in outputs {
            match output {
                Output::Send(to, message) => {
                    let j = self.index_of(&to);
                    self.deliver_later(i, j, message);
                }
                Output::Broadcast(message) => {
                    let peers: Vec<usize> = (0..self.nodes.len())
                        .filter(|j| self.bonds.contains(&pair(i, *j)))
                        .collect();
                    for j in peers {
                        self.deliver_later(i, j, message.clone());
                    }
                }
                Output::Assigned { request, .. } => {
                    self.assigned.insert((i, request), ());
                }
                Output::RunQuery {
                    origin: QueryOrigin::Local(request),
                    at,
                    ..
                } => self.reads.push((i, request, at)),
                Output::Failed { request, .. } => self.failed_reads.push((i, request)),
                _ => {}
            }
        }
        self.check(i);
    }

    fn deliver_later(&mut self, from: usize, to: usize, message: Message) {
        if !self.bonds.contains(&pair(from, to)) {
            return;
        }
        let delay = MS * self.rng.random_range(1..15);
        let link = self.links.entry((from, to)).or_default();
        // FIFO: never before the message ahead of it.
        let at = link
            .back()
            .map_or(self.now + delay, |(t, _)| (*t).max(self.now + delay));
        link.push_back((at, message));
    }

    fn check(&mut self, i: usize) {
        let raft = self.nodes[i].as_ref().expect("stepped");
        if raft.is_leader() {
            let previous = self.leaders.insert(raft.term(), i);
            assert!(
                previous.is_none() || previous == Some(i),
                "two leaders in term {}: {previous:?} and {i}",
                raft.term()
            );
        }
        let committed = raft.committed();
        if std::env::var("RAFT_SIM_TRACE").is_ok()
            && (committed != self.last_committed[i]
                || raft.is_leader() && !self.leaders.contains_key(&raft.term()))
        {
            eprintln!(
                "{:?} m{i} {:?} term {} last {:?} committed {} bonds {:?}",
                self.now,
                raft.role(),
                raft.term(),
                raft.log().last(),
                committed,
                raft.bonds().iter().map(|p| self.index_of(p)).collect::<Vec<_>>()
            );
        }
        assert!(
            committed >= self.last_committed[i],
            "member {i}'s committed index moved back"
        );
        for index in self.last_committed[i] + 1..=committed {
            let command = raft
                .log()
                .get(index)
                .expect("committed entries exist")
                .command
                .clone();
            let first = self.committed.entry(index).or_insert_with(|| command.clone());
            assert_eq!(
                *first, command,
                "index {index} committed with two commands (member {i})"
            );
            if raft.is_leader() {
                self.acknowledged.insert(index, command);
            }
        }
        self.last_committed[i] = committed;
    }

    /// Log matching across every pair of live members.
    fn check_logs(&self) {
        let live: Vec<&Raft> = self.nodes.iter().flatten().collect();
        for a in &live {
            for b in &live {
                let common = a.log().last_index().min(b.log().last_index());
                // Find the highest index where both agree on the term; all
                // earlier entries must then be equal.
                if let Some(k) = (1..=common)
                    .rev()
                    .find(|k| a.log().term_at(*k) == b.log().term_at(*k))
                {
                    for index in 1..=k {
                        assert_eq!(
                            a.log().get(index),
                            b.log().get(index),
                            "logs differ at {index} below a matching entry at {k}"
                        );
                    }
                }
            }
        }
    }

    fn propose(&mut self, i: usize) {
        self.next_command += 1;
        let command = Bytes::from(self.next_command.to_le_bytes().to_vec());
        let request = self.next_command;
        let now = self.now;
        self.step(i, |raft| raft.propose(now, request, vec![command]));
    }

    /// Advances to the next event (a delivery or a timer) and runs it.
    fn advance(&mut self, until: Duration) {
        let next_delivery = self
            .links
            .iter()
            .filter(|((_, to), _)| !self.frozen.contains(to))
            .filter_map(|(link, queue)| queue.front().map(|(at, _)| (*at, *link)))
            .min();
        let next_timer = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.frozen.contains(i))
            .filter_map(|(i, n)| n.as_ref().map(|r| (r.next_deadline(), i)))
            .min();
        let next = [
            next_delivery.map(|(t, _)| t),
            next_timer.map(|(t, _)| t),
            Some(until),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("until is always there");
        self.now = self
            .now
            .max(next)
            .max(self.now + Duration::from_micros(100).min(until.saturating_sub(self.now)));
        if let Some((at, (from, to))) = next_delivery
            && at <= self.now
        {
            let (_, message) = self
                .links
                .get_mut(&(from, to))
                .expect("listed")
                .pop_front()
                .expect("front");
            let now = self.now;
            if std::env::var("RAFT_SIM_MSGS").is_ok() {
                eprintln!("{now:?} m{from} -> m{to}: {message:?}");
            }
            self.step(to, |raft| raft.receive(now, peer(from), message));
            return;
        }
        for i in 0..self.nodes.len() {
            if !self.frozen.contains(&i)
                && self.nodes[i]
                    .as_ref()
                    .is_some_and(|r| r.next_deadline() <= self.now)
            {
                let now = self.now;
                self.step(i, |raft| raft.tick(now));
            }
        }
    }

    fn run(&mut self, duration: Duration, faults: Faults) {
        let end = self.now + duration;
        let n = self.nodes.len();
        let mut next_fault = self.now + 300 * MS;
        let mut next_command = self.now;
        while self.now < end {
            if self.now >= next_command {
                let target = self.rng.random_range(0..n);
                self.propose(target);
                next_command = self.now + MS * self.rng.random_range(5..40);
            }
            if self.now >= next_fault {
                self.fault(faults);
                next_fault = self.now + MS * self.rng.random_range(100..800);
            }
            let until = next_command.min(next_fault).min(end);
            self.advance(until);
            self.check_logs_sometimes();
        }
    }

    fn check_logs_sometimes(&mut self) {
        if self.rng.random_range(0..50) == 0 {
            self.check_logs();
        }
    }

    fn fault(&mut self, faults: Faults) {
        let n = self.nodes.len();
        match self.rng.random_range(0..4) {
            0 if faults.partitions => {
                // Cut a random minority off (or heal everything).
                self.heal();
                let size = self.rng.random_range(1..=(n - 1) / 2 + usize::from(n == 2));
                let mut cut_off: Vec<usize> = (0..n).collect();
                for k in (1..n).rev() {
                    let j = self.rng.random_range(0..=k);
                    cut_off.swap(k, j);
                }
                cut_off.truncate(size);
                for &a in &cut_off {
                    for b in 0..n {
                        if !cut_off.contains(&b) {
                            self.cut.insert(pair(a, b));
                            self.unbond(a, b);
                        }
                    }
                }
            }
            1 if faults.crashes => {
                // Crash-stop a member (a minority at most, for the whole
                // run). Nothing is persisted (as mosaik), so a member that
                // restarts with the same key has forgotten its votes and
                // acknowledgements, and a replacement with a new key is a new
                // member: no Raft without durable state and fixed membership
                // keeps its promises through those, so they are not faults
                // this run injects (see `a_restarted_member_rejoins_empty`).
                let down = self.nodes.iter().filter(|n| n.is_none()).count();
                if down < (n - 1) / 2 {
                    let i = self.rng.random_range(0..n);
                    self.crash(i);
                }
            }
            _ => self.heal(),
        }
    }

    /// Crashed members rejoin, empty, as mosaik's restarted members do.
    fn restart_crashed(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start(i);
            }
        }
        self.heal();
    }

    fn heal(&mut self) {
        self.cut.clear();
        let n = self.nodes.len();
        for i in 0..n {
            for j in i + 1..n {
                self.bond(i, j);
            }
        }
    }

    /// Runs with no client load and no faults.
    fn run_idle(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.advance(end);
        }
    }

    fn read(&mut self, i: usize, request: RequestId) {
        let now = self.now;
        self.step(i, |raft| raft.query(now, request, Bytes::new()));
    }

    /// The member that leads, among those not frozen.
    fn live_leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .find(|i| !self.frozen.contains(i) && self.nodes[*i].as_ref().is_some_and(|r| r.is_leader()))
    }

    fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|r| r.is_leader()))
    }
}

#[test]
fn a_healthy_group_elects_one_leader_and_commits_everywhere() {
    for n in [1, 3, 5, 7] {
        let mut sim = Sim::new(7, n, fast_config(None), SafetyRules::default());
        sim.run(
            Duration::from_secs(3),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        let leader = sim.leader().expect("a leader");
        let committed = sim.nodes[leader].as_ref().unwrap().committed();
        assert!(committed > 20, "{n} members committed only {committed}");
        // Every member applies the same prefix soon after.
        sim.run(
            Duration::from_millis(300),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        for node in sim.nodes.iter().flatten() {
            assert!(node.committed() + 20 >= committed, "a member lags far behind");
        }
        sim.check_logs();
    }
}

/// Hundreds of seeds of partitions and crashes under our rules with
/// `quorum` a majority: no safety property is ever broken.
#[test]
fn safety_holds_under_partitions_and_crashes_with_a_majority_quorum() {
    let seeds: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    for n in [3, 5, 7] {
        for seed in 0..seeds {
            eprintln!("simulating {n} members, seed {seed}");
            let mut sim = Sim::new(seed, n, fast_config(Some(n / 2 + 1)), SafetyRules::default());
            sim.run(
                Duration::from_secs(4),
                Faults {
                    partitions: true,
                    crashes: true,
                },
            );
            sim.heal();
            sim.run(
                Duration::from_secs(3),
                Faults {
                    partitions: false,
                    crashes: false,
                },
            );
            sim.check_logs();
            // What a leader reported committed is still there after the heal.
            let leader = sim.leader().expect("a leader after healing");
            let raft = sim.nodes[leader].as_ref().unwrap();
            for (index, command) in &sim.acknowledged {
                assert_eq!(
                    raft.log().get(*index).map(|e| &e.command),
                    Some(command),
                    "seed {seed}, n {n}: index {index} lost"
                );
            }
        }
    }
}

/// A member that restarts (empty, as mosaik's) catches up from the others
/// and applies the same commands.
#[test]
fn a_restarted_member_rejoins_empty() {
    for seed in 0..20 {
        let mut sim = Sim::new(seed, 3, fast_config(Some(2)), SafetyRules::default());
        sim.run(
            Duration::from_secs(1),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        let follower = (0..3).find(|i| Some(*i) != sim.leader()).expect("a follower");
        sim.crash(follower);
        sim.run(
            Duration::from_millis(500),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        sim.restart_crashed();
        sim.run(
            Duration::from_secs(2),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        let leader = sim.nodes[sim.leader().expect("a leader")]
            .as_ref()
            .unwrap()
            .committed();
        let rejoined = sim.nodes[follower].as_ref().unwrap().committed();
        assert!(
            rejoined > 50 && rejoined + 20 >= leader,
            "seed {seed}: rejoined member at {rejoined}, leader at {leader}"
        );
        sim.check_logs();
    }
}

/// mosaik's own rules (no quorum, faithful commit) lose committed writes
/// when a partitioned leader keeps committing alone: the simulation finds
/// it within a few seeds. This is the hazard our `quorum` rule closes.
#[test]
fn mosaiks_rules_lose_committed_writes_under_partitions() {
    let mut violations = 0;
    for seed in 0..40 {
        let outcome = std::panic::catch_unwind(|| {
            let mut sim = Sim::new(seed, 3, fast_config(None), SafetyRules::FAITHFUL);
            sim.run(
                Duration::from_secs(4),
                Faults {
                    partitions: true,
                    crashes: false,
                },
            );
        });
        violations += usize::from(outcome.is_err());
    }
    assert!(
        violations > 0,
        "the faithful rules should break safety under partitions"
    );
}

/// mosaik: a leader that was paused while the others elected a new leader
/// and committed more answers a strong query at once from its stale state.
/// Ours confirms the read with a round of appends first; the members that
/// moved on answer with their newer term, and the old leader steps down
/// instead of answering.
#[test]
fn a_paused_leader_never_answers_a_strong_query_with_stale_state() {
    for (rules, quorum, stale) in [
        (SafetyRules::FAITHFUL, None, true),
        (SafetyRules::default(), Some(2), false),
    ] {
        let mut sim = Sim::new(3, 3, fast_config(quorum), rules);
        sim.run(
            Duration::from_secs(1),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        sim.run_idle(Duration::from_millis(200));
        let old = sim.leader().expect("a leader");
        sim.frozen.insert(old);
        sim.run_idle(Duration::from_secs(1));
        let new = sim
            .live_leader()
            .expect("a new leader while the old one is paused");
        for _ in 0..5 {
            sim.propose(new);
        }
        sim.run_idle(Duration::from_millis(300));
        let newest = sim.nodes[new].as_ref().unwrap().committed();
        assert!(newest > sim.nodes[old].as_ref().unwrap().committed());
        // The old leader wakes up and is asked before it hears anything.
        sim.frozen.clear();
        sim.read(old, 1_000_000);
        sim.run_idle(Duration::from_secs(1));
        let answered: Vec<Index> = sim
            .reads
            .iter()
            .filter(|(m, r, _)| *m == old && *r == 1_000_000)
            .map(|(_, _, at)| *at)
            .collect();
        let got_stale = answered.iter().any(|at| *at < newest);
        assert_eq!(
            got_stale, stale,
            "rules {rules:?}: answers at {answered:?}, newest commit {newest}"
        );
        if !stale {
            assert!(answered.is_empty());
            assert!(sim.failed_reads.iter().any(|(m, r)| *m == old && *r == 1_000_000));
        }
    }
}

/// mosaik's catch-up offers only committed entries. Entries a leader
/// appended while its followers were cut off are then in no one's reach:
/// the followers cannot fill the gap before the leader's next append, the
/// leader can never commit again, and the group stalls for good (seen in
/// the multi-process nemesis runs). Ours offers a leader's whole log.
#[test]
fn entries_a_leader_appended_unheard_still_commit_after_the_heal() {
    for (rules, stalls) in [
        (
            SafetyRules {
                leader_offers_whole_log: false,
                ..SafetyRules::default()
            },
            true,
        ),
        (SafetyRules::default(), false),
    ] {
        let mut sim = Sim::new(5, 3, fast_config(Some(2)), rules);
        sim.run(
            Duration::from_secs(1),
            Faults {
                partitions: false,
                crashes: false,
            },
        );
        sim.run_idle(Duration::from_millis(200));
        let leader = sim.leader().expect("a leader");
        // Cut the leader off just long enough to append unheard entries.
        for other in 0..3 {
            if other != leader {
                sim.unbond(leader, other);
            }
        }
        for _ in 0..10 {
            sim.propose(leader);
        }
        sim.heal();
        sim.run_idle(Duration::from_millis(50));
        let target = sim.nodes[leader].as_ref().unwrap().log().last_index();
        for _ in 0..5 {
            sim.propose(leader);
            sim.run_idle(Duration::from_millis(100));
        }
        sim.run_idle(Duration::from_secs(2));
        let committed = sim.nodes.iter().flatten().map(Raft::committed).max().unwrap();
        assert_eq!(
            committed < target,
            stalls,
            "leader_offers_whole_log {}: committed {committed}, unheard up to {target}",
            rules.leader_offers_whole_log
        );
    }
}
