//! The demo's own Redis: a `redis-server` child with AOF under `<data>/redis`, on a free
//! loopback port, supervised while the demo runs and stopped when the demo exits.
//!
//! ## Behavior
//! - `<data>/demo.pid` (JSON: the demo's pid, its redis-server's pid, the port) exists while
//!   the demo runs, so a second `ssot demo` on the same data refuses to start a second
//!   server on the same files. A file left by a demo that was killed is taken over, and the
//!   redis-server that demo left running is stopped first. Processes are recognised by pid
//!   and start time (`/proc`), so a reused pid is not mistaken for the demo.
//! - Once the server answered, a supervisor watches it. When it exits (killed, crashed),
//!   the exit is logged (WARN) and the server is started again on the same port and data
//!   after a backoff ([`RESTART_MIN_DELAY`] doubling to [`RESTART_MAX_DELAY`], back to the
//!   minimum once a server stayed up [`STABLE_UPTIME`]). When the demo's connections are
//!   back, the restart is logged (INFO) and announced to the demo's user as a
//!   [`RESTARTED_EVENT`] event, which the chat page shows.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use redis_ssot::RedisManager;
use serde::{Deserialize, Serialize};

use anyhow::{Context, Result, bail};

/// The event the demo's user gets after its redis-server was restarted.
pub(crate) const RESTARTED_EVENT: &str = "demo_redis_restarted";
/// The user of the token the demo prints.
const DEMO_USER: &str = "demo";
/// First pause before a restart.
const RESTART_MIN_DELAY: Duration = Duration::from_millis(250);
/// Longest pause between restarts of a server that keeps dying.
const RESTART_MAX_DELAY: Duration = Duration::from_secs(8);
/// A server up this long is healthy again: its next restart waits the minimum.
const STABLE_UPTIME: Duration = Duration::from_secs(30);
/// How often the supervisor looks at the child.
const POLL: Duration = Duration::from_millis(100);
/// How long `redis-server` may take to load its data and answer.
const READY_BUDGET: Duration = Duration::from_secs(10);
/// How often the child is checked for an early exit while waiting.
const READY_STEP: Duration = Duration::from_millis(200);
/// How long a redis-server left by a killed demo gets to stop on SIGTERM.
const ORPHAN_STOP_BUDGET: Duration = Duration::from_secs(5);

/// A running embedded Redis.
pub(crate) struct EmbeddedRedis {
    shared: Arc<Supervised>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// What the demo and its supervisor share.
struct Supervised {
    port: u16,
    /// `<data>/redis`, absolute: redis-server's `--dir`.
    dir: PathBuf,
    pid_file: PidFile,
    process: Mutex<Process>,
    /// Set once the first server answered; used to announce restarts.
    manager: OnceLock<RedisManager>,
}

/// The current child. The lock is never held across an `.await`.
struct Process {
    child: Option<Child>,
    started: Instant,
    /// Set on drop: the supervisor must not restart what the demo stops.
    stopped: bool,
}

impl EmbeddedRedis {
    /// Starts `redis-server` with its data under `dir` (AOF, `appendfsync always`).
    pub(crate) fn start(dir: &Path) -> Result<EmbeddedRedis> {
        let data = dir.join("redis");
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let port = free_port()?;
        let pid_file = PidFile::claim(&dir.join(PID_FILE), port)?;
        let data = absolute(&data)?;
        let child = spawn_server(port, &data).context(
            "cannot start redis-server; install it (apt-get install -y redis-server) or use --redis",
        )?;
        pid_file.record_server(child.id())?;
        Ok(EmbeddedRedis {
            shared: Arc::new(Supervised {
                port,
                dir: data,
                pid_file,
                process: Mutex::new(Process {
                    child: Some(child),
                    started: Instant::now(),
                    stopped: false,
                }),
                manager: OnceLock::new(),
            }),
            supervisor: None,
        })
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.shared.port)
    }

    /// Waits until `manager` (built on [`url`](Self::url)) is connected, through the
    /// manager's own readiness wait; fails at once if `redis-server` exits meanwhile. Then
    /// starts supervising the server.
    pub(crate) async fn wait_ready(&mut self, manager: &RedisManager) -> Result<()> {
        let start = Instant::now();
        loop {
            if manager.wait_ready(READY_STEP).await {
                break;
            }
            if let Some(status) = self.shared.exited_at_start()? {
                bail!("redis-server exited at start ({status}); see .ssot/redis/redis.log");
            }
            if start.elapsed() >= READY_BUDGET {
                bail!("redis-server did not answer within {READY_BUDGET:?}");
            }
        }
        let _ = self.shared.manager.set(manager.clone());
        if self.supervisor.is_none() {
            self.supervisor = Some(tokio::spawn(supervise(Arc::clone(&self.shared))));
        }
        Ok(())
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
        let mut process = self.shared.lock();
        process.stopped = true;
        if let Some(mut child) = process.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(process);
        self.shared.pid_file.remove();
    }
}

