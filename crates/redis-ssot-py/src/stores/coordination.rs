//! Stores that coordinate work: `RateLimiter`, `AgentState`, `Locks` and `Jobs.enqueue`.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use redis_ssot::stores::{agent_state, jobs, lock, rate_limit};
use serde_json::value::RawValue;

use super::{Json, Style, scope, seconds, to_json};
use crate::bridge::run;
use crate::config;
use crate::manager::Redis;

/// The answer of a rate limit check.
#[pyclass(frozen, get_all, module = "redis_ssot._native")]
pub(crate) struct Decision {
    /// True when the call is within the limit (and was counted).
    allowed: bool,
    /// Calls left in the current burst.
    remaining: u64,
    /// Seconds to wait before the next call can be allowed (0 when allowed).
    retry_after: f64,
    /// Seconds until the limit is fully reset.
    reset_after: f64,
}

impl From<rate_limit::Decision> for Decision {
    fn from(d: rate_limit::Decision) -> Decision {
        Decision {
            allowed: d.allowed,
            remaining: d.remaining,
            retry_after: d.retry_after.as_secs_f64(),
            reset_after: d.reset_after.as_secs_f64(),
        }
    }
}

#[pymethods]
impl Decision {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(allowed={}, remaining={}, retry_after={:.3}, reset_after={:.3})",
            if self.allowed { "True" } else { "False" },
            self.remaining,
            self.retry_after,
            self.reset_after
        )
    }
}

/// The Rust `RateLimiter` (GCRA in one script).
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct RateLimiter {
    style: Style,
}

fn limit(name: &str, rate: u32, period: f64, burst: Option<u32>) -> PyResult<rate_limit::Limit> {
    let limit = rate_limit::Limit::new(name, rate, seconds("period", period)?);
    Ok(match burst {
        Some(burst) => limit.with_burst(burst),
        None => limit,
    })
}

#[pymethods]
impl RateLimiter {
    #[new]
    fn new(redis: PyRef<'_, Redis>) -> RateLimiter {
        RateLimiter {
            style: Style::of(&redis),
        }
    }

    /// Counts `cost` calls of `user` against `rate` per `period` seconds (bursts up to
    /// `burst`, default `rate`).
    #[pyo3(signature = (user, name, *, rate, period, burst = None, cost = 1))]
    #[allow(clippy::too_many_arguments)]
    fn check<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        name: String,
        rate: u32,
        period: f64,
        burst: Option<u32>,
        cost: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let limit = limit(&name, rate, period, burst)?;
        run(py, self.style.mode, async move {
            let limiter = rate_limit::RateLimiter::new(config::manager()?);
            Ok(Decision::from(limiter.check_n(&scope, &limit, cost).await?))
        })
    }

    /// Like `check`, for a subject shared by all users (an API key, a tenant).
    #[pyo3(signature = (subject, name, *, rate, period, burst = None))]
    fn check_global<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        name: String,
        rate: u32,
        period: f64,
        burst: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = limit(&name, rate, period, burst)?;
        run(py, self.style.mode, async move {
            let limiter = rate_limit::RateLimiter::new(config::manager()?);
            Ok(Decision::from(
                limiter.check_global(&subject, &limit).await?,
            ))
        })
    }
}

/// The Rust `AgentState`: a JSON value per (user, run) with a version, compare-and-set.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct AgentState {
    style: Style,
    ttl: Option<std::time::Duration>,
}

impl AgentState {
    fn store(&self) -> redis_ssot::Result<agent_state::AgentState> {
        let store = agent_state::AgentState::new(config::manager()?);
        Ok(match self.ttl {
            Some(ttl) => store.with_ttl(ttl),
            None => store,
        })
    }
}

#[pymethods]
impl AgentState {
    #[new]
    #[pyo3(signature = (redis, *, ttl = None))]
    fn new(redis: PyRef<'_, Redis>, ttl: Option<f64>) -> PyResult<AgentState> {
        Ok(AgentState {
            style: Style::of(&redis),
            ttl: ttl.map(|t| seconds("ttl", t)).transpose()?,
        })
    }

    /// `(version, value)`, or `None` when absent.
    fn get<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        run_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            let found = store?.get::<Box<RawValue>>(&scope, &run_id).await?;
            Ok(found.map(|v| (v.version, Json(v.value.get().to_owned()))))
        })
    }

    /// Stores `value` if the stored version is `expected_version` (0: absent); returns the
    /// new version, or raises `Conflict`.
    fn put<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        run_id: String,
        expected_version: u64,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let json = to_json(value)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            let raw = RawValue::from_string(json)?;
            store?.put(&scope, &run_id, expected_version, &raw).await
        })
    }

    fn delete<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        run_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = scope(user)?;
        let store = self.store();
        run(py, self.style.mode, async move {
            store?.delete(&scope, &run_id).await
        })
    }
}

