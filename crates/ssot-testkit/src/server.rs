//! One real `redis-server` process on a loopback port.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::resp::{Connection, Reply};
use crate::{ports, spawner, tls};

/// How long a server may take to answer `PING` with `+PONG` after it was spawned.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long `restart()` keeps retrying when the old port has not been released yet.
const REBIND_DEADLINE: Duration = Duration::from_secs(5);
/// Attempts with a fresh port when another process grabbed ours first.
const PORT_ATTEMPTS: usize = 8;
const LOG_FILE: &str = "redis.log";
const STDERR_FILE: &str = "redis.stderr";

/// How a server picks its port.
#[derive(Debug, Clone, Copy)]
enum PortChoice {
    Ephemeral,
    /// A port whose cluster bus port (`p + 10000`) is free as well.
    Cluster,
    Fixed(u16),
}

/// Options for [`RedisServer`]; see [`RedisServer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisServerBuilder {
    port: PortChoice,
    dir: Option<PathBuf>,
    aof: bool,
    cluster: bool,
    tls: bool,
    args: Vec<String>,
}

impl RedisServerBuilder {
    /// Also listens for TLS on a second ephemeral port (`--tls-port`), with a throwaway CA
    /// and a server certificate for `localhost` / `127.0.0.1` made with `openssl(1)` in the
    /// data dir; see [`RedisServer::tls_url`] and [`RedisServer::tls_ca_file`]. Client
    /// certificates are not required. The plain port stays, for the kit's own checks.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Turns on AOF persistence with `appendfsync always`, so every acknowledged write
    /// survives `kill()` + `restart()`.
    pub fn aof(mut self, on: bool) -> Self {
        self.aof = on;
        self
    }

