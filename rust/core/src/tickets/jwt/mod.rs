//! mosaik's JWT tickets: compact JWS tokens bound to the bearer's peer id.
//!
//! [`JwtIssuer`] mints them as mosaik's `JwtTicketBuilder` does and [`Jwt`]
//! validates them as mosaik's `Jwt` does, with the same seven algorithms
//! ([`Algorithm`]), the same key sizes and the same validator signature, so
//! tokens and gated group ids are interchangeable with Rust nodes
//! (collections spec B.2). Tokens travel as the `data` of a ticket of class
//! [`super::jwt_class`].

mod algorithm;
mod claims;
mod issuer;
mod keys;
mod token;
mod validator;

#[cfg(test)]
mod refusals;
#[cfg(test)]
mod tests;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{Claims, REGISTERED_CLAIMS, RegisteredClaims, Seconds};
pub use issuer::{Expiry, JwtIssuer, RegisteredClaimName, TokenRequest};
pub use keys::{InvalidKey, SigningKey, VerifyingKey};
pub use token::MAX_TOKEN_BYTES;
pub use validator::Jwt;
