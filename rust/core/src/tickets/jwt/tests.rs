//! The spec's worked vectors and each refusal of [`Jwt`], in mosaik's order.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;

use super::*;
use crate::{
    discovery::Ticket,
    tickets::{Expiration, TicketValidator, jwt_class},
};

const VECTOR_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJteS1hcHAiLCJzdWIiOiIwMDAxMDIwMzA0MDUwNjA3MDgwOTBhMGIwYzBkMGUwZjEwMTExMjEzMTQxNTE2MTcxODE5MWExYjFjMWQxZTFmIiwiZXhwIjoxNzAwMDAzNjAwLCJpYXQiOjE3MDAwMDAwMDB9.NEJ5_w2Am_avUcBvht53qfYH6N0U7OhP5TkCbp2k6kI";
pub(super) const PEER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub(super) const T0: u64 = 1_700_000_000;

pub(super) fn hs256() -> SigningKey {
    SigningKey::new(Algorithm::Hs256, &[0xab; 32]).unwrap()
}

pub(super) fn validator() -> Jwt {
    Jwt::with_key(hs256().verifying_key())
}

pub(super) fn request() -> TokenRequest {
    TokenRequest {
        expires: Expiry::At(T0 + 3600),
        issued_at: Some(T0),
        ..TokenRequest::for_subject(PEER)
    }
}

pub(super) fn token(request: &TokenRequest) -> String {
    JwtIssuer::new(hs256()).issue_at(request, T0).unwrap()
}

pub(super) fn reason(result: Result<Expiration, crate::tickets::InvalidTicket>) -> String {
    result.expect_err("refused").0.into_owned()
}

#[test]
fn the_worked_vector_is_reproduced_byte_for_byte() {
    let issued = JwtIssuer::new(hs256())
        .with_issuer("my-app")
        .issue_at(&request(), T0)
        .unwrap();
    assert_eq!(issued, VECTOR_TOKEN);
    let ticket = Ticket {
        class: jwt_class(),
        data: issued.into_bytes(),
    };
    let id = ticket.id().to_hex();
    assert!(id.starts_with("5f70c8f5") && id.ends_with("1ad21d81"), "{id}");
    let expiry = validator()
        .allow_issuer("my-app")
        .validate_at(VECTOR_TOKEN.as_bytes(), PEER, T0 + 1);
    assert_eq!(expiry, Ok(Expiration::at_unix_seconds(1_700_003_600).unwrap()));
}

#[test]
fn the_worked_signature_is_mosaiks() {
    let sig = validator().allow_issuer("my-app").signature().to_hex();
    assert!(sig.starts_with("c0203d61") && sig.ends_with("ae912252"), "{sig}");
}

#[test]
fn the_signature_changes_with_every_option() {
    let other = SigningKey::new(Algorithm::Hs256, &[1; 32])
        .unwrap()
        .verifying_key();
    let variants = [
        validator(),
        validator().add_key(other.clone()),
        Jwt::with_key(other).add_key(hs256().verifying_key()),
        validator().allow_non_expiring(),
        validator().allow_issuer("a"),
        validator().allow_audience("a"),
        validator().require_subject("a"),
        validator().max_lifetime(Duration::from_secs(5)),
        validator().max_age(Duration::from_secs(5)),
        validator().require_claim("role", json!("writer")),
        validator().require_claim("role", json!(1)),
        validator().require_claim("role", json!(1.0)),
    ];
    let signatures: std::collections::HashSet<_> = variants.iter().map(|v| v.signature()).collect();
    assert_eq!(signatures.len(), variants.len());
    // mosaik hashes an unset max_lifetime as zero seconds.
    assert_eq!(
        validator().signature(),
        validator().max_lifetime(Duration::ZERO).signature()
    );
}

#[test]
fn every_algorithm_round_trips_and_rotation_tries_each_key() {
    for alg in Algorithm::ALL {
        let (old, new) = (SigningKey::generate(alg), SigningKey::generate(alg));
        let jwt = Jwt::with_key(old.verifying_key()).add_key(new.verifying_key());
        for key in [&old, &new] {
            let token = JwtIssuer::new(key.clone()).issue_at(&request(), T0).unwrap();
            assert!(jwt.validate_at(token.as_bytes(), PEER, T0).is_ok(), "{alg}");
        }
        let stranger = JwtIssuer::new(SigningKey::generate(alg))
            .issue_at(&request(), T0)
            .unwrap();
        assert_eq!(
            reason(jwt.validate_at(stranger.as_bytes(), PEER, T0)),
            "bad signature"
        );
    }
}

/// A token signed with the validator's key carrying arbitrary claims JSON.
pub(super) fn signed_with_claims(claims_json: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims_json);
    let sig = hs256().sign(format!("{header}.{body}").as_bytes());
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn registered_names_are_not_private_claims() {
    let request = TokenRequest {
        claims: [("exp".to_owned(), json!(1))].into(),
        ..request()
    };
    assert_eq!(
        JwtIssuer::new(hs256()).issue_at(&request, T0),
        Err(RegisteredClaimName("exp".into()))
    );
}

#[test]
fn garbage_never_panics() {
    use rand::{Rng, RngCore};
    let v = validator().allow_non_expiring();
    let good = token(&request());
    let mut rng = rand::rng();
    for round in 0..3000 {
        let mut bytes = good.clone().into_bytes();
        match round % 3 {
            0 => {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
            1 => {
                let at = rng.random_range(0..bytes.len());
                bytes.truncate(at);
            }
            _ => {
                bytes = vec![0; rng.random_range(0..200)];
                rng.fill_bytes(&mut bytes);
            }
        }
        let _ = v.validate_at(&bytes, PEER, T0);
    }
    for garbage in ["..", "...", "a..", ".a.", "e30.e30.", "e30.e30.e30"] {
        assert!(v.validate_at(garbage.as_bytes(), PEER, T0).is_err(), "{garbage}");
    }
}

#[test]
fn expires_in_counts_from_the_precise_time_of_issue() {
    let request = TokenRequest {
        expires: Expiry::In(Duration::from_millis(1500)),
        ..TokenRequest::for_subject(PEER)
    };
    let before = chrono::Utc::now().timestamp();
    let token = JwtIssuer::new(hs256()).issue(&request).unwrap();
    let now = chrono::Utc::now().timestamp().cast_unsigned();
    let exp = validator()
        .validate_at(token.as_bytes(), PEER, now)
        .unwrap()
        .unix_seconds()
        .unwrap();
    assert!((before + 1..=before + 3).contains(&exp), "{exp} vs {before}");
}
