//! `mosaik.Jwt`: mosaik's JWT validator, built from keys and options.

use std::sync::Arc;

use mosaik_core::tickets::{
    TicketValidator,
    jwt::{Algorithm, Jwt, VerifyingKey},
    jwt_class,
};
use pyo3::{
    exceptions::PyValueError,
    prelude::*,
    types::{PyBytes, PyString, PyTuple},
};

use super::args::{
    algorithm_arg, bytes_arg, claims_arg, now_seconds, optional_duration_arg, optional_str_arg, str_arg,
    str_list_arg, type_error,
};
use crate::errors::value_error;

/// Validates JWT tickets as mosaik's `Jwt` does; its `signature` is part
/// of a gated group's id, equal to mosaik's for the same settings.
#[pyclass(module = "mosaik._mosaik", name = "Jwt", frozen)]
#[derive(Clone)]
pub struct PyJwt {
    inner: Jwt,
}

impl PyJwt {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        keys: Vec<VerifyingKey>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut keys = keys.into_iter();
        let first = keys
            .next()
            .ok_or_else(|| value_error("keys", "at least one key is needed"))?;
        let mut jwt = Jwt::with_key(first);
        for key in keys {
            jwt = jwt.add_key(key);
        }
        for issuer in str_list_arg("issuers", issuers)? {
            jwt = jwt.allow_issuer(issuer);
        }
        for audience in str_list_arg("audiences", audiences)? {
            jwt = jwt.allow_audience(audience);
        }
        if let Some(subject) = optional_str_arg("subject", subject)? {
            jwt = jwt.require_subject(subject);
        }
        if allow_non_expiring {
            jwt = jwt.allow_non_expiring();
        }
        if let Some(max) = optional_duration_arg("max_lifetime", max_lifetime)? {
            jwt = jwt.max_lifetime(max);
        }
        if let Some(max) = optional_duration_arg("max_age", max_age)? {
            jwt = jwt.max_age(max);
        }
        for (name, value) in claims_arg("claims", claims)? {
            jwt = jwt.require_claim(name, value);
        }
        Ok(Self { inner: jwt })
    }

    fn one_key(algorithm: Algorithm, key: &Bound<'_, PyAny>) -> PyResult<Vec<VerifyingKey>> {
        let bytes = bytes_arg("key", key)?;
        Ok(vec![
            VerifyingKey::new(algorithm, &bytes).map_err(|e| value_error("key", e))?,
        ])
    }

    /// The core validator, for a producer, consumer or group.
    pub fn validator(&self) -> Arc<dyn TicketValidator> {
        Arc::new(self.inner.clone())
    }
}

#[pymethods]
impl PyJwt {
    /// A validator trying each of `keys` (`(algorithm, key bytes)` pairs,
    /// e.g. `("HS256", secret)`) whose algorithm is the token's `alg`:
    /// several keys let tokens of an old and a new key pass during rotation.
    #[new]
    #[pyo3(signature = (keys, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        keys: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if keys.is_instance_of::<PyString>() || keys.is_instance_of::<PyBytes>() {
            return Err(type_error("keys", "an iterable of (algorithm, key) pairs", keys));
        }
        let items = keys
            .try_iter()
            .map_err(|_| type_error("keys", "an iterable of (algorithm, key) pairs", keys))?;
        let mut parsed = Vec::new();
        for item in items {
            let item = item?;
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|pair| pair.len() == 2)
                .ok_or_else(|| type_error("keys item", "an (algorithm, key) tuple", &item))?;
            let algorithm = algorithm_arg("keys", &pair.get_item(0)?)?;
            let key = pair.get_item(1)?;
            let bytes = bytes_arg("keys", &key)?;
            parsed.push(VerifyingKey::new(algorithm, &bytes).map_err(|e| value_error("keys", e))?);
        }
        Self::build(
            parsed,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for HMAC-SHA256 with the 32-byte shared `key`.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn hs256(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Hs256, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for HMAC-SHA384 with the 48-byte shared `key`.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn hs384(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Hs384, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for HMAC-SHA512 with the 64-byte shared `key`.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn hs512(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Hs512, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for ECDSA P-256; `key` is the 33-byte compressed SEC1 public key.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn es256(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Es256, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for ECDSA P-384; `key` is the 49-byte compressed SEC1 public key.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn es384(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Es384, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for ECDSA P-521; `key` is the 67-byte compressed SEC1 public key.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn es512(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::Es512, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A validator for Ed25519; `key` is the 32-byte public key.
    #[staticmethod]
    #[pyo3(signature = (key, *, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn eddsa(
        key: &Bound<'_, PyAny>,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Self::build(
            Self::one_key(Algorithm::EdDsa, key)?,
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// mosaik's validator signature (64 hex): equal settings and keys give
    /// equal signatures, in Python and in Rust.
    #[getter]
    fn signature(&self) -> String {
        self.inner.signature().to_hex()
    }

    /// The ticket class this validator reads (`mosaik.tickets.jwt.v1`), hex.
    #[getter]
    fn class_id(&self) -> String {
        jwt_class().to_hex()
    }

    /// The algorithm of each key, in order.
    #[getter]
    fn algorithms(&self) -> Vec<&'static str> {
        self.inner
            .keys()
            .iter()
            .map(|key| key.algorithm().name())
            .collect()
    }

    /// Checks `token` for the peer `peer_id` (64 hex) now: its expiry in
    /// seconds since the epoch, or `None` if it never expires. Raises
    /// `ValueError` with the reason if the token is refused.
    fn validate(&self, token: &Bound<'_, PyAny>, peer_id: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let token = str_arg("token", token)?;
        let peer_id = str_arg("peer_id", peer_id)?.to_ascii_lowercase();
        if peer_id.len() != 64 || !peer_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(value_error("peer_id", "expected 64 hex characters"));
        }
        match self.inner.validate_at(token.as_bytes(), &peer_id, now_seconds()) {
            Ok(expiry) => Ok(expiry.unix_seconds().map(|seconds| seconds as f64)),
            Err(refusal) => Err(PyValueError::new_err(format!("token: {}", refusal.0))),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<Jwt {} {}>",
            self.algorithms().join(","),
            &self.signature()[..16]
        )
    }
}
