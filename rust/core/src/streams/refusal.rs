//! `Refusals`: subscriptions a producer turned away, or ended because the
//! consumer was no longer allowed, counted by reason. The counts are what a
//! user (or a test) reads to see access control at work without watching
//! the wire.

use std::{collections::BTreeMap, sync::Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// `max_consumers` reached (10509).
    NoCapacity,
    /// The consumer's peer already holds `max_subscriptions_per_peer`
    /// subscriptions, admitted or being checked (10509).
    PeerLimit,
    /// The producer already runs `MAX_PENDING_CHECKS` `require`
    /// evaluations (10509: the consumer tries again later).
    RequireBusy,
    /// The `require` predicate said no (10403).
    Require,
    /// The `require` predicate did not answer in time (10509).
    RequireTimeout,
    /// No ticket passed the producer's validators (10403).
    Ticket,
    /// A subscription ended: its ticket expired or was removed (10403).
    TicketRevoked,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::NoCapacity => "no_capacity",
            Refusal::PeerLimit => "peer_limit",
            Refusal::RequireBusy => "require_busy",
            Refusal::Require => "require",
            Refusal::RequireTimeout => "require_timeout",
            Refusal::Ticket => "ticket",
            Refusal::TicketRevoked => "ticket_revoked",
        }
    }
}

#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<Refusal, u64>>);

impl Refusals {
    pub fn record(&self, reason: Refusal) {
        *self.0.lock().expect("refusals").entry(reason).or_default() += 1;
    }

    /// Counts by reason name; reasons never seen are absent.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.0
            .lock()
            .expect("refusals")
            .iter()
            .map(|(reason, count)| (reason.name(), *count))
            .collect()
    }
}
