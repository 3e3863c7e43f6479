//! `mosaik.Jwt` and `mosaik.JwtIssuer`: mosaik's JWT ticket validator and
//! issuer for Python.
//!
//! Only conversion: keys as bytes-like objects, times as numbers or aware
//! datetimes, claims as JSON-like Python values; the core's `tickets::jwt`
//! does the signing, checking and hashing. Each argument is checked here
//! once, and an error names it (`TypeError` for a wrong type, `ValueError`
//! for a bad value). [`validators_from`] reads a `require_ticket=` argument
//! for the producer, consumer and group constructors.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mosaik_core::tickets::{
    TicketValidator,
    jwt::{Algorithm, Expiry, Jwt, JwtIssuer, SigningKey, TokenRequest, VerifyingKey},
    jwt_class,
};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple},
};
use serde_json::Value;

use crate::errors::value_error;

fn type_error(argument: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let name = got
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{argument}: expected {expected}, got {name}"))
}

/// A bytes-like argument (bytes, bytearray, memoryview).
fn bytes_arg<'a>(argument: &str, value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if value.is_instance_of::<PyString>() {
        return Err(type_error(argument, "bytes", value));
    }
    if let Ok(bytes) = value.extract::<Cow<'a, [u8]>>() {
        return Ok(bytes);
    }
    if value.is_instance_of::<PyMemoryView>() {
        let copied = value.py().get_type::<PyBytes>().call1((value,))?;
        return Ok(Cow::Owned(copied.extract::<Vec<u8>>()?));
    }
    Err(type_error(argument, "bytes", value))
}

fn str_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .cast::<PyString>()
        .map_err(|_| type_error(argument, "str", value))?
        .extract::<String>()
}

fn optional_str_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| str_arg(argument, v))
        .transpose()
}

/// An iterable of strings; a bare string is refused rather than split.
fn str_list_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return Err(type_error(argument, "an iterable of str", value));
    }
    let items = value
        .try_iter()
        .map_err(|_| type_error(argument, "an iterable of str", value))?;
    items
        .map(|item| str_arg(&format!("{argument} item"), &item?))
        .collect()
}

/// A non-negative, finite number of seconds (an int or a float, not a
/// bool) that fits a duration.
fn seconds_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
    {
        return Err(type_error(argument, "a number of seconds", value));
    }
    let seconds: f64 = value.extract()?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(value_error(
            argument,
            format!("must be a finite number >= 0 of seconds, got {seconds}"),
        ));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| value_error(argument, format!("too long: {seconds} seconds")))
}

fn optional_duration_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| seconds_arg(argument, v))
        .transpose()
}

/// An instant as whole seconds since the epoch: an int >= 0 or a
/// timezone-aware `datetime` (a naive one would mean local time).
fn instant_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return value.extract::<u64>().map_err(|_| {
            value_error(
                argument,
                format!("must be seconds since the epoch (>= 0), got {value}"),
            )
        });
    }
    let datetime = value.py().import("datetime")?.getattr("datetime")?;
    if !value.is_instance(&datetime)? {
        return Err(type_error(argument, "a datetime or int seconds", value));
    }
    if value.call_method0("utcoffset")?.is_none() {
        return Err(value_error(argument, "must be a timezone-aware datetime"));
    }
    let seconds: f64 = value.call_method0("timestamp")?.extract()?;
    if seconds < 0.0 {
        return Err(value_error(argument, "must not be before 1970"));
    }
    Ok(seconds.floor() as u64)
}

fn optional_instant_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| instant_arg(argument, v))
        .transpose()
}

/// A JSON-like Python value (None, bool, int, float, str, list/tuple,
/// dict with str keys) as a JSON value.
fn json_value(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(flag) = value.cast::<PyBool>() {
        Ok(Value::Bool(flag.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<u64>() {
            Ok(Value::from(n))
        } else if let Ok(n) = value.extract::<i64>() {
            Ok(Value::from(n))
        } else {
            Err(value_error(
                argument,
                format!("integer {value} does not fit 64 bits"),
            ))
        }
    } else if value.is_instance_of::<PyFloat>() {
        let float: f64 = value.extract()?;
        serde_json::Number::from_f64(float)
            .map(Value::Number)
            .ok_or_else(|| value_error(argument, format!("{float} is not a JSON number")))
    } else if let Ok(text) = value.cast::<PyString>() {
        Ok(Value::String(text.extract::<String>()?))
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value.try_iter()?;
        items
            .map(|item| json_value(argument, &item?))
            .collect::<PyResult<_>>()
            .map(Value::Array)
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (key, item) in dict.iter() {
            let key = str_arg(&format!("{argument} key"), &key)?;
            map.insert(key, json_value(argument, &item)?);
        }
        Ok(Value::Object(map))
    } else {
        Err(type_error(
            argument,
            "a JSON value (None, bool, int, float, str, list, dict)",
            value,
        ))
    }
}

/// A mapping of claim names to JSON values.
fn claims_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, Value>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(BTreeMap::new());
    };
    let items = value
        .call_method0("items")
        .map_err(|_| type_error(argument, "a mapping of str to JSON values", value))?;
    let mut claims = BTreeMap::new();
    for pair in items.try_iter()? {
        let (name, item): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
        let name = str_arg(&format!("{argument} key"), &name)?;
        let value = json_value(&format!("{argument}[{name:?}]"), &item)?;
        claims.insert(name, value);
    }
    Ok(claims)
}

