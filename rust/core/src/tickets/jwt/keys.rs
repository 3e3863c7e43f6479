//! Verifying and signing keys for the seven algorithms, their sizes checked
//! up front, and the fingerprints mosaik mixes into a validator's signature.
//!
//! A [`VerifyingKey`] is what a [`super::Jwt`] validator holds (several of
//! them for rotation); a [`SigningKey`] is what a [`super::JwtIssuer`]
//! signs with. Unlike mosaik, bad key bytes are an [`InvalidKey`] error
//! naming the key, never a panic. Signatures are those of the crates mosaik
//! uses: HMAC output, raw `r‖s` ECDSA (DER is refused; P-256 and P-384
//! sign deterministically by RFC 6979, P-521 with a random nonce as p521
//! 0.13 does) and Ed25519.

use std::fmt;

use ed25519_dalek_2 as ed25519;
use hmac::{Hmac, Mac};
use rand::RngCore;

use super::Algorithm;
use crate::primitives::Digest;

/// Key bytes that do not make a key of the stated kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidKey(pub String);

/// A key that checks token signatures: an HMAC secret, a compressed SEC1
/// ECDSA point or an Ed25519 public key.
#[derive(Clone)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    fingerprint: Digest,
    verifier: Verifier,
}

#[derive(Clone)]
enum Verifier {
    Hmac(Vec<u8>),
    Es256(p256::ecdsa::VerifyingKey),
    Es384(p384::ecdsa::VerifyingKey),
    Es512(p521::ecdsa::VerifyingKey),
    EdDsa(ed25519::VerifyingKey),
}

fn check_len(algorithm: Algorithm, what: &str, bytes: &[u8], expected: usize) -> Result<(), InvalidKey> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(InvalidKey(format!(
            "{algorithm} {what} must be {expected} bytes, got {}",
            bytes.len()
        )))
    }
}

