//! `mosaik.Jwt` and `mosaik.JwtIssuer`: mosaik's JWT ticket validator and
//! issuer for Python.
//!
//! Only conversion: keys as bytes-like objects, times as numbers or aware
//! datetimes, claims as JSON-like Python values; the core's `tickets::jwt`
//! does the signing, checking and hashing. Each argument is checked here
//! once, and an error names it (`TypeError` for a wrong type, `ValueError`
//! for a bad value). [`validators_from`] reads a `require_ticket=` argument
//! for the producer, consumer and group constructors.

mod args;
mod issuer;
mod jwt;

use std::sync::Arc;

use mosaik_core::tickets::TicketValidator;
use pyo3::{
    prelude::*,
    types::{PyBytes, PyString},
};

pub use issuer::PyJwtIssuer;
pub use jwt::PyJwt;

use args::type_error;

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
