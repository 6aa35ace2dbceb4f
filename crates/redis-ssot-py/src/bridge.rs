//! From a Rust future to what Python waits on: an asyncio future, or a blocking call.
//!
//! ## Behavior
//! - Async handles return an `asyncio.Future` of the caller's running loop (bridged by
//!   `pyo3-async-runtimes` onto this process's runtime), so one manager serves any number
//!   of loops and threads. Cancelling the asyncio future drops the Rust future. Called with
//!   no running loop (`asyncio.run(redis.get("k"))`), they return an awaitable that binds
//!   to the loop that awaits it.
//! - Blocking handles (the sync facade) wait on the calling thread with the GIL released.
//! - Either way the work runs on the process's runtime ([`crate::process`]), found anew on
//!   every call, so a handle made before `fork` works in the child.
//! - Results become Python objects on the Python side, with the GIL held: a failed call
//!   raises the exception of [`crate::errors`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime};

use crate::errors::to_pyerr;
use crate::process;

/// How a handle hands results back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Methods return awaitables.
    Async,
    /// Methods block the calling thread (with the GIL released) and return values.
    Blocking,
}

/// A result that turns into a Python value, or raises, once the GIL is held.
pub(crate) struct Done<T>(pub(crate) redis_ssot::Result<T>);

impl<'py, T> IntoPyObject<'py> for Done<T>
where
    T: IntoPyObject<'py>,
{
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Ok(value) => value.into_bound_py_any(py),
            Err(err) => Err(to_pyerr(py, err)),
        }
    }
}

/// Runs `fut` on the process's runtime and hands its result back the way `mode` says.
pub(crate) fn run<'py, T, F>(py: Python<'py>, mode: Mode, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = redis_ssot::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    // Started here, so a runtime that cannot start raises now instead of leaving the
    // awaitable pending.
    let runtime = process::runtime().map_err(|e| to_pyerr(py, e))?;
    // Built (and given its connect budget) here on the Python thread, never inside the
    // runtime, where waiting would stall a worker.
    crate::config::manager_connected(py).map_err(|e| to_pyerr(py, e))?;
    match mode {
        Mode::Async if pyo3_async_runtimes::get_running_loop(py).is_ok() => {
            pyo3_async_runtimes::generic::future_into_py::<ProcessRuntime, _, _>(py, async move {
                Ok(Done(fut.await))
            })
        }
        Mode::Async => {
            // No running loop (`asyncio.run(redis.get("k"))`): bind to the loop that awaits.
            let pending: Pending = Box::pin(async move {
                let done = Done(fut.await);
                let convert: Convert = Box::new(move |py| done.into_bound_py_any(py));
                Ok(ToPython(convert, |py, convert| convert(py)))
            });
            let deferred = Bound::new(
                py,
                Deferred {
                    pending: Mutex::new(Some(pending)),
                },
            )?;
            // A real coroutine, so `asyncio.run()` and `create_task()` take it.
            py.import("redis_ssot._deferred")?
                .getattr("wait")?
                .call1((deferred,))
        }
        Mode::Blocking => {
            let result = py.detach(|| runtime.block_on(fut));
            Done(result).into_pyobject(py)
        }
    }
}

/// Turns a finished call into its Python value once the GIL is held.
type Convert = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;
type Pending = Pin<Box<dyn Future<Output = PyResult<Ready>> + Send>>;

/// A finished call, type-erased.
type Ready = ToPython<Convert>;

/// A Rust value and the function that turns it into a Python object once the GIL is held
/// (a session or claims as a dict, a finished call as its value).
pub(crate) struct ToPython<T>(
    pub(crate) T,
    pub(crate) for<'py> fn(Python<'py>, T) -> PyResult<Bound<'py, PyAny>>,
);

impl<'py, T> IntoPyObject<'py> for ToPython<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.1)(py, self.0)
    }
}

/// A call made outside a running loop, bound to the loop that awaits it. The work starts
/// when it is awaited, once.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Deferred {
    pending: Mutex<Option<Pending>>,
}

#[pymethods]
impl Deferred {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this call was already awaited"))?;
        pyo3_async_runtimes::generic::future_into_py::<ProcessRuntime, _, _>(py, pending)?
            .call_method0("__await__")
    }
}

/// The runtime of the current process, as `pyo3-async-runtimes` wants to see it.
pub(crate) struct ProcessRuntime;

/// A join error of a task on [`ProcessRuntime`].
pub(crate) struct TaskFailed(tokio::task::JoinError);

impl JoinError for TaskFailed {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }

    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.0.into_panic()
    }
}

type Joined = Pin<Box<dyn Future<Output = Result<(), TaskFailed>> + Send>>;

fn joined(handle: Option<tokio::task::JoinHandle<()>>) -> Joined {
    Box::pin(async move {
        match handle {
            Some(handle) => handle.await.map_err(TaskFailed),
            // Nothing to wait for (work handed to the completion thread), or no runtime, which
            // `run` rules out by starting it before handing work over.
            None => Ok(()),
        }
    })
}

impl Runtime for ProcessRuntime {
    type JoinError = TaskFailed;
    type JoinHandle = Joined;

    fn spawn<F>(fut: F) -> Joined
    where
        F: Future<Output = ()> + Send + 'static,
    {
        joined(process::runtime().ok().map(|rt| rt.spawn(fut)))
    }

    /// `pyo3-async-runtimes` uses this only to hand results to Python and never awaits the
    /// handle: the process's completion thread does it, in batches.
    fn spawn_blocking<F>(f: F) -> Joined
    where
        F: FnOnce() + Send + 'static,
    {
        process::complete(Box::new(f));
        joined(None)
    }
}

impl ContextExt for ProcessRuntime {
    // The futures run here never call back into Python coroutines, so they need no task
    // locals: the result goes to the loop captured when the call was made.
    fn scope<F, R>(_locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(fut)
    }

    fn get_task_locals() -> Option<TaskLocals> {
        None
    }
}
