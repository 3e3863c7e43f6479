//! `TicketValidator` and the per-peer rule that combines validators.
//!
//! For one validator, a peer passes when any of its tickets of that class
//! validates, and stays authorized until the latest expiry among those;
//! for a list, every validator must pass and the earliest expiry binds
//! (mosaik's `PeerEntry::validate_tickets`). Unlike mosaik we look at no
//! more than [`MAX_TICKETS_CHECKED`] tickets per class, so an entry stuffed
//! with a thousand forged tokens costs a bounded amount of verification.

use std::{borrow::Cow, fmt, sync::Arc};

use crate::{discovery::PeerEntry, primitives::Digest};

use super::Expiration;

/// Tickets of one class read per validator and peer; the rest are ignored.
pub const MAX_TICKETS_CHECKED: usize = 16;

/// Why a peer's tickets did not authorize it (for logs; the wire only says
/// "not allowed").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ticket: {0}")]
pub struct InvalidTicket(pub Cow<'static, str>);

impl InvalidTicket {
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self(reason.into())
    }
}

/// Reads tickets of one class for one peer.
pub trait TicketValidator: Send + Sync + 'static {
    /// The class of tickets this validator reads.
    fn class(&self) -> Digest;

    /// Identifies the validator and its whole configuration; it is part of
    /// a gated group's id, so it must equal mosaik's for the same settings.
    fn signature(&self) -> Digest;

    /// Checks one ticket's `data` for `peer`, answering until when it holds.
    fn validate(&self, ticket: &[u8], peer: &PeerEntry) -> Result<Expiration, InvalidTicket>;
}

/// The validators a producer, consumer or group requires, all of which
/// must pass.
pub type Validators = Arc<[Arc<dyn TicketValidator>]>;

/// `Ok(None)` when nothing is required; otherwise `Ok(Some(until))` with
/// the earliest expiry over all validators, or the first refusal.
pub fn validate_peer(
    validators: &[Arc<dyn TicketValidator>],
    peer: &PeerEntry,
) -> Result<Option<Expiration>, InvalidTicket> {
    if validators.is_empty() {
        return Ok(None);
    }
    let mut earliest = Expiration::Never;
    for validator in validators {
        earliest = earliest.min(validate_one(validator.as_ref(), peer)?);
    }
    Ok(Some(earliest))
}

fn validate_one(validator: &dyn TicketValidator, peer: &PeerEntry) -> Result<Expiration, InvalidTicket> {
    let class = validator.class();
    let mut best: Option<Expiration> = None;
    let mut last_refusal = None;
    let of_class = peer.tickets.values().filter(|ticket| ticket.class == class);
    for ticket in of_class.take(MAX_TICKETS_CHECKED) {
        match validator.validate(&ticket.data, peer) {
            Ok(until) => best = Some(best.map_or(until, |best| best.max(until))),
            Err(refusal) => last_refusal = Some(refusal),
        }
    }
    best.ok_or_else(|| last_refusal.unwrap_or_else(|| InvalidTicket::new("no ticket of the required class")))
}

/// The signatures that go into a gated group's id, in order.
pub fn validator_signatures(validators: &[Arc<dyn TicketValidator>]) -> Vec<Digest> {
    validators.iter().map(|validator| validator.signature()).collect()
}

impl fmt::Debug for dyn TicketValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketValidator({:?})", self.signature())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use iroh::{EndpointAddr, SecretKey};

    use crate::discovery::Ticket;

    use super::*;

    /// Accepts tickets whose data is `b"ok:<unix seconds or never>"`.
    struct Literal {
        class: Digest,
        calls: AtomicUsize,
    }

    impl TicketValidator for Literal {
        fn class(&self) -> Digest {
            self.class
        }
        fn signature(&self) -> Digest {
            self.class
        }
        fn validate(&self, ticket: &[u8], _: &PeerEntry) -> Result<Expiration, InvalidTicket> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match std::str::from_utf8(ticket)
                .ok()
                .and_then(|t| t.strip_prefix("ok:"))
            {
                Some("never") => Ok(Expiration::Never),
                Some(secs) => secs
                    .parse()
                    .ok()
                    .and_then(Expiration::at_unix_seconds)
                    .ok_or(InvalidTicket::new("bad time")),
                None => Err(InvalidTicket::new("refused")),
            }
        }
    }

    fn literal(name: &str) -> Arc<Literal> {
        Arc::new(Literal {
            class: Digest::from_name(name),
            calls: AtomicUsize::new(0),
        })
    }

    fn entry_with(tickets: &[(&str, &str)]) -> PeerEntry {
        let id = SecretKey::from_bytes(&[7; 32]).public();
        let mut entry = PeerEntry::new(Digest::from_name("net"), EndpointAddr::new(id));
        for (class, data) in tickets {
            let ticket = Ticket {
                class: Digest::from_name(class),
                data: data.as_bytes().to_vec(),
            };
            entry.tickets.insert(ticket.id(), ticket);
        }
        entry
    }

    #[test]
    fn no_validators_means_no_authentication() {
        assert_eq!(validate_peer(&[], &entry_with(&[])), Ok(None));
    }

    #[test]
    fn the_latest_ticket_of_a_class_and_the_earliest_validator_bind() {
        let (a, b) = (literal("a"), literal("b"));
        let validators: Vec<Arc<dyn TicketValidator>> = vec![a, b];
        let entry = entry_with(&[("a", "ok:100"), ("a", "ok:300"), ("a", "no"), ("b", "ok:200")]);
        let until = validate_peer(&validators, &entry).unwrap();
        assert_eq!(until, Expiration::at_unix_seconds(200));
        let missing_b = entry_with(&[("a", "ok:never")]);
        assert!(validate_peer(&validators, &missing_b).is_err());
        let refused_a = entry_with(&[("a", "no"), ("b", "ok:never")]);
        assert_eq!(
            validate_peer(&validators, &refused_a),
            Err(InvalidTicket::new("refused"))
        );
    }

    #[test]
    fn a_stuffed_entry_costs_a_bounded_number_of_checks() {
        let a = literal("a");
        let forged: Vec<String> = (0..1000).map(|i| format!("forged {i}")).collect();
        let pairs: Vec<(&str, &str)> = forged.iter().map(|data| ("a", data.as_str())).collect();
        let validators: Vec<Arc<dyn TicketValidator>> = vec![a.clone()];
        assert!(validate_peer(&validators, &entry_with(&pairs)).is_err());
        assert_eq!(a.calls.load(Ordering::Relaxed), MAX_TICKETS_CHECKED);
    }

    #[test]
    fn ticket_ids_derive_from_class_and_data() {
        let ticket = Ticket {
            class: Digest::from_name("mosaik.tickets.jwt.v1"),
            data: b"x".to_vec(),
        };
        let expected = Digest::hash(&[ticket.class.as_bytes().as_slice(), b"x"].concat());
        assert_eq!(ticket.id(), expected);
    }
}