fn algorithm_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Algorithm> {
    str_arg(argument, value)?
        .parse()
        .map_err(|e| value_error(argument, e))
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Validates JWT tickets as mosaik's `Jwt` does; its `signature` is part
/// of a gated group's id, equal to mosaik's for the same settings.
#[pyclass(module = "mosaik._mosaik", name = "Jwt", frozen)]
#[derive(Clone)]
pub struct PyJwt {
    inner: Jwt,
}

impl PyJwt {
    #[allow(clippy::too_many_arguments)]
    fn build(
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

/// Signs JWT tickets as mosaik's `JwtTicketBuilder` does.
#[pyclass(module = "mosaik._mosaik", name = "JwtIssuer", frozen)]
pub struct PyJwtIssuer {
    inner: JwtIssuer,
}

impl PyJwtIssuer {
    fn build(
        algorithm: Algorithm,
        argument: &str,
        key: &Bound<'_, PyAny>,
        issuer: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let bytes = bytes_arg(argument, key)?;
        let key = SigningKey::new(algorithm, &bytes).map_err(|e| value_error(argument, e))?;
        Self::with_issuer(key, issuer)
    }

    fn with_issuer(key: SigningKey, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut inner = JwtIssuer::new(key);
        if let Some(issuer) = optional_str_arg("issuer", issuer)? {
            inner = inner.with_issuer(issuer);
        }
        Ok(Self { inner })
    }
}

#[pymethods]
impl PyJwtIssuer {
    /// An issuer signing with HMAC-SHA256 with a 32-byte shared `secret`.
    #[staticmethod]
    #[pyo3(signature = (secret, *, issuer=None))]
    fn hs256(secret: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Hs256, "secret", secret, issuer)
    }

    /// An issuer signing with HMAC-SHA384 with a 48-byte shared `secret`.
    #[staticmethod]
    #[pyo3(signature = (secret, *, issuer=None))]
    fn hs384(secret: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Hs384, "secret", secret, issuer)
    }

    /// An issuer signing with HMAC-SHA512 with a 64-byte shared `secret`.
    #[staticmethod]
    #[pyo3(signature = (secret, *, issuer=None))]
    fn hs512(secret: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Hs512, "secret", secret, issuer)
    }

    /// An issuer signing with ECDSA P-256 with a 32-byte `private_key` (big-endian scalar).
    #[staticmethod]
    #[pyo3(signature = (private_key, *, issuer=None))]
    fn es256(private_key: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Es256, "private_key", private_key, issuer)
    }

    /// An issuer signing with ECDSA P-384 with a 48-byte `private_key`.
    #[staticmethod]
    #[pyo3(signature = (private_key, *, issuer=None))]
    fn es384(private_key: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Es384, "private_key", private_key, issuer)
    }

    /// An issuer signing with ECDSA P-521 with a 66-byte `private_key`.
    #[staticmethod]
    #[pyo3(signature = (private_key, *, issuer=None))]
    fn es512(private_key: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::Es512, "private_key", private_key, issuer)
    }

    /// An issuer signing with Ed25519 with a 32-byte `private_key` (the seed).
    #[staticmethod]
    #[pyo3(signature = (private_key, *, issuer=None))]
    fn eddsa(private_key: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::build(Algorithm::EdDsa, "private_key", private_key, issuer)
    }

    /// An issuer with a fresh random key of `algorithm` (`"HS256"`, ...,
    /// `"EdDSA"`); keep `private_key` to issue with it again.
    #[staticmethod]
    #[pyo3(signature = (algorithm, *, issuer=None))]
    fn generate(algorithm: &Bound<'_, PyAny>, issuer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::with_issuer(
            SigningKey::generate(algorithm_arg("algorithm", algorithm)?),
            issuer,
        )
    }

    /// The `alg` name: `"HS256"`, ..., `"EdDSA"`.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().name()
    }

    /// The `iss` claim of every token, if any.
    #[getter]
    fn issuer(&self) -> Option<&str> {
        self.inner.issuer()
    }

    /// The key a validator needs: the compressed SEC1 point (ES*) or the
    /// Ed25519 public key; `None` for HMAC, whose secret is shared.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner
            .key()
            .public_key_bytes()
            .map(|bytes| PyBytes::new(py, &bytes))
    }

    /// The signing key as the constructor takes it (the HMAC secret, the
    /// ECDSA scalar or the Ed25519 seed). Keep it secret.
    #[getter]
    fn private_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.key().secret_bytes())
    }

    /// A validator accepting this issuer's tokens, with the same options
    /// as `Jwt.hs256` and the others.
    #[pyo3(signature = (*, issuers=None, audiences=None, subject=None, allow_non_expiring=false, max_lifetime=None, max_age=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn validator(
        &self,
        issuers: Option<&Bound<'_, PyAny>>,
        audiences: Option<&Bound<'_, PyAny>>,
        subject: Option<&Bound<'_, PyAny>>,
        allow_non_expiring: bool,
        max_lifetime: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyJwt> {
        PyJwt::build(
            vec![self.inner.key().verifying_key()],
            issuers,
            audiences,
            subject,
            allow_non_expiring,
            max_lifetime,
            max_age,
            claims,
        )
    }

    /// A compact token (str) for `subject`, normally the bearer's peer id.
    /// `expires_in` (seconds from now) or `expires_at` (an aware datetime
    /// or int seconds) sets `exp`; with neither the token never expires.
    /// `issued_at` defaults to now. `claims` are private claims (JSON
    /// values); the registered names have their own arguments.
    #[pyo3(signature = (*, subject, expires_in=None, expires_at=None, not_before=None, issued_at=None, audience=None, jwt_id=None, claims=None))]
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        subject: &Bound<'_, PyAny>,
        expires_in: Option<&Bound<'_, PyAny>>,
        expires_at: Option<&Bound<'_, PyAny>>,
        not_before: Option<&Bound<'_, PyAny>>,
        issued_at: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        jwt_id: Option<&Bound<'_, PyAny>>,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let subject = str_arg("subject", subject)?;
        let expires_in = expires_in.filter(|v| !v.is_none());
        let expires_at = expires_at.filter(|v| !v.is_none());
        let expires = match (expires_in, expires_at) {
            (Some(_), Some(_)) => {
                return Err(value_error(
                    "expires_in",
                    "give expires_in or expires_at, not both",
                ));
            }
            (Some(after), None) => Expiry::In(seconds_arg("expires_in", after)?),
            (None, Some(at)) => Expiry::At(instant_arg("expires_at", at)?),
            (None, None) => Expiry::Never,
        };
        let request = TokenRequest {
            subject,
            expires,
            audience: optional_str_arg("audience", audience)?,
            not_before: optional_instant_arg("not_before", not_before)?,
            issued_at: optional_instant_arg("issued_at", issued_at)?,
            token_id: optional_str_arg("jwt_id", jwt_id)?,
            claims: claims_arg("claims", claims)?,
        };
        self.inner.issue(&request).map_err(|e| value_error("claims", e))
    }

    fn __repr__(&self) -> String {
        match self.inner.issuer() {
            Some(issuer) => format!("<JwtIssuer {} issuer={issuer:?}>", self.algorithm()),
            None => format!("<JwtIssuer {}>", self.algorithm()),
        }
    }
}

/// The validators a `require_ticket=` argument names: `None`, one `Jwt`,
/// or an iterable of them; anything else is a `TypeError` naming
/// `argument`.
pub fn validators_from(obj: &Bound<'_, PyAny>, argument: &str) -> PyResult<Vec<Arc<dyn TicketValidator>>> {
    const EXPECTED: &str = "a Jwt, an iterable of Jwt or None";
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(jwt) = obj.cast::<PyJwt>() {
        return Ok(vec![jwt.get().validator()]);
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(type_error(argument, EXPECTED, obj));
    }
    let items = obj.try_iter().map_err(|_| type_error(argument, EXPECTED, obj))?;
    items
        .map(|item| {
            let item = item?;
            let jwt = item
                .cast::<PyJwt>()
                .map_err(|_| type_error(&format!("{argument} item"), "a Jwt", &item))?;
            Ok(jwt.get().validator())
        })
        .collect()
}

/// The signatures of the validators `require_ticket` names, in order
/// (what a gated group's id is made of); for tests.
#[pyfunction]
pub fn _ticket_signatures(require_ticket: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let validators = validators_from(require_ticket, "require_ticket")?;
    Ok(validators
        .iter()
        .map(|validator| validator.signature().to_hex())
        .collect())
}
