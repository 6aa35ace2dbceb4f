//! `Pipeline`: commands queued in Python, sent in one round trip through the manager.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use redis_ssot::redis::{self, Cmd, Value};

use crate::bridge::{Mode, run};
use crate::commands::{self, Shape, shape};
use crate::config;

/// A pipeline of the process's manager.
///
/// ## Behavior
/// - Command methods queue and return the pipeline, so calls chain:
///   `await r.pipeline().set("a", 1).get("a").execute()`.
/// - `execute()` sends the queue (in MULTI/EXEC when made with `transaction=True`), empties
///   it, and returns one reply per command, shaped like the manager's own methods.
/// - An error reply fails the whole call; the queue is emptied either way.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Pipeline {
    mode: Mode,
    decode: bool,
    transaction: bool,
    queued: Mutex<Vec<(Cmd, Shape)>>,
}

impl Pipeline {
    pub(crate) fn new(mode: Mode, decode: bool, transaction: bool) -> Pipeline {
        Pipeline {
            mode,
            decode,
            transaction,
            queued: Mutex::new(Vec::new()),
        }
    }

    fn push<'py>(
        slf: &Bound<'py, Self>,
        command: PyResult<(Cmd, Shape)>,
    ) -> PyResult<Bound<'py, Self>> {
        let command = command?;
        slf.get()
            .queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(command);
        Ok(slf.clone())
    }
}

/// Shapes each reply of a pipeline like its command's.
struct Replies {
    values: Vec<Value>,
    shapes: Vec<Shape>,
    decode: bool,
}

impl<'py> IntoPyObject<'py> for Replies {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::empty(py);
        for (value, kind) in self.values.into_iter().zip(self.shapes) {
            list.append(shape(py, value, kind, self.decode)?)?;
        }
        Ok(list.into_any())
    }
}

#[pymethods]
impl Pipeline {
    fn __len__(&self) -> usize {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sends the queued commands; returns their replies in order.
    fn execute<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let queued = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()));
        if queued.is_empty() {
            return Err(PyValueError::new_err("the pipeline is empty"));
        }
        let mut pipe = redis::pipe();
        if self.transaction {
            pipe.atomic();
        }
        let mut shapes = Vec::with_capacity(queued.len());
        for (cmd, kind) in queued {
            pipe.add_command(cmd);
            shapes.push(kind);
        }
        let decode = self.decode;
        run(py, self.mode, async move {
            let manager = config::manager()?;
            let values: Vec<Value> = manager.pipeline(&pipe).await?;
            Ok(Replies {
                values,
                shapes,
                decode,
            })
        })
    }

    fn get<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::get(key))
    }

    #[pyo3(signature = (key, value, *, ex = None, px = None, nx = false, xx = false))]
    fn set<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ex: Option<u64>,
        px: Option<u64>,
        nx: bool,
        xx: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::set(key, value, ex, px, nx, xx))
    }

    #[pyo3(signature = (*keys))]
    fn delete<'py>(
        slf: &Bound<'py, Self>,
        keys: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::keys("DEL", keys))
    }

    #[pyo3(signature = (*keys))]
    fn exists<'py>(
        slf: &Bound<'py, Self>,
        keys: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::keys("EXISTS", keys))
    }

    fn expire<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        seconds: u64,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::expire(key, seconds))
    }

    #[pyo3(signature = (key, amount = 1))]
    fn incr<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        amount: i64,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::incr(key, amount))
    }

    fn hget<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        field: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::hget(key, field))
    }

    #[pyo3(signature = (key, field = None, value = None, *, mapping = None))]
    fn hset<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        field: Option<&Bound<'py, PyAny>>,
        value: Option<&Bound<'py, PyAny>>,
        mapping: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::hset(key, field, value, mapping))
    }

    fn hgetall<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::hgetall(key))
    }

    fn publish<'py>(
        slf: &Bound<'py, Self>,
        channel: &Bound<'py, PyAny>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::publish(channel, message))
    }

    /// Any command.
    #[pyo3(signature = (*args))]
    fn execute_command<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(slf, commands::generic(args))
    }
}
