//! `Verdicts`: what the validators said about each peer, kept until that
//! peer's entry changes or its tickets expire.
//!
//! A consumer re-reads the catalog every second and a group on every
//! catalog event; verifying every ticket each time would spend signature
//! checks on entries that did not change. A verdict is reused while the
//! entry's version is the same and the expiry it granted has not passed; a
//! refusal is asked again after [`RECHECK_REFUSED`], since a ticket that is
//! not yet valid (`nbf`) becomes valid without any change to the entry.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use iroh::EndpointId;

use super::{Expiration, InvalidTicket, TicketValidator, validate_peer};
use crate::discovery::{PeerEntry, PeerEntryVersion};

type Verdict = Result<Option<Expiration>, InvalidTicket>;

/// How long a refusal stands before the same entry is checked again.
pub const RECHECK_REFUSED: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Verdicts {
    known: HashMap<EndpointId, Known>,
}

struct Known {
    version: PeerEntryVersion,
    verdict: Verdict,
    at: Instant,
}

impl Known {
    fn still_good(&self, version: PeerEntryVersion) -> bool {
        self.version == version
            && match &self.verdict {
                Ok(until) => !until.is_some_and(|until| until.is_expired()),
                Err(_) => self.at.elapsed() < RECHECK_REFUSED,
            }
    }
}

impl Verdicts {
    /// The validators' verdict on `peer`, from the cache when still good.
    pub fn check(&mut self, validators: &[Arc<dyn TicketValidator>], peer: &PeerEntry) -> Verdict {
        if validators.is_empty() {
            return Ok(None);
        }
        if let Some(known) = self.known.get(&peer.id())
            && known.still_good(peer.version)
        {
            return known.verdict.clone();
        }
        let verdict = validate_peer(validators, peer);
        let known = Known {
            version: peer.version,
            verdict: verdict.clone(),
            at: Instant::now(),
        };
        self.known.insert(peer.id(), known);
        verdict
    }

    /// The earliest expiry among admitted peers: when to look again.
    pub fn next_expiry(&self) -> Option<Expiration> {
        self.known
            .values()
            .filter_map(|known| known.verdict.as_ref().ok().copied().flatten())
            .filter(|until| *until != Expiration::Never)
            .min()
    }

    /// Forgets peers `keep` says no to (departed ones).
    pub fn retain(&mut self, mut keep: impl FnMut(&EndpointId) -> bool) {
        self.known.retain(|id, _| keep(id));
    }
}
