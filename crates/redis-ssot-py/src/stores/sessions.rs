//! `Sessions`: server-side sessions with sliding expiry.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use redis_ssot::stores::sessions::{self, Session};

use super::{Style, scope, seconds};
use crate::bridge::{ToPython, run};
use crate::config;
use crate::errors::to_pyerr;
use crate::manager::Redis;

/// The Rust `Sessions`; a session is a dict `{id, user, created, last_seen, meta}` with
/// times in Unix seconds.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Sessions {
    style: Style,
    ttl: Duration,
}

/// A session as a dict, converted once the GIL is held.
fn session_dict(session: Session) -> ToPython<Session> {
    ToPython(session, |py, s| {
        let unix = |t: std::time::SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        };
        let dict = PyDict::new(py);
        dict.set_item("id", s.id)?;
        dict.set_item("user", s.user.as_str())?;
        dict.set_item("created", unix(s.created))?;
        dict.set_item("last_seen", unix(s.last_seen))?;
        dict.set_item("meta", s.meta)?;
        Ok(dict.into_any())
    })
}

impl Sessions {
    fn store(&self) -> redis_ssot::Result<sessions::Sessions> {
        sessions::Sessions::new(config::manager()?, self.ttl)
    }
}

#[pymethods]
impl Sessions {
    /// Sessions that expire `ttl` seconds after their last use.
    #[new]
    fn new(py: Python<'_>, redis: PyRef<'_, Redis>, ttl: f64) -> PyResult<Sessions> {
        let ttl = seconds("ttl", ttl)?;
        // Validates the ttl now rather than on first use.
        if ttl.is_zero() {
            return Err(to_pyerr(
                py,
                redis_ssot::Error::Invalid {
                    what: "session ttl".to_owned(),
                    reason: "must be at least 1 ms".to_owned(),
                },
            ));
        }
        Ok(Sessions {
            style: Style::of(&redis),
            ttl,
        })
    }

    #[pyo3(signature = (user, meta = None))]
    fn create<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        meta: Option<BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            Ok(session_dict(
                store?.create(&scope, meta.unwrap_or_default()).await?,
            ))
        })
    }

    fn get<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            Ok(store?.get(&scope, &id).await?.map(session_dict))
        })
    }

    /// Extends the session's life; returns it, or `None` when it is gone.
    fn touch<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            Ok(store?.touch(&scope, &id).await?.map(session_dict))
        })
    }

    fn revoke<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            store?.revoke(&scope, &id).await
        })
    }

    fn list<'py>(&self, py: Python<'py>, user: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            Ok(store?
                .list(&scope)
                .await?
                .into_iter()
                .map(session_dict)
                .collect::<Vec<_>>())
        })
    }

    fn revoke_all<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            store?.revoke_all(&scope).await
        })
    }
}
