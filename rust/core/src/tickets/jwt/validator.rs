//! `Jwt`: mosaik's JWT ticket validator, its checks in mosaik's order and
//! its exact signature.
//!
//! A token passes when its `alg` names at least one configured key, one of
//! those keys verifies it (several keys allow rotation), and its claims
//! satisfy the configured issuers, subject (by default the bearer's peer id
//! in lowercase hex), times, audiences and custom claims (collections spec
//! B.2). The reason for a refusal is only for logs.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use iroh::EndpointId;
use serde_json::Value;

use super::{
    Claims, VerifyingKey,
    token::{self, MAX_TOKEN_BYTES, Parts},
};
use crate::{
    discovery::PeerEntry,
    primitives::Digest,
    tickets::{Expiration, InvalidTicket, TicketValidator, jwt_class},
};

/// A JWT ticket validator, configured with builder methods as mosaik's.
#[derive(Clone, Debug)]
pub struct Jwt {
    keys: Vec<VerifyingKey>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    subject: Option<String>,
    allow_non_expiring: bool,
    max_lifetime: Option<Duration>,
    max_age: Option<Duration>,
    claims: BTreeMap<String, Value>,
}

fn refuse<T>(reason: impl Into<std::borrow::Cow<'static, str>>) -> Result<T, InvalidTicket> {
    Err(InvalidTicket::new(reason))
}

impl Jwt {
    /// A validator accepting tokens signed with `key` (mosaik's `with_key`).
    pub fn with_key(key: VerifyingKey) -> Self {
        Self {
            keys: vec![key],
            issuers: Vec::new(),
            audiences: Vec::new(),
            subject: None,
            allow_non_expiring: false,
            max_lifetime: None,
            max_age: None,
            claims: BTreeMap::new(),
        }
    }

    /// Accepts tokens signed with `key` too; a token is checked against
    /// every key whose algorithm is its `alg`.
    pub fn add_key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Requires `iss` to be one of the issuers allowed so far.
    pub fn allow_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Requires `aud` to be one of the audiences allowed so far.
    pub fn allow_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Requires `sub` to be `subject` instead of the bearer's peer id.
    pub fn require_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Requires the private claim `name` to equal `value` (JSON equality:
    /// `1` and `1.0` differ).
    pub fn require_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    /// Accepts tokens without `exp`, which then never expire.
    pub fn allow_non_expiring(mut self) -> Self {
        self.allow_non_expiring = true;
        self
    }

    /// Refuses tokens whose `exp` is more than `max` from now.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// Requires `iat` and refuses tokens issued more than `max` ago.
    pub fn max_age(mut self, max: Duration) -> Self {
        self.max_age = Some(max);
        self
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Checks `token` for the peer `bearer` now.
    pub fn validate_for(&self, token: &[u8], bearer: &EndpointId) -> Result<Expiration, InvalidTicket> {
        let now = Utc::now().timestamp().cast_unsigned();
        self.validate_at(token, &hex::encode(bearer.as_bytes()), now)
    }

    /// Checks `token` for the peer whose id is `bearer_hex` (lowercase) at
    /// `now` (seconds since the epoch), in mosaik's order.
    pub fn validate_at(&self, token: &[u8], bearer_hex: &str, now: u64) -> Result<Expiration, InvalidTicket> {
        if token.len() > MAX_TOKEN_BYTES {
            return refuse(format!("token longer than {MAX_TOKEN_BYTES} bytes"));
        }
        let expected_subject = self.subject.as_deref().unwrap_or(bearer_hex);
        let Ok(text) = std::str::from_utf8(token) else {
            return refuse("token is not UTF-8");
        };
        let Some(parts) = Parts::split(text) else {
            return refuse("token is not three dot-separated parts");
        };
        let alg = token::header_alg(parts.header).or_else(refuse)?;
        if !self.keys.iter().any(|key| key.algorithm().name() == alg) {
            return refuse(format!("no key for algorithm {alg:?}"));
        }
        let message = parts.signing_input();
        let verified = token::decode(parts.signature).is_some_and(|signature| {
            self.keys
                .iter()
                .filter(|key| key.algorithm().name() == alg)
                .any(|key| key.verify(&message, &signature))
        });
        if !verified {
            return refuse("bad signature");
        }
        let Some(claims) = token::decode(parts.claims).and_then(|json| Claims::from_json(&json).ok()) else {
            return refuse("claims are not base64url JSON of JWT claims");
        };
        let registered = &claims.registered;

        if !self.issuers.is_empty()
            && !registered
                .issuer
                .as_ref()
                .is_some_and(|iss| self.issuers.contains(iss))
        {
            return refuse("issuer not allowed");
        }
        if registered.subject.as_deref() != Some(expected_subject) {
            return refuse("subject does not match");
        }
        if registered.not_before.is_some_and(|nbf| nbf > now) {
            return refuse("not valid yet (nbf)");
        }
        match registered.expiration {
            None if !self.allow_non_expiring => {
                return refuse("no exp and non-expiring tokens are not allowed");
            }
            Some(exp) if exp <= now => return refuse("expired"),
            _ => {}
        }
        if let (Some(max), Some(exp)) = (self.max_lifetime, registered.expiration)
            && exp.saturating_sub(now) > max.as_secs()
        {
            return refuse("expires later than max_lifetime allows");
        }
        if let Some(max) = self.max_age {
            match registered.issued_at {
                None => return refuse("no iat but max_age is set"),
                Some(iat) if now.saturating_sub(iat) > max.as_secs() => return refuse("older than max_age"),
                Some(_) => {}
            }
        }
        if !self.audiences.is_empty()
            && !registered
                .audience
                .as_ref()
                .is_some_and(|aud| self.audiences.contains(aud))
        {
            return refuse("audience not allowed");
        }
        for (name, expected) in &self.claims {
            if claims.private.get(name) != Some(expected) {
                return refuse(format!("claim {name:?} does not match"));
            }
        }
        match registered.expiration {
            None => Ok(Expiration::Never),
            Some(exp) => i64::try_from(exp)
                .ok()
                .and_then(Expiration::at_unix_seconds)
                .ok_or_else(|| InvalidTicket::new("exp is beyond representable time")),
        }
    }
}

impl TicketValidator for Jwt {
    fn class(&self) -> Digest {
        jwt_class()
    }

    /// mosaik's `Jwt::signature`: the class, each key's algorithm name and
    /// fingerprint, then every option, each step a `derive`.
    fn signature(&self) -> Digest {
        let mut sig = self.class();
        for key in &self.keys {
            sig = sig
                .derive(key.algorithm().name().as_bytes())
                .derive(key.fingerprint().as_bytes());
        }
        sig = sig
            .derive(&[u8::from(self.allow_non_expiring)])
            .derive(self.issuers.join(",").as_bytes())
            .derive(self.audiences.join(",").as_bytes())
            .derive(self.subject.as_deref().unwrap_or("").as_bytes())
            .derive(&self.max_lifetime.map_or(0, |d| d.as_secs()).to_le_bytes())
            .derive(&self.max_age.map_or(0, |d| d.as_secs()).to_le_bytes());
        for (name, value) in &self.claims {
            sig = sig.derive(name.as_bytes()).derive(value.to_string().as_bytes());
        }
        sig
    }

    fn validate(&self, ticket: &[u8], peer: &PeerEntry) -> Result<Expiration, InvalidTicket> {
        self.validate_for(ticket, &peer.id())
    }
}
