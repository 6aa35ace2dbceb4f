//! `UserCache`: per-user cache entries, reachable only through a user id.

use pyo3::prelude::*;
use redis_ssot::stores::cache;

use super::{Style, blob, scope, seconds};
use crate::bridge::run;
use crate::config;
use crate::manager::Redis;
use crate::value::to_arg;

/// The Rust `UserCache`: keys `ssot:{u:<id>}:cache:<name>`.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct UserCache {
    style: Style,
}

fn store() -> redis_ssot::Result<cache::UserCache> {
    Ok(cache::UserCache::new(config::manager()?))
}

#[pymethods]
impl UserCache {
    #[new]
    fn new(redis: PyRef<'_, Redis>) -> UserCache {
        UserCache {
            style: Style::of(&redis),
        }
    }

    /// The entry's value, or `None`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let decode = self.style.decode;
        run(py, self.style.mode, async move {
            let found = store()?.get(&scope, &name).await?;
            Ok(found.map(|bytes| blob(bytes, decode)))
        })
    }

    /// Stores `value` for `ttl` seconds.
    fn set<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
        value: &Bound<'py, PyAny>,
        ttl: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let value = to_arg(value)?;
        let ttl = seconds("ttl", ttl)?;
        run(py, self.style.mode, async move {
            store()?.set(&scope, &name, value, ttl).await
        })
    }

    /// Removes the entry; true when it existed.
    fn delete<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        run(py, self.style.mode, async move {
            store()?.delete(&scope, &name).await
        })
    }

    fn exists<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        run(py, self.style.mode, async move {
            store()?.exists(&scope, &name).await
        })
    }

    /// Seconds the entry has left, or `None` when absent.
    fn ttl<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        run(py, self.style.mode, async move {
            Ok(store()?.ttl(&scope, &name).await?.map(|d| d.as_secs_f64()))
        })
    }

    /// Removes every entry of the user; returns how many.
    fn clear<'py>(&self, py: Python<'py>, user: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        run(
            py,
            self.style.mode,
            async move { store()?.clear(&scope).await },
        )
    }
}