impl Supervised {
    fn lock(&self) -> MutexGuard<'_, Process> {
        // A panic elsewhere while holding it leaves a usable child handle.
        self.process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn exited_at_start(&self) -> Result<Option<ExitStatus>> {
        match self.lock().child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }
}

/// Watches the server; restarts it when it exits (see the module's Behavior).
async fn supervise(shared: Arc<Supervised>) {
    // Restarts in a row of servers that did not stay up `STABLE_UPTIME`.
    let mut failures: u32 = 0;
    let mut restarts: u64 = 0;
    loop {
        tokio::time::sleep(POLL).await;
        // Reap the child if it exited, under the lock; decide outside it.
        let exited = {
            let mut process = shared.lock();
            if process.stopped {
                return;
            }
            let Some(child) = process.child.as_mut() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    let pid = child.id();
                    process.child = None;
                    Some((pid, status, process.started.elapsed()))
                }
                Ok(None) => None,
                Err(err) => {
                    tracing::warn!(cause = %err, "cannot watch redis-server");
                    None
                }
            }
        };
        let Some((pid, status, uptime)) = exited else {
            continue;
        };
        if uptime >= STABLE_UPTIME {
            failures = 0;
        }
        let mut delay = restart_delay(failures);
        tracing::warn!(
            pid,
            port = shared.port,
            status = %status,
            restart_in_ms = delay.as_millis() as u64,
            "the demo's redis-server exited; restarting it on the same port and data"
        );
        // Start it again, with backoff, until a process runs.
        let new_pid = loop {
            failures = failures.saturating_add(1);
            tokio::time::sleep(delay).await;
            let mut process = shared.lock();
            if process.stopped {
                return;
            }
            match spawn_server(shared.port, &shared.dir) {
                Ok(child) => {
                    let new_pid = child.id();
                    process.child = Some(child);
                    process.started = Instant::now();
                    break new_pid;
                }
                Err(err) => {
                    delay = restart_delay(failures);
                    tracing::warn!(
                        cause = %err,
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot start redis-server"
                    );
                }
            }
        };
        restarts += 1;
        if let Err(err) = shared.pid_file.record_server(new_pid) {
            tracing::warn!(cause = %err, "cannot update the demo's pid file");
        }
        tokio::spawn(announce_restart(
            Arc::clone(&shared),
            pid,
            status,
            new_pid,
            restarts,
        ));
    }
}

/// Once the demo's connections are back on the new server: log it, and tell the demo's
/// user (the chat page shows the event).
async fn announce_restart(
    shared: Arc<Supervised>,
    old_pid: u32,
    status: ExitStatus,
    new_pid: u32,
    restarts: u64,
) {
    let Some(manager) = shared.manager.get() else {
        return;
    };
    if !manager.wait_ready(READY_BUDGET).await {
        return; // it died again; the supervisor says so
    }
    tracing::info!(
        pid = new_pid,
        port = shared.port,
        restarts,
        "the demo's redis-server is back (restarted by the demo); connections restored"
    );
    let text = format!(
        "The demo's redis-server (pid {old_pid}) exited ({status}); the demo restarted it \
         on port {} with the same data (pid {new_pid}).",
        shared.port
    );
    let data = serde_json::json!({
        "text": text,
        "pid": new_pid,
        "port": shared.port,
        "restarts": restarts,
    });
    let Ok(data) = serde_json::value::to_raw_value(&data) else {
        return;
    };
    let Ok(scope) = redis_ssot::UserScope::parse(DEMO_USER) else {
        return;
    };
    let events = redis_ssot::stores::events::Events::new(manager.clone());
    if let Err(err) = events.append(&scope, RESTARTED_EVENT, &data).await {
        tracing::info!(cause = %err, "could not announce the restart to the demo's user");
    }
}

/// `RESTART_MIN_DELAY · 2^failures`, at most `RESTART_MAX_DELAY`.
fn restart_delay(failures: u32) -> Duration {
    RESTART_MIN_DELAY
        .saturating_mul(1 << failures.min(16))
        .min(RESTART_MAX_DELAY)
}

fn spawn_server(port: u16, dir: &Path) -> std::io::Result<Child> {
    let mut command = Command::new("redis-server");
    // A process group of its own: Ctrl-C in the terminal stops the demo, which then stops
    // the server; were the server to get the signal too, its exit would look like a crash
    // to the supervisor.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
        ])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", "redis.log", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Name of the pid file in the data folder.
const PID_FILE: &str = "demo.pid";

/// `<data>/demo.pid`: which demo uses this data folder, and its server.
struct PidFile {
    path: PathBuf,
    own: Holder,
}

