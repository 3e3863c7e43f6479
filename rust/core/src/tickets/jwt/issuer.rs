//! `JwtIssuer`: mints compact tokens byte for byte as mosaik's
//! `JwtTicketBuilder` does.
//!
//! The header is mosaik's fixed string `{"alg":"<ALG>","typ":"JWT"}`; the
//! claims are rust-jwt's ([`super::Claims`]), with `iat` defaulting to the
//! time of issue and no `exp` for a token that never expires. The subject
//! is normally the bearer's peer id in lowercase hex
//! ([`TokenRequest::for_peer`]). HMAC, Ed25519 and ES256/ES384 (RFC 6979)
//! are deterministic: the same request at the same second gives the same
//! token as mosaik. ES512 signs with a random nonce, in mosaik too.

use std::{borrow::Cow, collections::BTreeMap, time::Duration};

use chrono::Utc;
use iroh::EndpointId;
use serde_json::Value;

use super::{
    Algorithm, Claims, REGISTERED_CLAIMS, RegisteredClaims, Seconds, SigningKey,
    token::{self, Parts},
};

/// When an issued token expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    /// No `exp`: only validators that allow non-expiring tokens take it.
    #[default]
    Never,
    /// `exp` at this many seconds since the epoch.
    At(Seconds),
    /// `exp` this long after the time of issue.
    In(Duration),
}

/// What one token says besides its issuer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenRequest {
    /// `sub`: the bearer's peer id in lowercase hex unless a validator
    /// requires another subject.
    pub subject: String,
    pub expires: Expiry,
    pub audience: Option<String>,
    pub not_before: Option<Seconds>,
    /// `iat`; the time of issue when `None`.
    pub issued_at: Option<Seconds>,
    pub token_id: Option<String>,
    /// Private claims; the registered names are refused here.
    pub claims: BTreeMap<String, Value>,
}

impl TokenRequest {
    /// A token for the peer `bearer` (subject = its id in lowercase hex).
    pub fn for_peer(bearer: &EndpointId) -> Self {
        Self::for_subject(hex::encode(bearer.as_bytes()))
    }

    pub fn for_subject(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            ..Self::default()
        }
    }
}

/// A private claim under a registered name (`iss`, `exp`, ...): those
/// have their own fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("claim {0:?} is a registered claim; set it through its own field")]
pub struct RegisteredClaimName(pub String);

/// Signs tokens with one key, optionally as a named issuer (`iss`).
#[derive(Clone, Debug)]
pub struct JwtIssuer {
    key: SigningKey,
    issuer: Option<String>,
}

impl JwtIssuer {
    pub fn new(key: SigningKey) -> Self {
        Self { key, issuer: None }
    }

    /// Sets `iss` on every token.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// A token for `request`, issued now. As mosaik's `expires_in`
    /// (0.3.17+), an `Expiry::In` counts from the precise current time and
    /// `exp` keeps the whole seconds of the sum.
    pub fn issue(&self, request: &TokenRequest) -> Result<String, RegisteredClaimName> {
        let now = Utc::now();
        let mut request = Cow::Borrowed(request);
        if let Expiry::In(after) = request.expires {
            let at = chrono::Duration::from_std(after)
                .ok()
                .and_then(|after| now.checked_add_signed(after))
                .map_or(Seconds::MAX, |at| at.timestamp().cast_unsigned());
            request.to_mut().expires = Expiry::At(at);
        }
        self.issue_at(&request, now.timestamp().cast_unsigned())
    }

    /// A token for `request` as if issued at `now` (seconds since the epoch).
    pub fn issue_at(&self, request: &TokenRequest, now: Seconds) -> Result<String, RegisteredClaimName> {
        if let Some(name) = request
            .claims
            .keys()
            .find(|name| REGISTERED_CLAIMS.contains(&name.as_str()))
        {
            return Err(RegisteredClaimName(name.clone()));
        }
        let claims = Claims {
            registered: RegisteredClaims {
                issuer: self.issuer.clone(),
                subject: Some(request.subject.clone()),
                audience: request.audience.clone(),
                expiration: match request.expires {
                    Expiry::Never => None,
                    Expiry::At(at) => Some(at),
                    Expiry::In(after) => Some(now.saturating_add(after.as_secs())),
                },
                not_before: request.not_before,
                issued_at: Some(request.issued_at.unwrap_or(now)),
                token_id: request.token_id.clone(),
            },
            private: request.claims.clone(),
        };
        Ok(self.sign(&claims))
    }

    /// The compact token carrying exactly `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = token::encode(token::header_json(self.algorithm()).as_bytes());
        let body = token::encode(claims.to_json().as_bytes());
        let parts = Parts {
            header: &header,
            claims: &body,
            signature: "",
        };
        let signature = token::encode(&self.key.sign(&parts.signing_input()));
        format!("{header}.{body}.{signature}")
    }
}