impl VerifyingKey {
    /// A verifying key of `algorithm` from its raw bytes (sizes in
    /// [`Algorithm::verifying_key_len`]).
    pub fn new(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, InvalidKey> {
        let what = if algorithm.is_hmac() {
            "secret"
        } else {
            "public key"
        };
        check_len(algorithm, what, bytes, algorithm.verifying_key_len())?;
        let not_a_point = |_| {
            InvalidKey(format!(
                "{algorithm} public key is not a valid compressed SEC1 point"
            ))
        };
        let verifier =
            match algorithm {
                Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => Verifier::Hmac(bytes.to_vec()),
                Algorithm::Es256 => {
                    Verifier::Es256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(not_a_point)?)
                }
                Algorithm::Es384 => {
                    Verifier::Es384(p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(not_a_point)?)
                }
                Algorithm::Es512 => {
                    Verifier::Es512(p521::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(not_a_point)?)
                }
                Algorithm::EdDsa => {
                    let bytes: &[u8; 32] = bytes.try_into().expect("length checked");
                    Verifier::EdDsa(ed25519::VerifyingKey::from_bytes(bytes).map_err(|_| {
                        InvalidKey("EdDSA public key is not a valid Ed25519 point".to_owned())
                    })?)
                }
            };
        let fingerprint = Digest::from_name(algorithm.fingerprint_prefix()).derive(bytes);
        Ok(Self {
            algorithm,
            fingerprint,
            verifier,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `id!(prefix).derive(key bytes)`, mosaik's fingerprint of this key.
    pub fn fingerprint(&self) -> Digest {
        self.fingerprint
    }

    /// Whether `signature` (raw bytes, already base64url-decoded) signs
    /// `message` (`header_b64 "." claims_b64`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ed25519::Verifier as _;
        match &self.verifier {
            Verifier::Hmac(secret) => hmac_verify(self.algorithm, secret, message, signature),
            Verifier::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Verifier::Es384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Verifier::Es512(key) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Verifier::EdDsa(key) => {
                ed25519::Signature::from_slice(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({}, {:?})", self.algorithm, self.fingerprint)
    }
}

/// A key that signs tokens: an HMAC secret, an ECDSA scalar or an Ed25519
/// seed.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    signer: Signer,
}

#[derive(Clone)]
enum Signer {
    Hmac(Vec<u8>),
    Es256(p256::ecdsa::SigningKey),
    Es384(p384::ecdsa::SigningKey),
    Es512(p521::ecdsa::SigningKey),
    EdDsa(ed25519::SigningKey),
}

impl SigningKey {
    /// A signing key of `algorithm` from its raw bytes (sizes in
    /// [`Algorithm::signing_key_len`]).
    pub fn new(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, InvalidKey> {
        let what = if algorithm.is_hmac() {
            "secret"
        } else {
            "private key"
        };
        check_len(algorithm, what, bytes, algorithm.signing_key_len())?;
        let not_a_scalar = |_| {
            InvalidKey(format!(
                "{algorithm} private key is not a valid scalar (zero or not below the curve order)"
            ))
        };
        let signer = match algorithm {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => Signer::Hmac(bytes.to_vec()),
            Algorithm::Es256 => {
                Signer::Es256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(not_a_scalar)?)
            }
            Algorithm::Es384 => {
                Signer::Es384(p384::ecdsa::SigningKey::from_slice(bytes).map_err(not_a_scalar)?)
            }
            Algorithm::Es512 => {
                Signer::Es512(p521::ecdsa::SigningKey::from_slice(bytes).map_err(not_a_scalar)?)
            }
            Algorithm::EdDsa => Signer::EdDsa(ed25519::SigningKey::from_bytes(
                bytes.try_into().expect("length checked"),
            )),
        };
        Ok(Self { algorithm, signer })
    }

    /// A fresh random key (a secret for HMAC, a key pair otherwise).
    pub fn generate(algorithm: Algorithm) -> Self {
        let mut bytes = vec![0u8; algorithm.signing_key_len()];
        loop {
            rand::rng().fill_bytes(&mut bytes);
            if algorithm == Algorithm::Es512 {
                // P-521 scalars have 521 bits; keep the top byte's low bit.
                bytes[0] &= 0x01;
            }
            if let Ok(key) = Self::new(algorithm, &bytes) {
                return key;
            }
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw key: the secret, the ECDSA scalar (big-endian, full width)
    /// or the Ed25519 seed, as [`SigningKey::new`] takes it.
    pub fn secret_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Hmac(secret) => secret.clone(),
            Signer::Es256(key) => key.to_bytes().to_vec(),
            Signer::Es384(key) => key.to_bytes().to_vec(),
            Signer::Es512(key) => key.to_bytes().to_vec(),
            Signer::EdDsa(key) => key.to_bytes().to_vec(),
        }
    }

    /// The public half a validator needs: a compressed SEC1 point or an
    /// Ed25519 public key; `None` for HMAC, whose secret is shared instead.
    pub fn public_key_bytes(&self) -> Option<Vec<u8>> {
        match &self.signer {
            Signer::Hmac(_) => None,
            Signer::Es256(key) => Some(key.verifying_key().to_encoded_point(true).as_bytes().to_vec()),
            Signer::Es384(key) => Some(key.verifying_key().to_encoded_point(true).as_bytes().to_vec()),
            Signer::Es512(key) => Some(
                p521::ecdsa::VerifyingKey::from(key)
                    .to_encoded_point(true)
                    .as_bytes()
                    .to_vec(),
            ),
            Signer::EdDsa(key) => Some(key.verifying_key().to_bytes().to_vec()),
        }
    }

    /// The verifying key that accepts this key's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        let bytes = self.public_key_bytes().unwrap_or_else(|| self.secret_bytes());
        VerifyingKey::new(self.algorithm, &bytes).expect("a signing key's own public key is valid")
    }

    /// The raw signature over `message` (`header_b64 "." claims_b64`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519::Signer as _;
        match &self.signer {
            Signer::Hmac(secret) => hmac_sign(self.algorithm, secret, message),
            Signer::Es256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Signer::Es384(key) => {
                let sig: p384::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Signer::Es512(key) => {
                let sig: p521::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Signer::EdDsa(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.algorithm)
    }
}

fn hmac_sign(algorithm: Algorithm, secret: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Hs384 => run::<Hmac<sha2::Sha384>>(secret, message),
        Algorithm::Hs512 => run::<Hmac<sha2::Sha512>>(secret, message),
        _ => run::<Hmac<sha2::Sha256>>(secret, message),
    }
}

fn hmac_verify(algorithm: Algorithm, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    fn run<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(message);
        // Constant time, and a signature of the wrong length fails.
        mac.verify_slice(signature).is_ok()
    }
    match algorithm {
        Algorithm::Hs384 => run::<Hmac<sha2::Sha384>>(secret, message, signature),
        Algorithm::Hs512 => run::<Hmac<sha2::Sha512>>(secret, message, signature),
        _ => run::<Hmac<sha2::Sha256>>(secret, message, signature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_sizes_and_bad_points_are_errors_naming_the_key() {
        let err = VerifyingKey::new(Algorithm::Hs256, &[1; 31]).unwrap_err();
        assert_eq!(err.0, "HS256 secret must be 32 bytes, got 31");
        let err = VerifyingKey::new(Algorithm::Es256, &[0; 33]).unwrap_err();
        assert!(err.0.contains("ES256 public key"), "{err}");
        // 65 bytes is an uncompressed P-256 point: refused, mosaik takes 33.
        let pair = SigningKey::generate(Algorithm::Es256);
        assert!(VerifyingKey::new(Algorithm::Es256, &[4; 65]).is_err());
        assert_eq!(pair.public_key_bytes().unwrap().len(), 33);
        let err = SigningKey::new(Algorithm::Es384, &[0; 48]).unwrap_err();
        assert!(err.0.contains("ES384 private key"), "{err}");
        assert!(SigningKey::new(Algorithm::Es512, &[0xff; 66]).is_err());
        assert!(SigningKey::new(Algorithm::EdDsa, &[1; 31]).is_err());
    }

    #[test]
    fn every_algorithm_signs_and_verifies_with_mosaiks_sizes() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg);
            assert_eq!(key.secret_bytes().len(), alg.signing_key_len());
            let public = key.public_key_bytes();
            assert_eq!(public.is_none(), alg.is_hmac());
            let verifying = key.verifying_key();
            let again = SigningKey::new(alg, &key.secret_bytes()).unwrap();
            let sig = key.sign(b"a.b");
            // p521 0.13 signs with a random nonce; the others are deterministic.
            if alg != Algorithm::Es512 {
                assert_eq!(again.sign(b"a.b"), sig, "{alg} signs deterministically");
            }
            assert!(verifying.verify(b"a.b", &sig), "{alg}");
            assert!(!verifying.verify(b"a.c", &sig), "{alg}");
            assert!(!verifying.verify(b"a.b", &sig[1..]), "{alg}");
        }
    }

    #[test]
    fn der_ecdsa_signatures_are_refused() {
        let key = SigningKey::generate(Algorithm::Es256);
        let sig = p256::ecdsa::Signature::from_slice(&key.sign(b"m")).unwrap();
        let der = sig.to_der();
        assert!(!key.verifying_key().verify(b"m", der.as_bytes()));
    }

    #[test]
    fn fingerprints_follow_mosaiks_prefixes() {
        let hs = VerifyingKey::new(Algorithm::Hs256, &[0xab; 32]).unwrap();
        assert_eq!(hs.fingerprint(), Digest::from_name("hs256").derive(&[0xab; 32]));
        let ed = SigningKey::new(Algorithm::EdDsa, &[3; 32])
            .unwrap()
            .verifying_key();
        let public = ed25519::SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(ed.fingerprint(), Digest::from_name("EdDsa").derive(&public));
    }
}
