//! The closed-loop driver: `concurrency` tasks, each with its own handle on the client, send
//! one command at a time for a warm-up and then a measured window.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Keys are `key:000000000000` .. `key:000000009999`, like `redis-benchmark -r 10000`.
pub const KEYSPACE: u64 = 10_000;
/// The value of every SET: 3 bytes, `redis-benchmark`'s default `-d 3`.
pub const VALUE: &[u8] = b"xxx";

/// The command measured in a cell.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `SET key:<n> xxx`
    Set,
    /// `GET key:<n>` (`run.sh` fills every key before the first cell).
    Get,
}

impl Op {
    /// Lower-case name, as in the JSON lines and `redis-benchmark -t`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Get => "get",
        }
    }
}

/// One measured cell: one contender, one command, one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// `manager`, `raw`, `python` or `redis-benchmark`.
    pub contender: String,
    /// The command.
    pub op: Op,
    /// Tasks (or clients) sending commands at once.
    pub concurrency: usize,
    /// Commands completed in the measured window.
    pub ops: u64,
    /// Length of the measured window.
    pub seconds: f64,
    /// `ops / seconds`.
    pub ops_per_sec: f64,
    /// Median latency of one command, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency of one command, microseconds.
    pub p99_us: f64,
    /// CPU time of the load-generating process per command, microseconds: on 2 cores shared
    /// with redis-server, the client's own cost per command bounds its throughput. Not known
    /// for `redis-benchmark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<f64>,
}

impl Cell {
    /// Summarises what [`drive`] measured over `window`.
    pub fn from_samples(
        contender: &str,
        op: Op,
        concurrency: usize,
        window: Duration,
        measured: Measured,
    ) -> Cell {
        let Stats {
            ops,
            seconds,
            ops_per_sec,
            p50_us,
            p99_us,
            cpu_us_per_op,
        } = Stats::new(window, measured);
        Cell {
            contender: contender.to_owned(),
            op,
            concurrency,
            ops,
            seconds,
            ops_per_sec,
            p50_us,
            p99_us,
            cpu_us_per_op,
        }
    }
}

/// The figures of one measured window, whatever was measured in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Commands completed in the measured window.
    pub ops: u64,
    /// Length of the measured window.
    pub seconds: f64,
    /// `ops / seconds`.
    pub ops_per_sec: f64,
    /// Median latency of one command, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency of one command, microseconds.
    pub p99_us: f64,
    /// CPU time of the load-generating process per command, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<f64>,
}

impl Stats {
    /// Summarises what [`drive`] or [`drive_items`] measured over `window`.
    pub fn new(window: Duration, measured: Measured) -> Stats {
        let Measured { mut samples, cpu } = measured;
        samples.sort_unstable();
        let seconds = window.as_secs_f64();
        Stats {
            ops: samples.len() as u64,
            seconds,
            ops_per_sec: samples.len() as f64 / seconds,
            p50_us: percentile(&samples, 0.50) as f64 / 1e3,
            p99_us: percentile(&samples, 0.99) as f64 / 1e3,
            cpu_us_per_op: cpu
                .filter(|_| !samples.is_empty())
                .map(|cpu| cpu.as_secs_f64() * 1e6 / samples.len() as f64),
        }
    }
}

/// Nearest-rank percentile of sorted samples; 0 for none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A client under test. Each task owns a clone, as an application's tasks would.
pub trait Client: Clone + Send + 'static {
    /// Sends `op` on `key` and waits for the reply.
    fn call(&mut self, op: Op, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A workload addressed by position: a task's commands walk items `0..items` of some
/// keyspace (keys, users, tokens) that the workload prepared, as [`drive`] walks the keys.
pub trait Workload: Clone + Send + 'static {
    /// Runs one operation on item `item` and waits for its result.
    fn call(&mut self, item: usize) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A [`Client`] sending one [`Op`] over the [`keys`].
#[derive(Clone)]
struct ByKey<C> {
    client: C,
    op: Op,
    keys: Arc<[String]>,
}

impl<C: Client> Workload for ByKey<C> {
    async fn call(&mut self, item: usize) -> anyhow::Result<()> {
        self.client.call(self.op, &self.keys[item]).await
    }
}

/// All key names, made once so that formatting keys costs the load generator nothing.
pub fn keys() -> Arc<[String]> {
    (0..KEYSPACE).map(|n| format!("key:{n:012}")).collect()
}

/// What one cell measured.
#[derive(Debug, Default)]
pub struct Measured {
    /// Latency (nanoseconds) of every command that started inside the window.
    pub samples: Vec<u64>,
    /// CPU time of this process over the window, when the platform tells.
    pub cpu: Option<Duration>,
}

/// CPU time of every thread of this process so far (Linux `schedstat`, nanoseconds).
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Runs `concurrency` tasks in a closed loop for `warmup + window`. The first error stops
/// the cell.
pub async fn drive<C: Client>(
    client: &C,
    op: Op,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Measured> {
    let workload = ByKey {
        client: client.clone(),
        op,
        keys: keys(),
    };
    drive_items(&workload, KEYSPACE, concurrency, warmup, window).await
}

/// Stride between the items one task visits: a prime, so it walks every item of any keyspace
/// that is not a multiple of it.
const STRIDE: u64 = 7_919;

/// Runs `concurrency` tasks, each with its own clone of `workload`, in a closed loop over
/// items `0..items` for `warmup + window`. The first error stops the cell.
pub async fn drive_items<W: Workload>(
    workload: &W,
    items: u64,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        items > 0 && !items.is_multiple_of(STRIDE),
        "{items} items: need a keyspace that is not a multiple of {STRIDE}"
    );
    let measure_from = Instant::now() + warmup;
    let end = measure_from + window;
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let mut workload = workload.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            // Tasks walk the items from different offsets with a stride coprime to their count.
            let mut n = (task as u64 * STRIDE) % items;
            loop {
                let start = Instant::now();
                if start >= end {
                    return Ok::<_, anyhow::Error>(samples);
                }
                workload.call(n as usize).await?;
                if start >= measure_from {
                    samples.push(start.elapsed().as_nanos() as u64);
                }
                n = (n + STRIDE) % items;
            }
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = process_cpu();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Measured { samples, cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.50), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn cell_rates_and_microseconds() {
        let cell = Cell::from_samples(
            "raw",
            Op::Get,
            1,
            Duration::from_secs(2),
            Measured {
                samples: vec![3_000, 1_000, 2_000, 4_000],
                cpu: Some(Duration::from_micros(20)),
            },
        );
        assert_eq!(cell.ops, 4);
        assert_eq!(cell.ops_per_sec, 2.0);
        assert_eq!(cell.p50_us, 2.0);
        assert_eq!(cell.p99_us, 4.0);
        assert_eq!(cell.cpu_us_per_op, Some(5.0));
    }
}
