//! Tickets: credentials a node carries in its signed discovery entry, and
//! the validators that decide which peers may subscribe, produce or bond.
//!
//! A ticket is opaque to discovery (`class` + `data`, see
//! [`crate::discovery::Ticket`]); a [`TicketValidator`] of the same class
//! reads it for one peer and answers how long that peer stays authorized.
//! Streams and groups hold a list of validators and ask
//! [`validate_peer`] whenever a peer arrives, changes its entry or reaches
//! the expiry they were given last time (collections spec B.3).

mod expiration;
mod gate;
pub mod jwt;
mod validator;
mod verdicts;

pub use expiration::Expiration;
pub use gate::Gate;
pub use jwt::{Algorithm as JwtAlgorithm, Jwt, JwtIssuer};
pub use validator::{
    InvalidTicket, MAX_TICKETS_CHECKED, TicketValidator, Validators, validate_peer, validator_signatures,
};
pub use verdicts::Verdicts;

pub use crate::discovery::Ticket;

use crate::primitives::Digest;

/// The class of mosaik's JWT tickets: `id!("mosaik.tickets.jwt.v1")`.
pub fn jwt_class() -> Digest {
    Digest::from_name("mosaik.tickets.jwt.v1")
}

/// The class of mosaik's Intel TDX attestation tickets, recognised and
/// shown as opaque; nothing here can check a TDX quote.
pub fn tdx_class() -> Digest {
    Digest::from_name("mosaik.tee.tdx.ticket.v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_classes_are_mosaiks() {
        assert_eq!(
            jwt_class().to_hex(),
            "4586eafab50d29f2ad5212e08f84d0a789cd6a565ce8d344652b1b7b60973d8c"
        );
        assert_eq!(
            tdx_class().to_hex(),
            "0df6ed8500424a32854ef0a1b86ea7d41ef1a929b55e26023b045c91a38c44d0"
        );
    }
}
