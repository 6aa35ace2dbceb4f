//! The typed stores, as Python classes over the Rust ones: same keys, same semantics.
//!
//! Each store is built from a `Redis` handle and takes its call style (async or blocking)
//! and reply decoding from it. Like the handle it holds no connection: every call builds
//! the Rust store over the current process's manager (a clone of a handle, no I/O).

mod cache;
mod coordination;
mod events;
mod sessions;
mod tokens;

pub(crate) use cache::UserCache;
pub(crate) use coordination::{AgentState, Decision, Enqueued, Jobs, Lease, Locks, RateLimiter};
pub(crate) use events::Events;
pub(crate) use sessions::Sessions;
pub(crate) use tokens::Tokens;

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use redis_ssot::{Error, UserScope};

use crate::bridge::{Mode, ToPython};
use crate::errors::to_pyerr;
use crate::manager::Redis;

/// What a store takes from the handle it was built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) mode: Mode,
    pub(crate) decode: bool,
}

impl Style {
    pub(crate) fn of(redis: &Redis) -> Style {
        Style {
            mode: redis.mode,
            decode: redis.decode,
        }
    }
}

/// A user's scope from a `str` or `bytes` id. Anything that is not a valid id, including
/// bytes that are not UTF-8, raises `InvalidUserId`.
pub(crate) fn scope(obj: &Bound<'_, PyAny>) -> PyResult<UserScope> {
    let py = obj.py();
    let invalid = |reason: String| Error::Invalid {
        what: "user id".to_owned(),
        reason,
    };
    let parsed = if let Ok(text) = obj.cast::<PyString>() {
        match text.extract::<String>() {
            Ok(text) => UserScope::parse(&text),
            Err(_) => Err(invalid("not valid unicode".to_owned())),
        }
    } else if let Ok(bytes) = obj.cast::<PyBytes>() {
        match std::str::from_utf8(bytes.as_bytes()) {
            Ok(text) => UserScope::parse(text),
            Err(_) => Err(invalid("not UTF-8".to_owned())),
        }
    } else {
        Err(invalid(format!(
            "expected str or bytes, got {}",
            obj.get_type().name()?
        )))
    };
    parsed.map_err(|e| to_pyerr(py, e))
}

/// Seconds from Python as a duration; negative, NaN or infinite values are refused.
pub(crate) fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!("{what} must be a finite number of seconds >= 0"))
    })
}

/// A Python value as JSON text (`json.dumps`).
pub(crate) fn to_json(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .py()
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()
}

/// JSON text that becomes a Python value (`json.loads`) once the GIL is held.
pub(crate) struct Json(pub(crate) String);

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.0,))
    }
}

/// Bytes that become `bytes`, or `str` for decoding handles.
pub(crate) fn blob(bytes: Vec<u8>, decode: bool) -> ToPython<(Vec<u8>, bool)> {
    ToPython((bytes, decode), |py, (bytes, decode)| {
        crate::value::convert(py, redis_ssot::redis::Value::BulkString(bytes), decode)
    })
}