/// The content of the pid file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    demo: ProcessId,
    redis: Option<ProcessId>,
    port: u16,
}

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ProcessId {
    pid: u32,
    /// Clock ticks after boot (`/proc/<pid>/stat`, field 22); 0 where unknown.
    start: u64,
}

impl ProcessId {
    fn of(pid: u32) -> ProcessId {
        ProcessId {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// True while this very process runs (not a zombie, not a later one with its pid).
    fn running(self) -> bool {
        start_time(self.pid).is_some_and(|start| start == self.start)
    }
}

impl PidFile {
    /// Creates the file, or takes over one whose demo is gone (stopping the redis-server it
    /// left running); fails while another demo uses the folder.
    fn claim(path: &Path, port: u16) -> Result<PidFile> {
        let own = Holder {
            demo: ProcessId::of(std::process::id()),
            redis: None,
            port,
        };
        for _ in 0..3 {
            // Written whole to a temporary file, then linked: the file appears complete or
            // not at all, and only one of two demos starting together gets it.
            let temp = write_temp(path, &own)?;
            let linked = std::fs::hard_link(&temp, path);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    return Ok(PidFile {
                        path: path.to_owned(),
                        own,
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot create {}", path.display()));
                }
            }
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let Ok(other) = serde_json::from_str::<Holder>(&text) else {
                bail!(
                    "{} exists but is not a demo pid file; if no `ssot demo` runs on this folder, delete it",
                    path.display()
                );
            };
            if other.demo.running() {
                let server = other
                    .redis
                    .map(|r| format!(" (its redis-server: pid {}, port {})", r.pid, other.port))
                    .unwrap_or_default();
                bail!(
                    "another `ssot demo` (pid {}) is using {}{server}; stop it first, or pass --data with another folder",
                    other.demo.pid,
                    path.parent().unwrap_or(path).display()
                );
            }
            if let Some(orphan) = other.redis.filter(|r| r.running()) {
                tracing::warn!(
                    pid = orphan.pid,
                    port = other.port,
                    "a redis-server left running by a killed `ssot demo` uses this data; stopping it"
                );
                stop_orphan(orphan)?;
            }
            std::fs::remove_file(path)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })
                .with_context(|| format!("cannot remove the stale {}", path.display()))?;
        }
        bail!("cannot claim {}: it keeps changing", path.display())
    }

    /// Records the current redis-server (replacing the file atomically).
    fn record_server(&self, pid: u32) -> Result<()> {
        let mut holder = self.own.clone();
        holder.redis = Some(ProcessId::of(pid));
        let temp = write_temp(&self.path, &holder)?;
        std::fs::rename(&temp, &self.path)
            .with_context(|| format!("cannot update {}", self.path.display()))
    }

    /// Removes the file if it is still this demo's.
    fn remove(&self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| serde_json::from_str::<Holder>(&text).ok())
            .is_some_and(|holder| holder.demo == self.own.demo);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn write_temp(path: &Path, holder: &Holder) -> Result<PathBuf> {
    let temp = path.with_extension(format!("pid.{}", std::process::id()));
    let mut text = serde_json::to_string(holder)?;
    text.push('\n');
    std::fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    Ok(temp)
}

/// SIGTERM, then SIGKILL after [`ORPHAN_STOP_BUDGET`]; `kill(1)` because the workspace
/// forbids unsafe code.
fn stop_orphan(orphan: ProcessId) -> Result<()> {
    let signal = |name: &str| {
        Command::new("kill")
            .args([name, &orphan.pid.to_string()])
            .stderr(Stdio::null())
            .status()
    };
    signal("-TERM").context("cannot run kill(1)")?;
    let start = Instant::now();
    while orphan.running() {
        if start.elapsed() > ORPHAN_STOP_BUDGET {
            signal("-KILL").context("cannot run kill(1)")?;
        }
        if start.elapsed() > ORPHAN_STOP_BUDGET * 2 {
            bail!(
                "the redis-server (pid {}) left by a killed demo does not stop",
                orphan.pid
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A running (not zombie) process's start time from `/proc/<pid>/stat`; `None` when it is
/// gone or the system has no `/proc`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(std::env::current_dir()?.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_doubles_up_to_its_cap() {
        assert_eq!(restart_delay(0), RESTART_MIN_DELAY);
        assert_eq!(restart_delay(1), RESTART_MIN_DELAY * 2);
        assert_eq!(restart_delay(3), RESTART_MIN_DELAY * 8);
        assert_eq!(restart_delay(10), RESTART_MAX_DELAY);
        assert_eq!(restart_delay(u32::MAX), RESTART_MAX_DELAY);
    }

    #[test]
    fn this_process_runs_and_a_changed_start_time_does_not() {
        let me = ProcessId::of(std::process::id());
        assert!(me.running());
        let later = ProcessId {
            start: me.start + 1,
            ..me
        };
        assert!(!later.running(), "a reused pid is another process");
    }
}
