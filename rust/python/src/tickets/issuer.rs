//! `mosaik.JwtIssuer`: signs tokens as mosaik's `JwtTicketBuilder` does.

use mosaik_core::tickets::jwt::{Algorithm, Expiry, JwtIssuer, SigningKey, TokenRequest};
use pyo3::{prelude::*, types::PyBytes};

use super::{
    PyJwt,
    args::{
        algorithm_arg, bytes_arg, claims_arg, instant_arg, optional_instant_arg, optional_str_arg,
        seconds_arg, str_arg,
    },
};
use crate::errors::value_error;

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
