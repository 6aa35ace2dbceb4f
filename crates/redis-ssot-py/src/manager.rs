//! `Redis`: the Python handle of the process's one manager.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use redis_ssot::redis::{Cmd, Value};

use crate::bridge::{Mode, run};
use crate::commands::{self, Shape};
use crate::config;
use crate::errors::to_pyerr;
use crate::pipeline::Pipeline;

/// A handle of the process's manager.
///
/// ## Behavior
/// - Holds no connection: every call goes to the manager of the current process (built on
///   first use, rebuilt in a forked child), so every handle reports the same `instance_id`
///   within a process.
/// - Async handles return awaitables bound to the caller's running loop; blocking handles
///   (`redis_ssot.sync`) return values. Both release the GIL while Rust works.
/// - Replies are `bytes`; `decode_responses=True` handles return `str` instead.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Redis {
    pub(crate) mode: Mode,
    pub(crate) decode: bool,
}

impl Redis {
    fn call<'py>(
        &self,
        py: Python<'py>,
        (cmd, shape): (Cmd, Shape),
    ) -> PyResult<Bound<'py, PyAny>> {
        let decode = self.decode;
        run(py, self.mode, async move {
            let manager = config::manager()?;
            let value: Value = manager.query(&cmd).await?;
            Ok(commands::reply(value, shape, decode))
        })
    }
}

#[pymethods]
impl Redis {
    /// The manager's instance id: equal for every handle of one process.
    #[getter]
    fn instance_id(&self, py: Python<'_>) -> PyResult<String> {
        let manager = config::manager().map_err(|e| to_pyerr(py, e))?;
        Ok(manager.instance_id().to_owned())
    }

    /// `closed`, `open` or `half_open`.
    #[getter]
    fn breaker_state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let manager = config::manager().map_err(|e| to_pyerr(py, e))?;
        Ok(manager.breaker_state().as_str())
    }

    /// `Redis[bytes]` / `Redis[str]` in annotations evaluated at run time: the same class
    /// (the stubs make it generic over the reply type).
    #[classmethod]
    fn __class_getitem__<'py>(
        cls: &Bound<'py, PyType>,
        _reply: &Bound<'py, PyAny>,
    ) -> Bound<'py, PyType> {
        cls.clone()
    }

    /// True when replies are `str`.
    #[getter]
    fn decode_responses(&self) -> bool {
        self.decode
    }

    /// True for the blocking handles of `redis_ssot.sync`.
    #[getter]
    fn blocking(&self) -> bool {
        self.mode == Mode::Blocking
    }

    /// The same manager, with other reply decoding or call style.
    #[pyo3(signature = (*, decode_responses = None, blocking = None))]
    fn with_options(&self, decode_responses: Option<bool>, blocking: Option<bool>) -> Redis {
        Redis {
            decode: decode_responses.unwrap_or(self.decode),
            mode: match blocking {
                Some(true) => Mode::Blocking,
                Some(false) => Mode::Async,
                None => self.mode,
            },
        }
    }

    /// The latest health report, like `ssot doctor --json`.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let manager = config::manager().map_err(|e| to_pyerr(py, e))?;
        let mut report =
            serde_json::to_value(manager.health()).map_err(|e| to_pyerr(py, e.into()))?;
        if let Some(object) = report.as_object_mut() {
            let config = manager.config();
            object.insert(
                "config".to_owned(),
                serde_json::json!({
                    "urls": config.redacted_urls(),
                    "cluster": config.is_cluster(),
                    "text": config.to_string(),
                }),
            );
            object.insert("connections".to_owned(), manager.open_connections().into());
        }
        py.import("json")?
            .call_method1("loads", (report.to_string(),))
    }

    /// Names of the connections the manager holds open now.
    fn open_connections(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let manager = config::manager().map_err(|e| to_pyerr(py, e))?;
        Ok(manager.open_connections())
    }

    /// Waits until the manager's connections are up, at most `timeout` seconds; returns
    /// whether they are.
    #[pyo3(signature = (timeout = 5.0))]
    fn wait_ready<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let budget = std::time::Duration::from_secs_f64(timeout.max(0.0));
        run(py, self.mode, async move {
            let manager = config::manager()?;
            Ok(manager.wait_ready(budget).await)
        })
    }

    fn get<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::get(key)?)
    }

    #[pyo3(signature = (key, value, *, ex = None, px = None, nx = false, xx = false))]
    #[allow(clippy::too_many_arguments)] // redis-py's signature
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ex: Option<u64>,
        px: Option<u64>,
        nx: bool,
        xx: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::set(key, value, ex, px, nx, xx)?)
    }

    #[pyo3(signature = (*keys))]
    fn delete<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::keys("DEL", keys)?)
    }

    #[pyo3(signature = (*keys))]
    fn exists<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::keys("EXISTS", keys)?)
    }

    fn expire<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        seconds: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::expire(key, seconds)?)
    }

    #[pyo3(signature = (key, amount = 1))]
    fn incr<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        amount: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::incr(key, amount)?)
    }

    fn hget<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        field: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::hget(key, field)?)
    }

    #[pyo3(signature = (key, field = None, value = None, *, mapping = None))]
    fn hset<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        field: Option<&Bound<'py, PyAny>>,
        value: Option<&Bound<'py, PyAny>>,
        mapping: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::hset(key, field, value, mapping)?)
    }

    fn hgetall<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::hgetall(key)?)
    }

    fn publish<'py>(
        &self,
        py: Python<'py>,
        channel: &Bound<'py, PyAny>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::publish(channel, message)?)
    }

    /// Any command: `await redis.execute("HINCRBY", "k", "f", 2)`.
    #[pyo3(signature = (*args))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, commands::generic(args)?)
    }

    /// A pipeline of commands sent together; `transaction=True` wraps them in MULTI/EXEC.
    #[pyo3(signature = (transaction = false))]
    fn pipeline(&self, transaction: bool) -> Pipeline {
        Pipeline::new(self.mode, self.decode, transaction)
    }

    fn __repr__(&self) -> String {
        format!(
            "<redis_ssot.Redis {}{}>",
            if self.mode == Mode::Blocking {
                "blocking"
            } else {
                "async"
            },
            if self.decode { " decode_responses" } else { "" }
        )
    }
}
