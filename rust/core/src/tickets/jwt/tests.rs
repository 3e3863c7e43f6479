//! The spec's worked vectors and each refusal of [`Jwt`], in mosaik's order.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;

use super::*;
use crate::{
    discovery::Ticket,
    tickets::{Expiration, TicketValidator, jwt_class, ticket_id},
};

const VECTOR_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJteS1hcHAiLCJzdWIiOiIwMDAxMDIwMzA0MDUwNjA3MDgwOTBhMGIwYzBkMGUwZjEwMTExMjEzMTQxNTE2MTcxODE5MWExYjFjMWQxZTFmIiwiZXhwIjoxNzAwMDAzNjAwLCJpYXQiOjE3MDAwMDAwMDB9.NEJ5_w2Am_avUcBvht53qfYH6N0U7OhP5TkCbp2k6kI";
const PEER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const T0: u64 = 1_700_000_000;

fn hs256() -> SigningKey {
    SigningKey::new(Algorithm::Hs256, &[0xab; 32]).unwrap()
}

fn validator() -> Jwt {
    Jwt::with_key(hs256().verifying_key())
}

fn request() -> TokenRequest {
    TokenRequest {
        expires: Expiry::At(T0 + 3600),
        issued_at: Some(T0),
        ..TokenRequest::for_subject(PEER)
    }
}

fn token(request: &TokenRequest) -> String {
    JwtIssuer::new(hs256()).issue_at(request, T0).unwrap()
}

fn reason(result: Result<Expiration, crate::tickets::InvalidTicket>) -> String {
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
    let id = ticket_id(&ticket).to_hex();
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
fn signed_with_claims(claims_json: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims_json);
    let sig = hs256().sign(format!("{header}.{body}").as_bytes());
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn each_refusal_in_mosaiks_order() {
    let v = validator();
    let check = |jwt: &Jwt, token: &str| reason(jwt.validate_at(token.as_bytes(), PEER, T0));
    let good = token(&request());
    assert!(v.validate_at(good.as_bytes(), PEER, T0).is_ok());

    assert!(reason(v.validate_at(&vec![b'a'; MAX_TOKEN_BYTES + 1], PEER, T0)).starts_with("token longer"));
    assert_eq!(reason(v.validate_at(b"\xff.a.b", PEER, T0)), "token is not UTF-8");
    assert_eq!(check(&v, "abc.def"), "token is not three dot-separated parts");
    assert_eq!(check(&v, "!!.a.b"), "header is not base64url");
    assert_eq!(
        check(&v, &format!("{}.a.b", URL_SAFE_NO_PAD.encode("{"))),
        "header is not JSON"
    );
    let (header, rest) = good.split_once('.').unwrap();
    assert_eq!(check(&v, &format!("{header}=.{rest}")), "header is not base64url");
    for alg in ["none", "HS384", "hs256", "RS256"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        assert_eq!(
            check(&v, &format!("{header}.{rest}")),
            format!("no key for algorithm {alg:?}")
        );
    }
    let tampered = format!("{}x", &good[..good.len() - 1]);
    assert_eq!(check(&v, &tampered), "bad signature");
    assert_eq!(check(&v, &format!("{good}=")), "bad signature");
    assert_eq!(check(&v, &format!("{good}.x")), "bad signature");
    assert_eq!(
        check(&v, &signed_with_claims(r#"{"sub":1}"#)),
        "claims are not base64url JSON of JWT claims"
    );
    for bad in [
        r#"{"exp":1.5}"#,
        r#"{"iat":-1}"#,
        r#"{"aud":["a"]}"#,
        r#"{"jti":7}"#,
    ] {
        assert_eq!(
            check(&v, &signed_with_claims(bad)),
            "claims are not base64url JSON of JWT claims",
            "{bad}"
        );
    }

    assert_eq!(
        check(&v.clone().allow_issuer("my-app"), &good),
        "issuer not allowed"
    );
    let other_peer = token(&TokenRequest {
        subject: "someone".into(),
        ..request()
    });
    assert_eq!(check(&v, &other_peer), "subject does not match");
    assert!(
        v.clone()
            .require_subject("someone")
            .validate_at(other_peer.as_bytes(), PEER, T0)
            .is_ok()
    );
    let early = token(&TokenRequest {
        not_before: Some(T0 + 1),
        ..request()
    });
    assert_eq!(check(&v, &early), "not valid yet (nbf)");
    assert!(v.validate_at(early.as_bytes(), PEER, T0 + 1).is_ok());
    let forever = token(&TokenRequest {
        expires: Expiry::Never,
        ..request()
    });
    assert_eq!(
        check(&v, &forever),
        "no exp and non-expiring tokens are not allowed"
    );
    assert_eq!(
        v.clone()
            .allow_non_expiring()
            .validate_at(forever.as_bytes(), PEER, T0),
        Ok(Expiration::Never)
    );
    assert_eq!(reason(v.validate_at(good.as_bytes(), PEER, T0 + 3600)), "expired");
    let hour = Duration::from_secs(3600);
    assert_eq!(
        check(&v.clone().max_lifetime(hour - Duration::from_secs(1)), &good),
        "expires later than max_lifetime allows"
    );
    assert!(
        v.clone()
            .max_lifetime(hour)
            .validate_at(good.as_bytes(), PEER, T0)
            .is_ok()
    );
    let no_iat = signed_with_claims(&format!(r#"{{"sub":"{PEER}","exp":{}}}"#, T0 + 10));
    assert!(v.validate_at(no_iat.as_bytes(), PEER, T0).is_ok());
    assert_eq!(
        check(&v.clone().max_age(hour), &no_iat),
        "no iat but max_age is set"
    );
    let aged = v.clone().max_age(Duration::from_secs(9));
    assert_eq!(
        reason(aged.validate_at(good.as_bytes(), PEER, T0 + 10)),
        "older than max_age"
    );
    assert!(
        aged.validate_at(good.as_bytes(), PEER, T0 - 100).is_ok(),
        "a future iat passes"
    );
    assert_eq!(
        check(&v.clone().allow_audience("x"), &good),
        "audience not allowed"
    );
    let with_claims = token(&TokenRequest {
        audience: Some("x".into()),
        claims: [("role".to_owned(), json!(1))].into(),
        ..request()
    });
    assert!(
        v.clone()
            .allow_audience("x")
            .require_claim("role", json!(1))
            .validate_at(with_claims.as_bytes(), PEER, T0)
            .is_ok()
    );
    assert_eq!(
        check(&v.clone().require_claim("role", json!(1.0)), &with_claims),
        "claim \"role\" does not match"
    );
    assert_eq!(
        check(&v.clone().require_claim("tier", json!(1)), &with_claims),
        "claim \"tier\" does not match"
    );
    let far = signed_with_claims(&format!(r#"{{"sub":"{PEER}","exp":{}}}"#, u64::MAX));
    assert_eq!(check(&v, &far), "exp is beyond representable time");
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