    /// Adds one `redis-server` argument, e.g. `.arg("--maxmemory", "10mb")`.
    /// Later arguments override the kit's defaults.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args.push(name.to_owned());
        self.args.push(value.to_owned());
        self
    }

    /// Uses this port instead of an ephemeral one. Start fails if it stays taken.
    pub fn port(mut self, port: u16) -> Self {
        self.port = PortChoice::Fixed(port);
        self
    }

    /// Uses this data directory (kept after drop) instead of a fresh temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Starts the node in cluster mode (`--cluster-enabled yes`, `nodes.conf` in its
    /// dir, 1 s node timeout, no replica sync delay) on a port whose bus port `p + 10000` is free.
    /// [`RedisCluster`](crate::RedisCluster) uses this; the node is not yet part of a cluster.
    pub fn cluster(mut self, on: bool) -> Self {
        self.cluster = on;
        if on && matches!(self.port, PortChoice::Ephemeral) {
            self.port = PortChoice::Cluster;
        }
        self
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` or `setpriv` is missing, or the server does not come up within
    /// 10 s; the message carries the tail of its log.
    pub fn start(self) -> RedisServer {
        require_tools();
        let (tempdir, dir) = match self.dir {
            Some(dir) => {
                fs::create_dir_all(&dir).unwrap_or_else(|e| {
                    panic!("ssot-testkit: cannot create {}: {e}", dir.display())
                });
                (None, dir)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("ssot-redis-")
                    .tempdir()
                    .expect("ssot-testkit: cannot create a temp dir");
                let dir = tmp.path().to_owned();
                (Some(tmp), dir)
            }
        };
        let mut args: Vec<String> = Vec::new();
        if self.aof {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        if self.cluster {
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // Replicas sync at once instead of after the default 5 s batching delay.
                    "--repl-diskless-sync-delay",
                    "0",
                    // CLUSTER SLOTS lists a replica only once its replication offset is
                    // non-zero, which on an idle master takes one replication ping.
                    "--repl-ping-replica-period",
                    "1",
                ]
                .map(String::from),
            );
        }
        let tls_port = self.tls.then(|| {
            tls::make_certificates(&dir);
            let port = ports::ephemeral();
            args.extend(tls::server_args(&dir, port));
            port
        });
        args.extend(self.args);

        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = match self.port {
                PortChoice::Ephemeral => ports::ephemeral(),
                PortChoice::Cluster => ports::cluster(),
                PortChoice::Fixed(p) => p,
            };
            let deadline = match self.port {
                PortChoice::Fixed(_) => Instant::now() + REBIND_DEADLINE,
                _ => Instant::now(),
            };
            match launch_retrying(port, &dir, &args, deadline) {
                Ok(child) => {
                    return RedisServer {
                        pid: child.id(),
                        child: Some(child),
                        port,
                        tls_port,
                        dir,
                        args,
                        _tempdir: tempdir,
                    };
                }
                Err(StartError::AddressInUse(log)) => {
                    last_error = log;
                    // A node that lost the race may have written nodes.conf with the old port.
                    let _ = fs::remove_file(dir.join("nodes.conf"));
                }
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "ssot-testkit: redis-server could not bind a free port after {PORT_ATTEMPTS} attempts\n{last_error}"
        );
    }
}

/// A real `redis-server` on `127.0.0.1:<port>` with its own data directory.
///
/// ## Behavior
/// - Started through the kit's spawner thread under `setpriv --pdeathsig KILL`, so it dies
///   with the test process even when that is SIGKILLed; Drop kills it (SIGKILL), reaps it and
///   removes its temp dir, also while a panicking test unwinds.
/// - Defaults: ephemeral loopback port, `--save ""`, `--appendonly no`, `--protected-mode no`,
///   log in `<dir>/redis.log`.
/// - `kill()` is SIGKILL + wait and idempotent; `pause()`/`resume()` are SIGSTOP/SIGCONT
///   (commands, including [`cli`](Self::cli), hang while paused).
/// - `restart()` reuses the same port and data dir, retries the bind for up to 5 s, and
///   returns once the server answers `PING` (after an AOF load has finished).
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    pid: u32,
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    /// Arguments beyond the per-launch ones (port, dir, logging).
    args: Vec<String>,
    _tempdir: Option<TempDir>,
}

impl RedisServer {
    /// Starts a server with default options: see [`RedisServerBuilder::start`].
    pub fn start() -> RedisServer {
        RedisServer::builder().start()
    }

    /// Options: AOF, extra arguments, fixed port or dir, cluster mode.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder {
            port: PortChoice::Ephemeral,
            dir: None,
            aof: false,
            cluster: false,
            tls: false,
            args: Vec::new(),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://localhost:<tls port>`.
    ///
    /// # Panics
    /// If the server was started without [`RedisServerBuilder::tls`].
    pub fn tls_url(&self) -> String {
        let port = self
            .tls_port
            .expect("ssot-testkit: tls_url() of a server started without .tls(true)");
        format!("rediss://localhost:{port}")
    }

    /// The PEM file of the CA that signed the server's TLS certificate.
    pub fn tls_ca_file(&self) -> PathBuf {
        self.dir.join(tls::CA_CERT)
    }

    /// The process id of the current (or last) process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The data directory (`--dir`), which also holds `redis.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the process with SIGKILL and reaps it. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // kill() fails only if the child was already reaped; wait() then returns at once.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Continues a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        assert!(
            self.child.is_some(),
            "ssot-testkit: SIG{name} to a server that was killed"
        );
        // `kill(1)` instead of libc::kill: the workspace forbids unsafe code.
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("ssot-testkit: cannot run kill(1): {e}"));
        assert!(
            status.success(),
            "ssot-testkit: kill -{name} {} failed: {status}",
            self.pid
        );
    }

    /// Kills the server if it runs, then starts it again on the same port with the same
    /// data dir and waits until it answers `PING`.
    ///
    /// # Panics
    /// If it does not come back within the bind retry window plus 10 s.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + REBIND_DEADLINE;
        match launch_retrying(self.port, &self.dir, &self.args, deadline) {
            Ok(child) => {
                self.pid = child.id();
                self.child = Some(child);
            }
            Err(StartError::AddressInUse(msg) | StartError::Failed(msg)) => {
                panic!("ssot-testkit: restart on port {} failed\n{msg}", self.port)
            }
        }
    }

    /// Whether the process is alive (a paused process counts as running).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs `redis-cli -h 127.0.0.1 -p <port> -e <args>` and returns its trimmed stdout
    /// (raw output: `GET` gives the bare value, a missing key an empty string).
    ///
    /// # Panics
    /// If redis-cli fails or Redis answers with an error; the message has both streams.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`cli`](Self::cli), but returns a failure (including Redis error replies) as `Err`.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-e"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("ssot-testkit: cannot run redis-cli: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "ssot-testkit: redis-cli -p {} {args:?} failed ({}):\n{stdout}\n{}",
                self.port,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// `CLIENT LIST`, parsed, without the kit's own connection that asked for it.
    ///
    /// # Panics
    /// If the server does not answer within 5 s.
    pub fn client_list(&self) -> Vec<ClientInfo> {
        self.client_lister().list()
    }

    /// One connection that lists the server's clients again and again, for sampling while
    /// a load runs (each [`client_list`](Self::client_list) opens a connection of its own).
    ///
    /// # Panics
    /// If the server does not answer within 5 s.
    pub fn client_lister(&self) -> ClientLister {
        let addr = self.addr();
        let mut conn = Connection::open(addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("ssot-testkit: CLIENT LIST on {addr}: {e}"));
        let own_id = match conn.command(&["CLIENT", "ID"]) {
            Ok(Reply::Integer(id)) => id as u64,
            other => panic!("ssot-testkit: CLIENT ID on {addr}: {other:?}"),
        };
        ClientLister { addr, conn, own_id }
    }
}

