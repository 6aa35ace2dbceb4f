//! Spawning `redis-server` under `setpriv --pdeathsig KILL` and waiting until it answers.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::{Connection, Reply};
use crate::spawner;

/// How long a server may take to answer `PING` with `+PONG` after it was spawned.
const READY_DEADLINE: Duration = Duration::from_secs(10);
const LOG_FILE: &str = "redis.log";
const STDERR_FILE: &str = "redis.stderr";

pub(super) enum StartError {
    /// The port was taken; carries the log tail.
    AddressInUse(String),
    Failed(String),
}

/// Launches on `port`, retrying while the port is in use until `deadline` (one attempt if
/// it has passed already).
pub(super) fn launch_retrying(
    port: u16,
    dir: &Path,
    args: &[String],
    deadline: Instant,
) -> Result<Child, StartError> {
    loop {
        match launch(port, dir, args) {
            Err(StartError::AddressInUse(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn launch(port: u16, dir: &Path, args: &[String]) -> Result<Child, StartError> {
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(STDERR_FILE))
        .map_err(|e| {
            StartError::Failed(format!(
                "ssot-testkit: cannot open {STDERR_FILE} in {}: {e}",
                dir.display()
            ))
        })?;
    // A first argument that is no option is a config file (a Sentinel's), which
    // redis-server reads only in first place.
    let (file, args) = match args.split_first() {
        Some((file, rest)) if !file.starts_with("--") => (Some(file), rest),
        _ => (None, args),
    };
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--", "redis-server"])
        .args(file)
        .arg("--port")
        .arg(port.to_string())
        .args([
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(LOG_FILE))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = spawner::spawn(command).map_err(|e| {
        StartError::Failed(format!(
            "ssot-testkit: cannot spawn setpriv redis-server: {e}"
        ))
    })?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = log_tail(dir);
            return Err(if log.contains("Address already in use") {
                StartError::AddressInUse(log)
            } else {
                StartError::Failed(format!(
                    "ssot-testkit: redis-server on port {port} exited ({status})\n{log}"
                ))
            });
        }
        if answers_as(addr, child.id()) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::Failed(format!(
                "ssot-testkit: redis-server on port {port} did not answer PING within {READY_DEADLINE:?}\n{}",
                log_tail(dir)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `PING` answers `+PONG` (not `-LOADING`), and the server is process `pid`, not another
/// test's server that won the race for the port.
fn answers_as(addr: SocketAddr, pid: u32) -> bool {
    let Ok(mut conn) = Connection::open(addr, Duration::from_millis(500)) else {
        return false;
    };
    if conn.command(&["PING"]).ok() != Some(Reply::Status("PONG".into())) {
        return false;
    }
    let Some(info) = conn
        .command(&["INFO", "server"])
        .ok()
        .and_then(|r| r.as_text())
    else {
        return false;
    };
    info.lines()
        .any(|l| l.trim() == format!("process_id:{pid}"))
}

fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for name in [STDERR_FILE, LOG_FILE] {
        let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(25)..];
        if !tail.is_empty() {
            out.push_str(&format!(
                "--- {} (tail) ---\n{}\n",
                dir.join(name).display(),
                tail.join("\n")
            ));
        }
    }
    out
}

pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Fails fast, with the fix, when a tool the kit needs is missing.
pub(super) fn require_tools() {
    assert!(
        on_path("redis-server") && on_path("redis-cli"),
        "ssot-testkit: redis-server / redis-cli not found on PATH; install it: apt-get install -y redis-server"
    );
    assert!(
        on_path("setpriv"),
        "ssot-testkit: setpriv not found on PATH; install it: apt-get install -y util-linux"
    );
}
