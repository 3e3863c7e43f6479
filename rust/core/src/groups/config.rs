//! Group configuration: mosaik's `ConsensusConfig` timers, the catch-up
//! parameters, and our local safety rules.
//!
//! Only the three heartbeat parameters (and the catch-up batch size and
//! fetch timeout, through its signature) enter the group id; the election
//! timers and our `quorum` rule are local, as in mosaik, so members may
//! differ there.

use std::time::Duration;

use crate::primitives::Digest;

use super::id::consensus_digest;

/// mosaik's `ConsensusConfig`, plus the rules by which we are safer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// Bond ping period base, and the leader's AppendEntries heartbeat.
    pub heartbeat_interval: Duration,
    /// Bond ping jitter (the period is `interval - rand % jitter`).
    pub heartbeat_jitter: Duration,
    /// Late ping ticks in a row before a bond is closed with 30408.
    pub max_missed_heartbeats: u32,
    /// Follower and candidate timeout is uniform in `[timeout, timeout + jitter)`.
    pub election_timeout: Duration,
    pub election_timeout_jitter: Duration,
    /// Added to the first election timeout (term 0) so a starting group
    /// bonds before anyone stands.
    pub bootstrap_delay: Duration,
    /// How long a follower waits for the leader to take a forwarded command.
    pub forward_timeout: Duration,
    /// How long a follower waits for the leader to answer a forwarded query.
    pub query_timeout: Duration,
    /// Our rule, not part of the group id: lead and commit only while this
    /// many members (self included) are bonded and agree. `None` is mosaik's
    /// rule: a majority of whoever is bonded.
    pub quorum: Option<usize>,
    /// This member never stands for election (mosaik's `Observer`).
    pub observer: bool,
    /// mosaik 0.3.14's rule: an observer abstains instead of voting and
    /// acknowledging, so readers do not inflate quorums.
    pub readers_abstain: bool,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_jitter: Duration::from_millis(150),
            max_missed_heartbeats: 10,
            election_timeout: Duration::from_secs(2),
            election_timeout_jitter: Duration::from_millis(500),
            bootstrap_delay: Duration::from_secs(3),
            forward_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(2),
            quorum: None,
            observer: false,
            readers_abstain: false,
        }
    }
}

/// A consensus setting the group cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusConfigError {
    #[error("{0} must be at least one millisecond")]
    TooShort(&'static str),
    #[error("heartbeat_jitter must be shorter than heartbeat_interval")]
    JitterTooLarge,
    #[error("max_missed_heartbeats must be at least 1")]
    NoMissedHeartbeats,
    #[error("quorum must be at least 1")]
    ZeroQuorum,
}

impl ConsensusConfig {
    /// Refuses settings mosaik would panic on (a zero jitter is a modulo by
    /// zero there) or that could never elect anyone.
    pub fn validate(&self) -> Result<(), ConsensusConfigError> {
        let durations = [
            ("heartbeat_interval", self.heartbeat_interval),
            ("heartbeat_jitter", self.heartbeat_jitter),
            ("election_timeout", self.election_timeout),
            ("election_timeout_jitter", self.election_timeout_jitter),
            ("forward_timeout", self.forward_timeout),
            ("query_timeout", self.query_timeout),
        ];
        for (name, value) in durations {
            if value < Duration::from_millis(1) {
                return Err(ConsensusConfigError::TooShort(name));
            }
        }
        if self.heartbeat_jitter >= self.heartbeat_interval {
            return Err(ConsensusConfigError::JitterTooLarge);
        }
        if self.max_missed_heartbeats == 0 {
            return Err(ConsensusConfigError::NoMissedHeartbeats);
        }
        if self.quorum == Some(0) {
            return Err(ConsensusConfigError::ZeroQuorum);
        }
        Ok(())
    }

    /// The part of the group id these settings make.
    pub fn digest(&self) -> Digest {
        consensus_digest(
            self.heartbeat_interval,
            self.heartbeat_jitter,
            self.max_missed_heartbeats,
        )
    }
}

/// mosaik's `LogReplaySync` parameters (both are in its signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    pub batch_size: u64,
    pub fetch_timeout: Duration,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            batch_size: 2000,
            fetch_timeout: Duration::from_secs(25),
        }
    }
}
