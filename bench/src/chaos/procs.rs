//! The `ssot` processes of a chaos run: two gateways and a worker, started with a clean
//! environment (nothing of the caller's `SSOT_*`, `REDIS_URL` or `RUST_LOG` leaks in),
//! killed with SIGKILL and started again on the same port.

use std::fs::OpenOptions;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ChaosConfig;
use super::topology::Redis;

/// The HS256 secret of the gateways (at least 32 bytes).
pub(crate) const SECRET: &str = "chaos-secret-0123456789abcdef0123";
/// The publish API's key.
pub(crate) const SERVICE_KEY: &str = "chaos-service-key-0123456789";

/// One config file for every process: quick fault detection, no rate limits in the way of
/// the load (the run is about faults, not budgets), no trimming of the event logs (the
/// accounting reads them whole).
const CONFIG: &str = r#"
[redis]
app = "chaos"
health-interval-ms = 200
reconnect-min-delay-ms = 20
reconnect-max-delay-ms = 500
[gateway]
inbound-rate = 1000
inbound-burst = 1000
message-rate = 100000
message-burst = 1000
[events]
max-len = 10000000
[worker]
agent = "demo"
demo-step-ms = 20
concurrency = 16
reclaim-idle-ms = 3000
agent-timeout-ms = 2000
"#;

/// One `ssot` process that can be killed and started again the same way.
struct Proc {
    name: String,
    args: Vec<String>,
    /// The gateway's port, to wait for after a start.
    port: Option<u16>,
    child: Option<Child>,
    log: PathBuf,
    ssot: PathBuf,
    dir: PathBuf,
    log_filter: String,
}

impl Proc {
    fn spawn(&mut self) -> anyhow::Result<()> {
        self.kill();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.ssot);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SSOT_JWT_SECRET", SECRET)
            .env("SSOT_SERVICE_KEY", SERVICE_KEY)
            .env("SSOT_LOG", &self.log_filter)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn()?);
        match self.port {
            // A bad setting ends a worker at once: notice it here, not in the accounting.
            None => {
                std::thread::sleep(Duration::from_millis(300));
                self.still_running()?;
            }
            Some(port) => {
                let start = Instant::now();
                while TcpStream::connect(("127.0.0.1", port)).is_err() {
                    anyhow::ensure!(
                        start.elapsed() < Duration::from_secs(15),
                        "{} did not listen on {port}; see {}",
                        self.name,
                        self.log.display()
                    );
                    self.still_running()?;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Ok(())
    }

    fn still_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            anyhow::bail!(
                "{} exited ({status}); see {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The gateways (0, 1) and the worker.
pub(crate) struct Procs {
    gateways: Vec<Proc>,
    worker: Proc,
}

impl Procs {
    pub(crate) fn start(config: &ChaosConfig, dir: &Path, redis: &Redis) -> anyhow::Result<Procs> {
        // Absolute: the children run in `dir`, where a relative path would not resolve.
        let ssot = std::fs::canonicalize(&config.ssot)
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.ssot.display()))?;
        let file = dir.join("chaos.toml");
        std::fs::write(&file, CONFIG)?;
        let file = file.display().to_string();
        let proc = |name: String, args: Vec<String>, port: Option<u16>| Proc {
            log: dir.join(format!("{name}.log")),
            name,
            args,
            port,
            child: None,
            ssot: ssot.clone(),
            dir: dir.to_owned(),
            log_filter: config.ssot_log.clone(),
        };
        let mut gateways = Vec::new();
        for i in 0..2 {
            let port = free_port()?;
            let args = ["--config", &file, "serve", "--listen"]
                .map(String::from)
                .into_iter()
                .chain([
                    format!("127.0.0.1:{port}"),
                    "--redis".into(),
                    redis.url_for(i),
                ])
                .collect();
            let mut gateway = proc(format!("gateway{i}"), args, Some(port));
            gateway.spawn()?;
            gateways.push(gateway);
        }
        let args = ["--config", &file, "worker", "--redis"]
            .map(String::from)
            .into_iter()
            .chain([redis.url_for(2)])
            .collect();
        let mut worker = proc("worker".into(), args, None);
        worker.spawn()?;
        Ok(Procs { gateways, worker })
    }

    pub(crate) fn gateway_ports(&self) -> Vec<u16> {
        self.gateways.iter().filter_map(|g| g.port).collect()
    }

    pub(crate) fn kill_gateway(&mut self, i: usize) {
        self.gateways[i].kill();
    }

    pub(crate) fn start_gateway(&mut self, i: usize) -> anyhow::Result<()> {
        self.gateways[i].spawn()
    }

    pub(crate) fn kill_worker(&mut self) {
        self.worker.kill();
    }

    pub(crate) fn start_worker(&mut self) -> anyhow::Result<()> {
        self.worker.spawn()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for gateway in &mut self.gateways {
            gateway.kill();
        }
        self.worker.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The body of a gateway's `GET /ready` (or why there is none), for a failure's diagnosis.
pub(crate) fn ready(port: u16) -> String {
    use std::io::{Read, Write};
    let answer = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
    })();
    answer.unwrap_or_else(|e| format!("no answer: {e}"))
}
