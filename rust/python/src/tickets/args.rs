//! Arguments of `Jwt` and `JwtIssuer`, each converted once and each error
//! naming its argument: `TypeError` for a wrong type, `ValueError` for a
//! bad value. Keys are bytes-like, durations and instants numbers (or aware
//! datetimes), claims JSON-like Python values.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mosaik_core::tickets::jwt::Algorithm;
use pyo3::{
    exceptions::PyTypeError,
    prelude::*,
    types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple},
};
use serde_json::Value;

use crate::errors::value_error;

pub(super) fn type_error(argument: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let name = got
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{argument}: expected {expected}, got {name}"))
}

/// A bytes-like argument (bytes, bytearray, memoryview).
pub(super) fn bytes_arg<'a>(argument: &str, value: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
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

pub(super) fn str_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .cast::<PyString>()
        .map_err(|_| type_error(argument, "str", value))?
        .extract::<String>()
}

pub(super) fn optional_str_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| str_arg(argument, v))
        .transpose()
}

/// An iterable of strings; a bare string is refused rather than split.
pub(super) fn str_list_arg(argument: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
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
pub(super) fn seconds_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
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

pub(super) fn optional_duration_arg(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Duration>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| seconds_arg(argument, v))
        .transpose()
}

/// An instant as whole seconds since the epoch: an int >= 0 or a
/// timezone-aware `datetime` (a naive one would mean local time).
pub(super) fn instant_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
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

pub(super) fn optional_instant_arg(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<u64>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| instant_arg(argument, v))
        .transpose()
}

/// A JSON-like Python value (None, bool, int, float, str, list/tuple,
/// dict with str keys) as a JSON value.
pub(super) fn json_value(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
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
pub(super) fn claims_arg(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<BTreeMap<String, Value>> {
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

pub(super) fn algorithm_arg(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<Algorithm> {
    str_arg(argument, value)?
        .parse()
        .map_err(|e| value_error(argument, e))
}

pub(super) fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