/// A held lock; its `token` fences writes made under it.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Lease {
    inner: Arc<Mutex<lock::Lease>>,
}

impl Lease {
    fn snapshot(&self) -> lock::Lease {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[pymethods]
impl Lease {
    #[getter]
    fn name(&self) -> String {
        self.snapshot().name
    }

    #[getter]
    fn holder(&self) -> String {
        self.snapshot().holder
    }

    /// The fencing token: strictly greater for every new holder.
    #[getter]
    fn token(&self) -> u64 {
        self.snapshot().token
    }

    fn __repr__(&self) -> String {
        let lease = self.snapshot();
        format!(
            "Lease(name={:?}, holder={:?}, token={})",
            lease.name, lease.holder, lease.token
        )
    }
}

/// The Rust `Locks`: lease locks with fencing tokens.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Locks {
    style: Style,
}

#[pymethods]
impl Locks {
    #[new]
    fn new(redis: PyRef<'_, Redis>) -> Locks {
        Locks {
            style: Style::of(&redis),
        }
    }

    /// A lease on `name` for `lease` seconds, or `None` when another holder has it.
    fn acquire<'py>(
        &self,
        py: Python<'py>,
        name: String,
        holder: String,
        lease: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lease = seconds("lease", lease)?;
        run(py, self.style.mode, async move {
            let locks = lock::Locks::new(config::manager()?);
            let held = locks.acquire(&name, &holder, lease).await?;
            Ok(held.map(|l| Lease {
                inner: Arc::new(Mutex::new(l)),
            }))
        })
    }

    /// Extends the lease to `ttl` seconds from now; raises `LockLost` when no longer held.
    fn renew<'py>(
        &self,
        py: Python<'py>,
        lease: PyRef<'py, Lease>,
        ttl: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ttl = seconds("ttl", ttl)?;
        let shared = Arc::clone(&lease.inner);
        run(py, self.style.mode, async move {
            let locks = lock::Locks::new(config::manager()?);
            let mut current = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
            locks.renew(&mut current, ttl).await?;
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = current;
            Ok(())
        })
    }

    /// Releases the lease; raises `LockLost` when it was no longer held.
    fn release<'py>(
        &self,
        py: Python<'py>,
        lease: PyRef<'py, Lease>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let held = lease.snapshot();
        run(py, self.style.mode, async move {
            lock::Locks::new(config::manager()?).release(held).await
        })
    }
}

/// The result of `Jobs.enqueue`.
#[pyclass(frozen, get_all, module = "redis_ssot._native")]
pub(crate) struct Enqueued {
    /// The job id.
    id: String,
    /// True when the idempotency key was seen before and nothing was added.
    duplicate: bool,
}

#[pymethods]
impl Enqueued {
    fn __repr__(&self) -> String {
        format!(
            "Enqueued(id={:?}, duplicate={})",
            self.id,
            if self.duplicate { "True" } else { "False" }
        )
    }
}

/// The producer side of the Rust `Jobs` queue that `ssot worker` consumes.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Jobs {
    style: Style,
    queue: String,
}

#[pymethods]
impl Jobs {
    #[new]
    fn new(py: Python<'_>, redis: PyRef<'_, Redis>, queue: String) -> PyResult<Jobs> {
        redis_ssot::keys::check_name("queue", &queue)
            .map_err(|e| crate::errors::to_pyerr(py, e))?;
        Ok(Jobs {
            style: Style::of(&redis),
            queue,
        })
    }

    #[getter]
    fn queue(&self) -> String {
        self.queue.clone()
    }

    /// Enqueues a `kind` job for `user` with a JSON `payload`; at most once per user and
    /// `idempotency_key` while the key is remembered.
    #[pyo3(signature = (user, kind, payload, *, idempotency_key = None))]
    fn enqueue<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        kind: String,
        payload: &Bound<'py, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let user = scope(user)?.user().clone();
        let payload: serde_json::Value = serde_json::from_str(&to_json(payload)?)
            .map_err(|e| crate::errors::to_pyerr(py, e.into()))?;
        let queue = self.queue.clone();
        run(py, self.style.mode, async move {
            let jobs = jobs::Jobs::new(config::manager()?, &queue)?;
            let done = jobs
                .enqueue(jobs::NewJob {
                    user,
                    kind,
                    payload,
                    idempotency_key,
                })
                .await?;
            Ok(Enqueued {
                id: done.id,
                duplicate: done.duplicate,
            })
        })
    }
}