/// A connection that reads `CLIENT LIST`, made by [`RedisServer::client_lister`].
pub struct ClientLister {
    addr: SocketAddr,
    conn: Connection,
    own_id: u64,
}

impl ClientLister {
    /// `CLIENT LIST`, parsed, without this lister's own connection.
    ///
    /// # Panics
    /// If the server does not answer within 5 s.
    pub fn list(&mut self) -> Vec<ClientInfo> {
        let addr = self.addr;
        let list = self
            .conn
            .command(&["CLIENT", "LIST"])
            .unwrap_or_else(|e| panic!("ssot-testkit: CLIENT LIST on {addr}: {e}"));
        let text = list
            .as_text()
            .unwrap_or_else(|| panic!("ssot-testkit: CLIENT LIST on {addr}: {list:?}"));
        text.lines()
            .map(ClientInfo::parse)
            .filter(|c| c.id != self.own_id)
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One line of `CLIENT LIST`.
///
/// The common fields are typed; every field, including those, is in `fields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `id`: unique connection id.
    pub id: u64,
    /// `addr`: the client's `ip:port`.
    pub addr: String,
    /// `name`: set by `CLIENT SETNAME`, empty when unset.
    pub name: String,
    /// `age`: seconds since the connection was made.
    pub age: u64,
    /// `idle`: seconds since its last command.
    pub idle: u64,
    /// `flags`: e.g. `N` (normal), `P` (pub/sub), `b` (blocked), `M`/`S` (master/replica).
    pub flags: String,
    /// `db`: selected database.
    pub db: u32,
    /// `sub`: channel subscriptions.
    pub sub: u64,
    /// `psub`: pattern subscriptions.
    pub psub: u64,
    /// `cmd`: the last command run, e.g. `client|setname`.
    pub cmd: String,
    /// Every `key=value` pair of the line.
    pub fields: HashMap<String, String>,
}

impl ClientInfo {
    fn parse(line: &str) -> ClientInfo {
        let fields: HashMap<String, String> = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let text = |key: &str| fields.get(key).cloned().unwrap_or_default();
        let number = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        ClientInfo {
            id: number("id"),
            addr: text("addr"),
            name: text("name"),
            age: number("age"),
            idle: number("idle"),
            flags: text("flags"),
            db: number("db") as u32,
            sub: number("sub"),
            psub: number("psub"),
            cmd: text("cmd"),
            fields,
        }
    }
}

enum StartError {
    /// The port was taken; carries the log tail.
    AddressInUse(String),
    Failed(String),
}

/// Launches on `port`, retrying while the port is in use until `deadline` (one attempt if
/// it has passed already).
fn launch_retrying(
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
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--", "redis-server"])
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
fn require_tools() {
    assert!(
        on_path("redis-server") && on_path("redis-cli"),
        "ssot-testkit: redis-server / redis-cli not found on PATH; install it: apt-get install -y redis-server"
    );
    assert!(
        on_path("setpriv"),
        "ssot-testkit: setpriv not found on PATH; install it: apt-get install -y util-linux"
    );
}
