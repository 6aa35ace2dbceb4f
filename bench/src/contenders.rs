//! The contenders measured from Rust: the manager, a raw redis-rs `MultiplexedConnection`,
//! and `redis-benchmark` run as a subprocess. (redis-py lives in `bench/manager/load.py`.)

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo};
use redis_ssot::{RedisConfig, RedisManager};

use crate::load::{self, Cell, Client, KEYSPACE, Op, VALUE};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Contender {
    /// `RedisManager::query` (breaker, timeout, metrics, one multiplexed connection).
    Manager,
    /// One `redis::aio::MultiplexedConnection` opened with the client's defaults.
    Raw,
    /// `redis-benchmark` with the same client count, keyspace and value size.
    RedisBenchmark,
}

impl Contender {
    /// Name in the JSON lines and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Contender::Manager => "manager",
            Contender::Raw => "raw",
            Contender::RedisBenchmark => "redis-benchmark",
        }
    }
}

/// One invocation: a contender over every (concurrency, op) pair, in that order.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The server, `redis://host:port`.
    pub url: String,
    /// What is measured.
    pub contender: Contender,
    /// Concurrencies, in order.
    pub concurrency: Vec<usize>,
    /// Commands, in order, for each concurrency.
    pub ops: Vec<Op>,
    /// Unmeasured time before each window.
    pub warmup: Duration,
    /// Measured window of each cell.
    pub window: Duration,
    /// Tokio worker threads of the load generator.
    pub worker_threads: usize,
}

/// Measures every cell of `settings`, handing each to `on_cell` as soon as it is done.
pub fn run(settings: &RunSettings, mut on_cell: impl FnMut(&Cell)) -> anyhow::Result<()> {
    if settings.contender == Contender::RedisBenchmark {
        for &concurrency in &settings.concurrency {
            for &op in &settings.ops {
                on_cell(&redis_benchmark(settings, op, concurrency)?);
            }
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.worker_threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match settings.contender {
            Contender::Manager => {
                let config = RedisConfig::for_url(&settings.url)?;
                let manager = RedisManager::connect(config).await?;
                cells(settings, &ViaManager(manager), &mut on_cell).await
            }
            Contender::Raw => {
                let client = redis::Client::open(settings.url.as_str())?;
                let conn = client.get_multiplexed_async_connection().await?;
                cells(settings, &Raw(conn), &mut on_cell).await
            }
            Contender::RedisBenchmark => unreachable!("handled above"),
        }
    })
}

async fn cells<C: Client>(
    settings: &RunSettings,
    client: &C,
    on_cell: &mut impl FnMut(&Cell),
) -> anyhow::Result<()> {
    for &concurrency in &settings.concurrency {
        for &op in &settings.ops {
            let measured =
                load::drive(client, op, concurrency, settings.warmup, settings.window).await?;
            on_cell(&Cell::from_samples(
                settings.contender.as_str(),
                op,
                concurrency,
                settings.window,
                measured,
            ));
        }
    }
    Ok(())
}

#[derive(Clone)]
struct ViaManager(RedisManager);

impl Client for ViaManager {
    async fn call(&mut self, op: Op, key: &str) -> anyhow::Result<()> {
        match op {
            Op::Set => {
                self.0
                    .query::<()>(redis::cmd("SET").arg(key).arg(VALUE))
                    .await?
            }
            Op::Get => {
                self.0
                    .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(key))
                    .await?;
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Raw(MultiplexedConnection);

impl Client for Raw {
    async fn call(&mut self, op: Op, key: &str) -> anyhow::Result<()> {
        match op {
            Op::Set => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(VALUE)
                    .query_async::<()>(&mut self.0)
                    .await?
            }
            Op::Get => {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut self.0)
                    .await?;
            }
        }
        Ok(())
    }
}

/// `redis-benchmark` counts requests rather than time: a short pilot measures its rate, then
/// the real run gets as many requests as fit the window at that rate.
fn redis_benchmark(settings: &RunSettings, op: Op, concurrency: usize) -> anyhow::Result<Cell> {
    let (host, port) = match settings.url.as_str().into_connection_info()?.addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => bail!("redis-benchmark contender needs a plain TCP URL, got {other:?}"),
    };
    let pilot_requests = (concurrency as u64 * 20).max(5_000);
    let pilot = redis_benchmark_once(&host, port, op, concurrency, pilot_requests)?;
    let requests = ((pilot.rps * settings.window.as_secs_f64()) as u64)
        .max(concurrency as u64 * 100)
        .max(1_000);
    let run = redis_benchmark_once(&host, port, op, concurrency, requests)?;
    Ok(Cell {
        contender: Contender::RedisBenchmark.as_str().to_owned(),
        op,
        concurrency,
        ops: requests,
        seconds: requests as f64 / run.rps,
        ops_per_sec: run.rps,
        p50_us: run.p50_ms * 1e3,
        p99_us: run.p99_ms * 1e3,
        cpu_us_per_op: None,
    })
}

struct BenchmarkLine {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn redis_benchmark_once(
    host: &str,
    port: u16,
    op: Op,
    concurrency: usize,
    requests: u64,
) -> anyhow::Result<BenchmarkLine> {
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string()])
        .args(["-c", &concurrency.to_string(), "-n", &requests.to_string()])
        .args(["-r", &KEYSPACE.to_string(), "-d", &VALUE.len().to_string()])
        .args(["-t", op.as_str(), "--csv"])
        .output()
        .context("running redis-benchmark (apt-get install -y redis-tools)")?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_csv(&String::from_utf8_lossy(&output.stdout))
}

/// Reads the data line of `redis-benchmark --csv` (Redis 7: test, rps, avg, min, p50, p95,
/// p99, max; latencies in milliseconds).
fn parse_csv(text: &str) -> anyhow::Result<BenchmarkLine> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = fields(lines.next().context("empty redis-benchmark output")?);
    let values: Vec<String> = fields(lines.next().context("no redis-benchmark data line")?);
    let get = |name: &str| -> anyhow::Result<f64> {
        let i = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("redis-benchmark CSV has no {name} column: {header:?}"))?;
        let value = values.get(i).context("short redis-benchmark data line")?;
        value
            .parse()
            .with_context(|| format!("bad {name} value {value:?}"))
    };
    Ok(BenchmarkLine {
        rps: get("rps")?,
        p50_ms: get("p50_latency_ms")?,
        p99_ms: get("p99_latency_ms")?,
    })
}

fn fields(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"30102.35\",\"0.361\",\"0.064\",\"0.271\",\"0.487\",\"3.487\",\"10.287\"\n";
        let line = parse_csv(text).unwrap();
        assert_eq!(line.rps, 30102.35);
        assert_eq!(line.p50_ms, 0.271);
        assert_eq!(line.p99_ms, 3.487);
    }
}
