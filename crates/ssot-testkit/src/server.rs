//! One real `redis-server` process on a loopback port.

mod clients;
mod launch;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use self::clients::{ClientInfo, ClientLister};
pub(crate) use self::launch::on_path;
use self::launch::{StartError, launch_retrying, require_tools};
use crate::{ports, tls};

/// How long `restart()` keeps retrying when the old port has not been released yet.
const REBIND_DEADLINE: Duration = Duration::from_secs(5);
/// Attempts with a fresh port when another process grabbed ours first.
const PORT_ATTEMPTS: usize = 8;

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
    /// Where the TLS certificates are (and are made if missing); the data dir when `None`.
    cert_dir: Option<PathBuf>,
    /// `sentinel.conf` of a Sentinel, when the server is one.
    sentinel: Option<String>,
    args: Vec<String>,
}

impl RedisServerBuilder {
    /// Takes the TLS certificates from `dir` (making them there if missing) instead of the
    /// data dir, so that the nodes of one cluster trust each other. With
    /// [`cluster`](Self::cluster), the bus and replication run over TLS too
    /// (`--tls-cluster yes --tls-replication yes`).
    pub(crate) fn tls_certificates_in(mut self, dir: PathBuf) -> Self {
        self.tls = true;
        self.cert_dir = Some(dir);
        self
    }

    /// Runs the process as a Redis Sentinel (`redis-server sentinel.conf --sentinel`) with
    /// this configuration, written to `sentinel.conf` in the data dir, where the Sentinel
    /// rewrites its state. [`RedisSentinel`](crate::RedisSentinel) uses this.
    pub(crate) fn sentinel(mut self, conf: String) -> Self {
        self.sentinel = Some(conf);
        self
    }

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
        if let Some(conf) = &self.sentinel {
            let file = dir.join("sentinel.conf");
            fs::write(&file, conf)
                .unwrap_or_else(|e| panic!("ssot-testkit: cannot write {}: {e}", file.display()));
            // The config file first: redis-server reads one only there.
            args.push(file.display().to_string());
            args.push("--sentinel".into());
        }
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
        let cert_dir = self.cert_dir.clone().unwrap_or_else(|| dir.clone());
        let tls_port = self.tls.then(|| {
            tls::make_certificates(&cert_dir);
            let port = if self.cluster {
                // With TLS on the bus, the bus port is the TLS port + 10000.
                args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
                ports::cluster()
            } else {
                ports::ephemeral()
            };
            args.extend(tls::server_args(&cert_dir, port));
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
                        cert_dir,
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
    /// Where its TLS certificates are.
    cert_dir: PathBuf,
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
            cert_dir: None,
            sentinel: None,
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
        self.cert_dir.join(tls::CA_CERT)
    }

    /// The TLS port, if the server was started with [`RedisServerBuilder::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
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
        ClientLister::open(self.addr())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
