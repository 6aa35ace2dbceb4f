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
//! - Results go back to Python through one completion thread per process (see
//!   [`complete`]), also rebuilt after `fork`.
//! - `os.fork()` runs [`before_fork`] and [`after_fork_in_parent`] / [`after_fork_in_child`]
//!   (registered with `os.register_at_fork`): the forking thread holds the process lock across
//!   the fork, so no other thread is half-way through building the runtime, the manager or
//!   the completion thread when the child is copied (the child would wait on that lock
//!   forever), and the child starts with none of them. The PID keys still cover forks that
//!   skip the hooks (a C extension calling `fork()`).
//! - `redis_ssot::init`'s process-global manager is deliberately not used: it cannot be
//!   reset after `fork`.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use pyo3::Python;

use redis_ssot::{RedisConfig, RedisManager};
use tokio::runtime::{Handle, Runtime};

/// Worker threads of the runtime: the Python side is the bottleneck, two threads keep the
/// connections served while one is busy.
const WORKER_THREADS: usize = 2;
/// Results handed back to Python under one holding of the GIL, at most.
const COMPLETION_BATCH: usize = 256;

/// Work that must run with the GIL: handing a result to an asyncio loop.
pub(crate) type Completion = Box<dyn FnOnce() + Send>;

struct State {
    /// Settings given to `init`, or read from the environment on first use.
    config: Option<RedisConfig>,
    /// The runtime of the process `pid`; replaced (and the old one leaked) after fork.
    runtime: Option<(u32, Arc<Runtime>)>,
    /// The manager of the process `pid`.
    manager: Option<(u32, RedisManager)>,
    /// The completion thread of the process `pid`.
    completions: Option<(u32, mpsc::Sender<Completion>)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    config: None,
    runtime: None,
    manager: None,
    completions: None,
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
            .thread_name("redis-ssot")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        self.runtime = Some((pid, Arc::new(runtime)));
        Ok(handle)
    }
}

/// Runs `work` on this process's completion thread.
///
/// One thread hands every result back to Python, taking the GIL once for a whole batch of
/// them: a thread per result (Tokio's blocking pool, what `pyo3-async-runtimes` asks for)
/// makes threads queue for the GIL, and on a busy machine one of them descheduled while
/// holding it stalls the asyncio loop for tens of milliseconds.
pub(crate) fn complete(work: Completion) {
    let pid = std::process::id();
    let cached = COMPLETIONS.with_borrow(|c| match c {
        Some((owner, sender)) if *owner == pid => Some(sender.clone()),
        _ => None,
    });
    let sender = match cached {
        Some(sender) => sender,
        None => match completion_sender(pid) {
            Some(sender) => {
                COMPLETIONS.set(Some((pid, sender.clone())));
                sender
            }
            // No thread: hand this result back from here rather than lose it.
            None => return work(),
        },
    };
    if let Err(mpsc::SendError(work)) = sender.send(work) {
        work();
    }
}

/// The completion thread's queue, started on first use in this process.
fn completion_sender(pid: u32) -> Option<mpsc::Sender<Completion>> {
    let mut state = state();
    let sender = match &state.completions {
        Some((owner, sender)) if *owner == pid => sender.clone(),
        _ => {
            let (sender, receiver) = mpsc::channel::<Completion>();
            let spawned = std::thread::Builder::new()
                .name("redis-ssot-completions".to_owned())
                .spawn(move || complete_batches(receiver));
            if spawned.is_err() {
                return None;
            }
            state.completions = Some((pid, sender.clone()));
            sender
        }
    };
    Some(sender)
}

fn complete_batches(receiver: mpsc::Receiver<Completion>) {
    while let Ok(first) = receiver.recv() {
        Python::attach(|_py| {
            run_caught(first);
            for work in receiver.try_iter().take(COMPLETION_BATCH - 1) {
                run_caught(work);
            }
        });
    }
}

