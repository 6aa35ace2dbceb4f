//! redis-ssot-py: the Python bindings of redis-ssot (the `redis_ssot._native` module).
//!
//! The Python package (`python/redis_ssot`) wraps this module with stubs, the compat
//! aliases and the sync facade. Built by maturin with the `extension-module` feature; without
//! it this crate is empty, so workspace builds and tests need no Python.
//!
//! # Layout
//! - `process`: the process's Tokio runtime and manager, keyed by PID (fresh after `fork`).
//! - `config`: `init` arguments, `ssot.toml` and the environment into a `RedisConfig`.
//! - `bridge`: Rust futures into asyncio futures (pyo3-async-runtimes) or blocking calls.
//! - `errors`: library errors as the exceptions of `redis_ssot/errors.py`.
//! - `value`, `commands`: arguments in, replies out, and the manager's commands.
//! - `manager`: the `Redis` handle; `pipeline`: its `Pipeline`.
//! - `stores`: `UserCache`, `Sessions`, `RateLimiter`, `AgentState`, `Locks`, `Jobs`,
//!   `Events`, `Tokens`.
//! - `cli`: the whole `ssot` command (`ssot_cli::main`), run in process for the `ssot` script
//!   of the Python package.

#![cfg(feature = "extension-module")]

mod bridge;
mod cli;
mod commands;
mod config;
mod errors;
mod manager;
mod pipeline;
mod process;
mod stores;
mod value;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::bridge::Mode;
use crate::errors::to_pyerr;
use crate::manager::Redis;

/// Sets the process's settings from the arguments, `ssot.toml` and the environment
/// (`init(url=None, *, app=None, config=None, **options)`). Raises `ConfigError` naming the
/// key on invalid settings, or when called again with different ones.
#[pyfunction]
#[pyo3(signature = (url = None, *, app = None, config = None, **options))]
fn init(
    py: Python<'_>,
    url: Option<String>,
    app: Option<String>,
    config: Option<std::path::PathBuf>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let args = config::InitArgs {
        url,
        app,
        file: config,
        options_json: options_json(options)?,
    };
    let resolved = config::resolve(args).map_err(|e| to_pyerr(py, e))?;
    process::init(resolved).map_err(|e| to_pyerr(py, e))
}

/// A handle of the process's manager (built on first use from the settings of `init`, or
/// from `ssot.toml` and the environment).
#[pyfunction]
#[pyo3(signature = (*, decode_responses = false, blocking = false))]
fn get_redis(py: Python<'_>, decode_responses: bool, blocking: bool) -> PyResult<Redis> {
    // Fails now on invalid settings rather than on the first call.
    config::manager_connected(py).map_err(|e| to_pyerr(py, e))?;
    Ok(Redis {
        mode: if blocking {
            Mode::Blocking
        } else {
            Mode::Async
        },
        decode: decode_responses,
    })
}

/// Keyword options as a JSON object with the TOML spelling of their keys
/// (`command_timeout_ms` -> `command-timeout-ms`), nested tables included.
pub(crate) fn options_json(options: Option<&Bound<'_, PyDict>>) -> PyResult<Option<String>> {
    let Some(options) = options else {
        return Ok(None);
    };
    fn kebab<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = value.py();
        if let Ok(dict) = value.cast::<PyDict>() {
            let out = PyDict::new(py);
            for (k, v) in dict.iter() {
                out.set_item(k.str()?.to_cow()?.replace('_', "-"), kebab(&v)?)?;
            }
            return Ok(out.into_any());
        }
        if let Ok(list) = value.cast::<PyList>() {
            let out = PyList::empty(py);
            for v in list.iter() {
                out.append(kebab(&v)?)?;
            }
            return Ok(out.into_any());
        }
        Ok(value.clone())
    }
    let converted = kebab(options.as_any())?;
    let json: String = options
        .py()
        .import("json")?
        .call_method1("dumps", (converted,))?
        .extract()?;
    Ok(Some(json))
}

/// `os.register_at_fork(before=...)`: see [`process::before_fork`].
#[pyfunction]
fn before_fork() {
    process::before_fork();
}

/// `os.register_at_fork(after_in_parent=...)`.
#[pyfunction]
fn after_fork_in_parent() {
    process::after_fork_in_parent();
}

/// `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn after_fork_in_child() {
    process::after_fork_in_child();
}

/// The `redis_ssot._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hooks = PyDict::new(m.py());
    hooks.set_item("before", wrap_pyfunction!(before_fork, m)?)?;
    hooks.set_item(
        "after_in_parent",
        wrap_pyfunction!(after_fork_in_parent, m)?,
    )?;
    hooks.set_item("after_in_child", wrap_pyfunction!(after_fork_in_child, m)?)?;
    m.py()
        .import("os")?
        .call_method("register_at_fork", (), Some(&hooks))?;
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(get_redis, m)?)?;
    m.add_function(wrap_pyfunction!(cli::main, m)?)?;
    m.add_class::<Redis>()?;
    m.add_class::<pipeline::Pipeline>()?;
    m.add_class::<stores::UserCache>()?;
    m.add_class::<stores::Sessions>()?;
    m.add_class::<stores::RateLimiter>()?;
    m.add_class::<stores::Decision>()?;
    m.add_class::<stores::AgentState>()?;
    m.add_class::<stores::Locks>()?;
    m.add_class::<stores::Lease>()?;
    m.add_class::<stores::Jobs>()?;
    m.add_class::<stores::Enqueued>()?;
    m.add_class::<stores::Events>()?;
    m.add_class::<stores::Tokens>()?;
    Ok(())
}
