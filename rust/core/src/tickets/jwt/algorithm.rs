//! The seven JWS algorithms mosaik 0.3.13 really implements, with the key
//! sizes each takes and the names that appear in a token's `alg` header.
//!
//! Keys ([`super::keys`]) check their bytes against these sizes; the
//! validator matches a token's `alg` against [`Algorithm::name`] exactly
//! (case-sensitive, as mosaik compares strings).

use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// HMAC-SHA256 with a 32-byte shared secret.
    Hs256,
    /// HMAC-SHA384 with a 48-byte shared secret.
    Hs384,
    /// HMAC-SHA512 with a 64-byte shared secret.
    Hs512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Self; 7] = [
        Self::Hs256,
        Self::Hs384,
        Self::Hs512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::EdDsa,
    ];

    /// The `alg` header value, as mosaik writes and compares it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The name a verifying key's fingerprint is derived from
    /// (`id!(prefix).derive(key)`); mosaik spells Ed25519's `EdDsa`.
    pub(crate) const fn fingerprint_prefix(self) -> &'static str {
        match self {
            Self::Hs256 => "hs256",
            Self::Hs384 => "hs384",
            Self::Hs512 => "hs512",
            Self::Es256 => "es256",
            Self::Es384 => "es384",
            Self::Es512 => "es512",
            Self::EdDsa => "EdDsa",
        }
    }

    /// A shared secret (HMAC) rather than a key pair.
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::Hs256 | Self::Hs384 | Self::Hs512)
    }

    /// Bytes of a verifying key: the HMAC secret, a compressed SEC1 point
    /// or an Ed25519 public key.
    pub const fn verifying_key_len(self) -> usize {
        match self {
            Self::Hs256 | Self::EdDsa => 32,
            Self::Hs384 => 48,
            Self::Hs512 => 64,
            Self::Es256 => 33,
            Self::Es384 => 49,
            Self::Es512 => 67,
        }
    }

    /// Bytes of a signing key: the HMAC secret, an ECDSA scalar or an
    /// Ed25519 seed.
    pub const fn signing_key_len(self) -> usize {
        match self {
            Self::Hs256 | Self::Es256 | Self::EdDsa => 32,
            Self::Hs384 | Self::Es384 => 48,
            Self::Hs512 => 64,
            Self::Es512 => 66,
        }
    }

    /// The algorithm whose `alg` name is exactly `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `alg` name that is not one of the seven.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown JWT algorithm {0:?} (expected one of HS256, HS384, HS512, ES256, ES384, ES512, EdDSA)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| UnknownAlgorithm(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>(), Ok(alg));
        }
        assert!("hs256".parse::<Algorithm>().is_err());
        assert!("EDDSA".parse::<Algorithm>().is_err());
        assert!("none".parse::<Algorithm>().is_err());
    }
}
