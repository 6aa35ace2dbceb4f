//! `Events.publish`: the per-user event log that `ssot serve` delivers to sockets.

use pyo3::prelude::*;
use redis_ssot::stores::events;
use serde_json::value::RawValue;

use super::{Style, scope, to_json};
use crate::bridge::run;
use crate::config;
use crate::manager::Redis;

/// The Rust `Events`: publishing here is what `POST /v1/users/{id}/events` does, so a
/// gateway delivers the event to the user's sockets (live, and on resume from the stream).
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Events {
    style: Style,
}

#[pymethods]
impl Events {
    #[new]
    fn new(redis: PyRef<'_, Redis>) -> Events {
        Events {
            style: Style::of(&redis),
        }
    }

    /// Stores `event` with JSON `data` in the user's log and announces it; returns its id.
    /// With `idempotency_key` (1-128 visible ASCII characters) at most once per user and key
    /// within the idempotency window (24 h): a retry after a timeout returns the first id and
    /// stores nothing; the same key with another event raises `IdempotencyConflict`.
    #[pyo3(signature = (user, event, data = None, *, idempotency_key = None))]
    fn publish<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        event: String,
        data: Option<&Bound<'py, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let json = match data {
            Some(data) => to_json(data)?,
            None => "null".to_owned(),
        };
        run(py, self.style.mode, async move {
            let raw = RawValue::from_string(json)?;
            let log = events::Events::new(config::manager()?);
            let id = match idempotency_key {
                None => log.append(&scope, &event, &raw).await?,
                Some(key) => {
                    let key = events::IdempotencyKey::parse(&key)?;
                    log.append_idempotent(&scope, &event, &raw, &key).await?.id
                }
            };
            Ok(id.to_string())
        })
    }
}
