//! The process's one Tokio runtime and one manager, rebuilt after `fork`.
//!
//! ## Behavior
//! - Both are created lazily, on the first call that needs them, and keyed by the PID that
//!   created them. A forked child (gunicorn, uvicorn `--workers`, multiprocessing) sees a
//!   different PID and builds its own on first use: it never touches the parent's runtime
//!   (whose threads do not exist in the child) nor its connections.
//! - The parent's runtime and manager are leaked in the child, not dropped: dropping them
//!   would run their shutdown on threads that are gone.
//! - The settings survive `fork`, so the child's manager is configured like the parent's.
//! - `redis_ssot::init`'s process-global manager is deliberately not used: it cannot be
//!   reset after `fork`.

use std::sync::{Arc, Mutex, MutexGuard};

use redis_ssot::{RedisConfig, RedisManager};
use tokio::runtime::{Handle, Runtime};

/// Worker threads of the runtime: the Python side is the bottleneck, two threads keep the
/// connections served while one is busy.
const WORKER_THREADS: usize = 2;
/// Threads that hand results back to Python; each one waits for the GIL.
const MAX_BLOCKING_THREADS: usize = 4;

struct State {
    /// Settings given to `init`, or read from the environment on first use.
    config: Option<RedisConfig>,
    /// The runtime of the process `pid`; replaced (and the old one leaked) after fork.
    runtime: Option<(u32, Arc<Runtime>)>,
    /// The manager of the process `pid`.
    manager: Option<(u32, RedisManager)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    config: None,
    runtime: None,
    manager: None,
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// This process's runtime, created on first use.
    fn runtime(&mut self, pid: u32) -> std::io::Result<Handle> {
        match &self.runtime {
            Some((owner, runtime)) if *owner == pid => return Ok(runtime.handle().clone()),
            Some(_) => std::mem::forget(self.runtime.take()),
            None => {}
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name("redis-ssot")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        self.runtime = Some((pid, Arc::new(runtime)));
        Ok(handle)
    }
}

/// The runtime of this process, for work that needs no manager.
pub(crate) fn runtime() -> redis_ssot::Result<Handle> {
    state().runtime(std::process::id()).map_err(runtime_error)
}

/// The manager of this process. The first call builds it (and the runtime), from the
/// settings given to [`init`] or, when it was not called, from `load`.
pub(crate) fn manager(
    load: impl FnOnce() -> redis_ssot::Result<RedisConfig>,
) -> redis_ssot::Result<RedisManager> {
    let pid = std::process::id();
    let mut state = state();
    let runtime = state.runtime(pid).map_err(runtime_error)?;
    match &state.manager {
        Some((owner, manager)) if *owner == pid => {
            return Ok(manager.clone());
        }
        Some(_) => std::mem::forget(state.manager.take()),
        None => {}
    }
    let config = match &state.config {
        Some(config) => config.clone(),
        None => {
            let config = load()?;
            state.config = Some(config.clone());
            config
        }
    };
    let manager = {
        let _entered = runtime.enter();
        RedisManager::new(config)?
    };
    state.manager = Some((pid, manager.clone()));
    Ok(manager)
}

/// Sets the process's settings. Settings equal to those in force are accepted again (and
/// keep the manager); different ones are an error naming the conflict.
pub(crate) fn init(config: RedisConfig) -> redis_ssot::Result<()> {
    let mut state = state();
    match &state.config {
        Some(existing) if *existing == config => Ok(()),
        Some(_) => Err(redis_ssot::Error::Config {
            key: "redis".to_owned(),
            reason: "the process-wide manager is already initialised with different settings"
                .to_owned(),
        }),
        None => {
            state.config = Some(config);
            Ok(())
        }
    }
}

fn runtime_error(err: std::io::Error) -> redis_ssot::Error {
    redis_ssot::Error::Config {
        key: "runtime".to_owned(),
        reason: format!("cannot start the Tokio runtime: {err}"),
    }
}
