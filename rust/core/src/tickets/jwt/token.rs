//! The compact JWS form: `b64url(header) "." b64url(claims) "." b64url(sig)`,
//! base64url without padding.
//!
//! The issuer writes it with mosaik's exact header string; the validator
//! splits it as mosaik does (`splitn(3, '.')`) after bounding its size, and
//! reads only `alg` from the header. Padding (`=`) is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use super::Algorithm;

/// Tokens larger than this are refused before any parsing. mosaik's own
/// are 300–600 bytes; the bound keeps a hostile entry cheap to reject.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The header mosaik's `JwtTicketBuilder` writes, byte for byte.
pub fn header_json(algorithm: Algorithm) -> String {
    format!(r#"{{"alg":"{}","typ":"JWT"}}"#, algorithm.name())
}

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The three textual parts of a compact token, undecoded.
pub struct Parts<'a> {
    pub header: &'a str,
    pub claims: &'a str,
    pub signature: &'a str,
}

impl<'a> Parts<'a> {
    /// Splits like mosaik: at the first two dots (a third dot stays in the
    /// signature part, which then fails to decode).
    pub fn split(token: &'a str) -> Option<Self> {
        let mut parts = token.splitn(3, '.');
        Some(Self {
            header: parts.next()?,
            claims: parts.next()?,
            signature: parts.next()?,
        })
    }

    /// The signed bytes: `header "." claims` as they appear in the token.
    pub fn signing_input(&self) -> Vec<u8> {
        [self.header.as_bytes(), b".", self.claims.as_bytes()].concat()
    }
}

/// The header's `alg`, if the header is base64url JSON with a string `alg`
/// (every other field, `typ` included, is ignored as mosaik ignores it).
pub fn header_alg(header_b64: &str) -> Result<String, &'static str> {
    let bytes = decode(header_b64).ok_or("header is not base64url")?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| "header is not JSON")?;
    header
        .get("alg")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or("header has no string alg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_standard_alphabet_are_refused() {
        assert_eq!(decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(decode("YQ=="), None);
        assert_eq!(decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode("+/8"), None);
        // Non-canonical trailing bits.
        assert_eq!(decode("YR"), None);
    }

    #[test]
    fn header_is_mosaiks_string() {
        assert_eq!(header_json(Algorithm::EdDsa), r#"{"alg":"EdDSA","typ":"JWT"}"#);
        assert_eq!(
            header_alg(&encode(br#"{"typ":"x","alg":"HS256"}"#)),
            Ok("HS256".into())
        );
        assert!(header_alg(&encode(br#"{"alg":1}"#)).is_err());
        assert!(header_alg(&encode(b"[]")).is_err());
    }
}
