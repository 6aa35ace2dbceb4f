//! The demo's own Redis: a `redis-server` child with AOF under `.ssot/redis`, on a free
//! loopback port, stopped when the demo exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_ssot::RedisManager;

use anyhow::{Context, Result, bail};

/// A running embedded Redis.
pub(crate) struct EmbeddedRedis {
    child: Child,
    port: u16,
}

impl EmbeddedRedis {
    /// Starts `redis-server` with its data under `dir` (AOF, `appendfsync always`).
    pub(crate) fn start(dir: &Path) -> Result<EmbeddedRedis> {
        let data = dir.join("redis");
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let port = free_port()?;
        let mut command = Command::new("redis-server");
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
            .arg(absolute(&data)?)
            .args(["--logfile", "redis.log", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().context(
            "cannot start redis-server; install it (apt-get install -y redis-server) or use --redis",
        )?;
        Ok(EmbeddedRedis { child, port })
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Waits until `manager` (built on [`url`](Self::url)) is connected, through the
    /// manager's own readiness wait; fails at once if `redis-server` exits meanwhile.
    pub(crate) async fn wait_ready(&mut self, manager: &RedisManager) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < READY_BUDGET {
            if manager.wait_ready(READY_STEP).await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited at start ({status}); see .ssot/redis/redis.log");
            }
        }
        bail!("redis-server did not answer within {READY_BUDGET:?}")
    }
}

/// How long `redis-server` may take to load its data and answer.
const READY_BUDGET: Duration = Duration::from_secs(10);
/// How often the child is checked for an early exit while waiting.
const READY_STEP: Duration = Duration::from_millis(200);

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(std::env::current_dir()?.join(path))
}
