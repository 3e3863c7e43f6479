//! A token's claims, parsed and written exactly as rust-jwt 0.16's
//! `jwt::Claims` (what mosaik 0.3.13 uses on both sides).
//!
//! The registered claims are flattened first, in rust-jwt's field order
//! `iss, sub, aud, exp, nbf, iat, jti`, each only when present; the private
//! claims follow in key order (a `BTreeMap`, so independent of serde_json's
//! `preserve_order`). Parsing goes through the same serde shape, so it
//! accepts and refuses what mosaik does: `iss/sub/aud/jti` must be strings
//! (an `aud` array fails), `exp/nbf/iat` non-negative integers within u64,
//! and an explicit `null` counts as absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The names rust-jwt routes to [`RegisteredClaims`]; a private claim may
/// not use them.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Whole seconds since the Unix epoch.
pub type Seconds = u64;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisteredClaims {
    #[serde(rename = "iss", skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(rename = "sub", skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "aud", skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(rename = "exp", skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Seconds>,
    #[serde(rename = "nbf", skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Seconds>,
    #[serde(rename = "iat", skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Seconds>,
    #[serde(rename = "jti", skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(flatten)]
    pub registered: RegisteredClaims,
    #[serde(flatten)]
    pub private: BTreeMap<String, Value>,
}

impl Claims {
    /// The compact JSON text a token carries (before base64url).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("claims of strings, integers and JSON values serialize")
    }

    /// Parses a token's decoded claims as rust-jwt does.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn registered_claims_come_first_in_rust_jwts_order_then_private_in_key_order() {
        let mut claims = Claims {
            registered: RegisteredClaims {
                issuer: Some("i".into()),
                subject: Some("s".into()),
                audience: Some("a".into()),
                expiration: Some(3),
                not_before: Some(1),
                issued_at: Some(2),
                token_id: Some("j".into()),
            },
            private: BTreeMap::new(),
        };
        claims
            .private
            .insert("zeta".into(), json!({"b": 1, "a": [1.5, null]}));
        claims.private.insert("alpha".into(), json!(true));
        assert_eq!(
            claims.to_json(),
            r#"{"iss":"i","sub":"s","aud":"a","exp":3,"nbf":1,"iat":2,"jti":"j","alpha":true,"zeta":{"a":[1.5,null],"b":1}}"#
        );
        assert_eq!(Claims::from_json(claims.to_json().as_bytes()).unwrap(), claims);
    }

    #[test]
    fn parsing_refuses_what_rust_jwt_refuses() {
        for bad in [
            r#"{"exp":1.0}"#,
            r#"{"exp":-1}"#,
            r#"{"iat":18446744073709551616}"#,
            r#"{"nbf":"1"}"#,
            r#"{"iss":1}"#,
            r#"{"sub":true}"#,
            r#"{"aud":["a"]}"#,
            r#"{"jti":{}}"#,
            r#"[]"#,
            r#"{"sub":"a"} x"#,
        ] {
            assert!(Claims::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        let nulls = Claims::from_json(br#"{"exp":null,"sub":"s","x":null}"#).unwrap();
        assert_eq!(nulls.registered.expiration, None);
        assert_eq!(nulls.private["x"], Value::Null);
        let max = Claims::from_json(br#"{"exp":18446744073709551615}"#).unwrap();
        assert_eq!(max.registered.expiration, Some(u64::MAX));
    }
}