/// A panic in one completion must not end the thread that serves all of them.
fn run_caught(work: Completion) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
}

thread_local! {
    /// This thread's copy of the runtime handle and manager of the process `pid`, so the
    /// call path does not take the process lock: neither changes within one process.
    static CACHED: RefCell<Option<(u32, Handle, Option<RedisManager>)>> = const { RefCell::new(None) };
    /// This thread's copy of the completion queue of the process `pid`.
    static COMPLETIONS: RefCell<Option<(u32, mpsc::Sender<Completion>)>> = const { RefCell::new(None) };
}

fn cached_runtime(pid: u32) -> Option<Handle> {
    CACHED.with_borrow(|c| match c {
        Some((owner, handle, _)) if *owner == pid => Some(handle.clone()),
        _ => None,
    })
}

fn cached_manager(pid: u32) -> Option<RedisManager> {
    CACHED.with_borrow(|c| match c {
        Some((owner, _, manager)) if *owner == pid => manager.clone(),
        _ => None,
    })
}

fn cache(pid: u32, handle: Handle, manager: Option<RedisManager>) {
    CACHED.set(Some((pid, handle, manager)));
}

/// The runtime of this process, for work that needs no manager.
pub(crate) fn runtime() -> redis_ssot::Result<Handle> {
    let pid = std::process::id();
    if let Some(handle) = cached_runtime(pid) {
        return Ok(handle);
    }
    let handle = state().runtime(pid).map_err(runtime_error)?;
    cache(pid, handle.clone(), cached_manager(pid));
    Ok(handle)
}

/// The manager of this process. The first call builds it (and the runtime), from the
/// settings given to [`init`] or, when it was not called, from `load`.
/// The flag is true when this call built it.
pub(crate) fn manager(
    load: impl FnOnce() -> redis_ssot::Result<RedisConfig>,
) -> redis_ssot::Result<(RedisManager, bool)> {
    let pid = std::process::id();
    if let Some(manager) = cached_manager(pid) {
        return Ok((manager, false));
    }
    let mut state = state();
    let runtime = state.runtime(pid).map_err(runtime_error)?;
    match &state.manager {
        Some((owner, manager)) if *owner == pid => {
            cache(pid, runtime, Some(manager.clone()));
            return Ok((manager.clone(), false));
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
    cache(pid, runtime, Some(manager.clone()));
    Ok((manager, true))
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

thread_local! {
    /// The process lock, held by the thread that calls `os.fork()` from just before the fork
    /// to just after it.
    static FORK_LOCK: RefCell<Option<MutexGuard<'static, State>>> = const { RefCell::new(None) };
}

/// Before `os.fork()`, on the forking thread (GIL held): takes the process lock. Its holders
/// never wait for the GIL, so this waits at most for one of them to finish.
pub(crate) fn before_fork() {
    let guard = state();
    FORK_LOCK.set(Some(guard));
}

/// After `os.fork()` in the parent: releases the process lock, nothing else changes.
pub(crate) fn after_fork_in_parent() {
    FORK_LOCK.set(None);
}

/// After `os.fork()` in the child: forgets the parent's runtime, manager and completion
/// thread (leaked, never dropped: their threads do not exist here), keeps the settings, and
/// releases the process lock. The next call builds this process's own.
pub(crate) fn after_fork_in_child() {
    let mut state = FORK_LOCK.take().unwrap_or_else(state);
    std::mem::forget(state.runtime.take());
    std::mem::forget(state.manager.take());
    std::mem::forget(state.completions.take());
    drop(state);
    // Only the forking thread exists in the child, so its copies are the only ones left.
    std::mem::forget(CACHED.take());
    std::mem::forget(COMPLETIONS.take());
}

fn runtime_error(err: std::io::Error) -> redis_ssot::Error {
    redis_ssot::Error::Config {
        key: "runtime".to_owned(),
        reason: format!("cannot start the Tokio runtime: {err}"),
    }
}
