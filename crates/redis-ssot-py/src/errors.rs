//! Library errors as Python exceptions.
//!
//! The exception classes live in Python (`redis_ssot/errors.py`) so they carry plain
//! attributes (`retry_after`, `key`, `kind`...) and pickle like any exception; this module
//! maps each [`redis_ssot::Error`] onto them.
//!
//! | Rust | Python |
//! |---|---|
//! | `Unavailable`, `Timeout`, transient `Redis` | `RedisUnavailable(retry_after)` |
//! | `Invalid { what: "user id" }` | `InvalidUserId` |
//! | other `Invalid` | `InvalidInput` |
//! | `Config` | `ConfigError(key)` |
//! | `Conflict` | `Conflict(expected, current)` |
//! | `IdempotencyConflict` | `IdempotencyConflict(key, first)` |
//! | `LockLost` | `LockLost(name)` |
//! | `Token` | `TokenError(kind)` |
//! | `Json` | `DataError` |
//! | other `Redis` | `CommandError` |

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use redis_ssot::Error;
use redis_ssot::stores::tokens::TokenError;

static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception for `err`, with its attributes.
pub(crate) fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    match build(py, &err) {
        Ok(exc) => exc,
        // The package is broken (errors.py missing): still raise something precise.
        Err(import) => import,
    }
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let module = MODULE
        .get_or_try_init(py, || py.import("redis_ssot.errors").map(Bound::unbind))?
        .bind(py);
    let message = err.to_string();
    let kwargs = PyDict::new(py);
    let class = match err {
        Error::Config { key, .. } => {
            kwargs.set_item("key", key)?;
            "ConfigError"
        }
        Error::Invalid { what, .. } if what == "user id" => "InvalidUserId",
        Error::Invalid { what, .. } => {
            kwargs.set_item("what", what)?;
            "InvalidInput"
        }
        Error::Conflict { expected, current } => {
            kwargs.set_item("expected", expected)?;
            kwargs.set_item("current", current)?;
            "Conflict"
        }
        Error::IdempotencyConflict { key, first } => {
            kwargs.set_item("key", key)?;
            kwargs.set_item("first", first)?;
            "IdempotencyConflict"
        }
        Error::LockLost { name } => {
            kwargs.set_item("name", name)?;
            "LockLost"
        }
        Error::Token(kind) => {
            kwargs.set_item("kind", token_kind(kind))?;
            "TokenError"
        }
        Error::Json(_) => "DataError",
        err if err.is_transient() => {
            let retry_after = err.retry_after().unwrap_or_default();
            kwargs.set_item("retry_after", retry_after.as_secs_f64())?;
            "RedisUnavailable"
        }
        Error::Redis(_) => "CommandError",
        _ => "RedisSsotError",
    };
    let exc = module.getattr(class)?.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}

/// The stable name of a token rejection, as Python sees it in `TokenError.kind`.
fn token_kind(kind: &TokenError) -> &'static str {
    match kind {
        TokenError::Missing => "missing",
        TokenError::Malformed => "malformed",
        TokenError::Unsigned => "unsigned",
        TokenError::KeyConfusion => "key_confusion",
        TokenError::Algorithm => "algorithm",
        TokenError::BadSignature => "bad_signature",
        TokenError::Expired => "expired",
        TokenError::NotYetValid => "not_yet_valid",
        TokenError::WrongAudience => "wrong_audience",
        TokenError::WrongIssuer => "wrong_issuer",
        TokenError::Claim(_) => "claim",
        TokenError::Revoked => "revoked",
        _ => "other",
    }
}
