//! One test per refusal of [`Jwt`], in mosaik's order, and a test that a
//! token failing several checks is refused for the first of them.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;

use super::{
    tests::{PEER, T0, hs256, reason, request, signed_with_claims, token, validator},
    *,
};
use crate::tickets::Expiration;

fn refused(jwt: &Jwt, token: &str) -> String {
    reason(jwt.validate_at(token.as_bytes(), PEER, T0))
}

fn accepted(jwt: &Jwt, token: &str) -> bool {
    jwt.validate_at(token.as_bytes(), PEER, T0).is_ok()
}

#[test]
fn a_good_token_passes() {
    assert_eq!(
        validator().validate_at(token(&request()).as_bytes(), PEER, T0),
        Ok(Expiration::at_unix_seconds((T0 + 3600) as i64).unwrap())
    );
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let huge = vec![b'a'; MAX_TOKEN_BYTES + 1];
    assert_eq!(
        reason(validator().validate_at(&huge, PEER, T0)),
        format!("token longer than {MAX_TOKEN_BYTES} bytes")
    );
}

#[test]
fn non_utf8_tokens_are_refused() {
    assert_eq!(
        reason(validator().validate_at(b"\xff.a.b", PEER, T0)),
        "token is not UTF-8"
    );
}

#[test]
fn tokens_need_three_parts() {
    assert_eq!(
        refused(&validator(), "abc.def"),
        "token is not three dot-separated parts"
    );
    assert_eq!(
        refused(&validator(), ""),
        "token is not three dot-separated parts"
    );
}

#[test]
fn the_header_must_be_unpadded_base64url_json_with_a_string_alg() {
    let good = token(&request());
    let (header, rest) = good.split_once('.').unwrap();
    let v = validator();
    assert_eq!(refused(&v, "!!.a.b"), "header is not base64url");
    assert_eq!(
        refused(&v, &format!("{header}=.{rest}")),
        "header is not base64url"
    );
    let not_json = URL_SAFE_NO_PAD.encode("{");
    assert_eq!(refused(&v, &format!("{not_json}.{rest}")), "header is not JSON");
    for header in [r#"{"alg":1}"#, r#"{"typ":"JWT"}"#, r#"["HS256"]"#] {
        let header = URL_SAFE_NO_PAD.encode(header);
        assert_eq!(
            refused(&v, &format!("{header}.{rest}")),
            "header has no string alg"
        );
    }
}

#[test]
fn the_alg_must_name_a_configured_key() {
    let rest = token(&request()).split_once('.').unwrap().1.to_owned();
    for alg in ["none", "HS384", "hs256", "RS256", "ES256K"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        assert_eq!(
            refused(&validator(), &format!("{header}.{rest}")),
            format!("no key for algorithm {alg:?}")
        );
    }
}

#[test]
fn the_signature_must_verify_with_a_key_of_that_alg() {
    let good = token(&request());
    let v = validator();
    assert_eq!(
        refused(&v, &format!("{}x", &good[..good.len() - 1])),
        "bad signature"
    );
    assert_eq!(refused(&v, &format!("{good}=")), "bad signature");
    assert_eq!(refused(&v, &format!("{good}.x")), "bad signature");
    let (signed, _) = good.rsplit_once('.').unwrap();
    assert_eq!(refused(&v, &format!("{signed}.")), "bad signature");
    let other = Jwt::with_key(
        SigningKey::new(Algorithm::Hs256, &[1; 32])
            .unwrap()
            .verifying_key(),
    );
    assert_eq!(refused(&other, &good), "bad signature");
    // A key of another algorithm is not tried, even with the same bytes.
    let eddsa = SigningKey::new(Algorithm::EdDsa, &[0xab; 32])
        .unwrap()
        .verifying_key();
    assert_eq!(
        refused(&Jwt::with_key(eddsa).add_key(other.keys()[0].clone()), &good),
        "bad signature"
    );
}

#[test]
fn the_claims_must_parse_as_rust_jwt_claims() {
    for bad in [
        r#"{"sub":1}"#,
        r#"{"exp":1.5}"#,
        r#"{"iat":-1}"#,
        r#"{"aud":["a"]}"#,
        r#"{"jti":7}"#,
        r#"{"nbf":18446744073709551616}"#,
        r#"[]"#,
    ] {
        assert_eq!(
            refused(&validator(), &signed_with_claims(bad)),
            "claims are not base64url JSON of JWT claims",
            "{bad}"
        );
    }
}

#[test]
fn the_issuer_must_be_allowed_when_issuers_are_set() {
    let v = validator().allow_issuer("my-app");
    assert_eq!(refused(&v, &token(&request())), "issuer not allowed");
    let issued = JwtIssuer::new(hs256())
        .with_issuer("my-app")
        .issue_at(&request(), T0)
        .unwrap();
    assert!(accepted(&v, &issued));
    assert!(accepted(&validator(), &issued), "no allow-list, any issuer");
}

#[test]
fn the_subject_must_be_the_bearer_or_the_required_subject() {
    let someone = token(&TokenRequest {
        subject: "someone".into(),
        ..request()
    });
    assert_eq!(refused(&validator(), &someone), "subject does not match");
    assert!(accepted(&validator().require_subject("someone"), &someone));
    let upper = token(&TokenRequest::for_subject(PEER.to_uppercase()));
    assert_eq!(refused(&validator(), &upper), "subject does not match");
}

#[test]
fn not_before_must_have_passed() {
    let early = token(&TokenRequest {
        not_before: Some(T0 + 1),
        ..request()
    });
    assert_eq!(refused(&validator(), &early), "not valid yet (nbf)");
    assert!(validator().validate_at(early.as_bytes(), PEER, T0 + 1).is_ok());
}

#[test]
fn exp_is_required_unless_non_expiring_tokens_are_allowed() {
    let forever = token(&TokenRequest {
        expires: Expiry::Never,
        ..request()
    });
    assert_eq!(
        refused(&validator(), &forever),
        "no exp and non-expiring tokens are not allowed"
    );
    let allowing = validator().allow_non_expiring();
    assert_eq!(
        allowing.validate_at(forever.as_bytes(), PEER, T0),
        Ok(Expiration::Never)
    );
    // An explicit null is an absent claim, as in rust-jwt.
    let null = signed_with_claims(&format!(r#"{{"sub":"{PEER}","exp":null}}"#));
    assert_eq!(
        allowing.validate_at(null.as_bytes(), PEER, T0),
        Ok(Expiration::Never)
    );
}

#[test]
fn an_expired_token_is_refused_from_its_exp_second_on() {
    let good = token(&request());
    assert!(validator().validate_at(good.as_bytes(), PEER, T0 + 3599).is_ok());
    assert_eq!(
        reason(validator().validate_at(good.as_bytes(), PEER, T0 + 3600)),
        "expired"
    );
}

#[test]
fn exp_must_be_within_max_lifetime() {
    let good = token(&request());
    let hour = Duration::from_secs(3600);
    assert!(accepted(&validator().max_lifetime(hour), &good));
    assert_eq!(
        refused(&validator().max_lifetime(hour - Duration::from_secs(1)), &good),
        "expires later than max_lifetime allows"
    );
}

#[test]
fn max_age_requires_a_recent_iat() {
    let no_iat = signed_with_claims(&format!(r#"{{"sub":"{PEER}","exp":{}}}"#, T0 + 10));
    assert!(accepted(&validator(), &no_iat));
    let aged = validator().max_age(Duration::from_secs(9));
    assert_eq!(refused(&aged, &no_iat), "no iat but max_age is set");
    let good = token(&request());
    assert!(aged.validate_at(good.as_bytes(), PEER, T0 + 9).is_ok());
    assert_eq!(
        reason(aged.validate_at(good.as_bytes(), PEER, T0 + 10)),
        "older than max_age"
    );
    assert!(
        aged.validate_at(good.as_bytes(), PEER, T0 - 100).is_ok(),
        "a future iat passes"
    );
}

#[test]
fn the_audience_must_be_allowed_when_audiences_are_set() {
    let to_x = token(&TokenRequest {
        audience: Some("x".into()),
        ..request()
    });
    assert!(accepted(
        &validator().allow_audience("y").allow_audience("x"),
        &to_x
    ));
    assert_eq!(
        refused(&validator().allow_audience("y"), &to_x),
        "audience not allowed"
    );
    assert_eq!(
        refused(&validator().allow_audience("x"), &token(&request())),
        "audience not allowed"
    );
}

#[test]
fn required_claims_must_be_equal_json() {
    let with_claims = token(&TokenRequest {
        claims: [
            ("role".to_owned(), json!(1)),
            ("o".to_owned(), json!({"b": [1], "a": null})),
        ]
        .into(),
        ..request()
    });
    let v = validator()
        .require_claim("role", json!(1))
        .require_claim("o", json!({"a": null, "b": [1]}));
    assert!(accepted(&v, &with_claims));
    assert_eq!(
        refused(&validator().require_claim("role", json!(1.0)), &with_claims),
        "claim \"role\" does not match"
    );
    assert_eq!(
        refused(&validator().require_claim("tier", json!(1)), &with_claims),
        "claim \"tier\" does not match"
    );
}

#[test]
fn exp_must_fit_a_timestamp() {
    for exp in [u64::MAX, 1 << 63] {
        let far = signed_with_claims(&format!(r#"{{"sub":"{PEER}","exp":{exp}}}"#));
        assert_eq!(refused(&validator(), &far), "exp is beyond representable time");
    }
}

#[test]
fn a_token_failing_several_checks_is_refused_for_the_first() {
    // Wrong issuer, subject, audience and claim, and expired: mosaik checks
    // the issuer first.
    let bad = JwtIssuer::new(hs256())
        .with_issuer("other")
        .issue_at(
            &TokenRequest {
                subject: "someone".into(),
                audience: Some("z".into()),
                ..request()
            },
            T0,
        )
        .unwrap();
    let strict = validator()
        .allow_issuer("my-app")
        .allow_audience("x")
        .require_claim("role", json!("writer"));
    let at = |now| reason(strict.validate_at(bad.as_bytes(), PEER, now));
    assert_eq!(at(T0 + 7200), "issuer not allowed");
    let strict = strict.allow_issuer("other");
    let at = |now| reason(strict.validate_at(bad.as_bytes(), PEER, now));
    assert_eq!(at(T0 + 7200), "subject does not match");
    let strict = strict.require_subject("someone");
    let at = |now| reason(strict.validate_at(bad.as_bytes(), PEER, now));
    assert_eq!(at(T0 + 7200), "expired");
    assert_eq!(at(T0), "audience not allowed");
    let strict = strict.allow_audience("z");
    assert_eq!(
        reason(strict.validate_at(bad.as_bytes(), PEER, T0)),
        "claim \"role\" does not match"
    );
    // A bad signature is found before any claim is read.
    let tampered = format!("{}A", &bad[..bad.len() - 1]);
    assert_eq!(
        reason(strict.validate_at(tampered.as_bytes(), PEER, T0)),
        "bad signature"
    );
}
