//! `stores`: each typed store's hot call beside the raw command it wraps, at one concurrency,
//! all in one process against one server (`run`), and the Markdown table of the collected
//! results (`report`). Driven by `bench/stores/run.sh`.
//!
//! Every operation ("pair") is measured through the store and through the raw redis-rs
//! equivalent (the baseline of its ratio). Script-backed stores get one more contender, the
//! store's own script sent raw (`EVALSHA` with the SHA the store used, read off `MONITOR` at
//! setup): store ÷ that is the cost of the manager and the store's Rust code, and that ÷ the
//! plain command is the cost of the script on the server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use redis::aio::MultiplexedConnection;
use redis_ssot::{RedisConfig, RedisManager};
use serde::{Deserialize, Serialize};
use ssot_bench::load::{self, Measured, Stats};

mod report;
mod workload;

use self::report::render;
use self::workload::{Shared, Task};

/// Users whose keys the cache, rate-limit and event pairs walk.
const USERS: u64 = 10_000;
/// Distinct tokens the verify pairs walk; well under the store's default cache size (10,000
/// in two generations), so the cached pair hits on every call after warm-up.
const TOKENS: u64 = 1_000;
/// The cache entry every user has.
const CACHE_NAME: &str = "profile";
/// TTL of cache entries, here and in the raw `SET EX`.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// A cached JSON document of 76 bytes, the same for every user.
const PROFILE: &str =
    r#"{"user":"bench","plan":"team","seats":12,"locale":"en-GB","beta":true,"v":1}"#;
/// Name and payload of every appended event.
const EVENT_NAME: &str = "message";
const EVENT_DATA: &str = r#"{"role":"assistant","text":"hello from the benchmark","seq":1}"#;
/// Shared HS256 secret of the token pairs.
const SECRET: &[u8] = b"stores-benchmark-secret-of-32-bytes!";
/// The plain-command stand-in for the GCRA script: a fixed-window counter.
const COUNTER_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Store calls against the raw commands they wrap.
#[derive(Debug, Parser)]
#[command(name = "stores")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure every pair for several rounds; prints one JSON line per cell.
    Run {
        /// The server (the script starts its own; never point this at a shared Redis: the
        /// run writes thousands of `ssot:*` keys).
        #[arg(long)]
        url: String,
        /// Concurrent tasks.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Rounds; each runs every contender of every pair once.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Measured window of each cell, milliseconds.
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Unmeasured warm-up before each window, milliseconds.
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        worker_threads: usize,
        /// The gateway's metrics recorder: on (the real path) or off. The script runs both
        /// and reports them apart.
        #[arg(long, value_enum, default_value = "on")]
        metrics: ssot_bench::Metrics,
    },
    /// Print the Markdown table of JSON-lines result files.
    Report {
        /// Files of JSON lines written by `run`.
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            url,
            concurrency,
            rounds,
            duration_ms,
            warmup_ms,
            worker_threads,
            metrics,
        } => {
            metrics.install()?;
            let settings = Settings {
                url,
                concurrency,
                rounds,
                warmup: Duration::from_millis(warmup_ms),
                window: Duration::from_millis(duration_ms),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads)
                .enable_all()
                .build()?;
            let stdout = std::io::stdout();
            runtime.block_on(run(&settings, |row| {
                let line = serde_json::to_string(row).expect("a row serialises");
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }))
        }
        Command::Report { files } => {
            let mut rows = Vec::new();
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                rows.extend(ssot_bench::report::parse_json_lines::<Row>(&text)?);
            }
            print!("{}", render(&rows));
            Ok(())
        }
    }
}

/// One store operation and what it is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Pair {
    CacheGet,
    CacheSet,
    RateCheck,
    EventsAppend,
    VerifyUncached,
    VerifyCached,
}

impl Pair {
    const ALL: [Pair; 6] = [
        Pair::CacheGet,
        Pair::CacheSet,
        Pair::RateCheck,
        Pair::EventsAppend,
        Pair::VerifyUncached,
        Pair::VerifyCached,
    ];

    fn label(self) -> &'static str {
        match self {
            Pair::CacheGet => "UserCache get",
            Pair::CacheSet => "UserCache set",
            Pair::RateCheck => "RateLimiter check",
            Pair::EventsAppend => "Events append",
            Pair::VerifyUncached => "Tokens verify, uncached",
            Pair::VerifyCached => "Tokens verify, cached",
        }
    }

    /// The store call first; [`Pair::baseline`] among the rest.
    fn contenders(self) -> &'static [Contender] {
        use Contender::*;
        match self {
            Pair::CacheGet => &[CacheGet, CacheGetJson, RawGet],
            Pair::CacheSet => &[CacheSet, RawSetEx, RawCacheSetScript],
            Pair::RateCheck => &[RateCheck, RawCounterScript, RawIncr, RawGcraScript],
            Pair::EventsAppend => &[EventsAppend, RawXaddPublish, RawAppendScript],
            Pair::VerifyUncached => &[VerifyUncached, RawDecodeExists],
            Pair::VerifyCached => &[VerifyCached, RawExists],
        }
    }

    /// The raw command the store call wraps: the denominator of the ratios.
    fn baseline(self) -> Contender {
        match self {
            Pair::CacheGet => Contender::RawGet,
            Pair::CacheSet => Contender::RawSetEx,
            Pair::RateCheck => Contender::RawCounterScript,
            Pair::EventsAppend => Contender::RawXaddPublish,
            Pair::VerifyUncached => Contender::RawDecodeExists,
            Pair::VerifyCached => Contender::RawExists,
        }
    }

    fn items(self) -> u64 {
        match self {
            Pair::VerifyUncached | Pair::VerifyCached => TOKENS,
            _ => USERS,
        }
    }
}

/// One way of doing a pair's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Contender {
    CacheGet,
    CacheGetJson,
    RawGet,
    CacheSet,
    RawSetEx,
    RawCacheSetScript,
    RateCheck,
    RawCounterScript,
    RawIncr,
    RawGcraScript,
    EventsAppend,
    RawXaddPublish,
    RawAppendScript,
    VerifyUncached,
    RawDecodeExists,
    VerifyCached,
    RawExists,
}

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::CacheGet => "store `UserCache::get`",
            Contender::CacheGetJson => "store `UserCache::get_json` (serde struct)",
            Contender::RawGet => "raw `GET`",
            Contender::CacheSet => "store `UserCache::set` (script: SET PX + index ZSET)",
            Contender::RawSetEx => "raw `SET EX`",
            Contender::RawCacheSetScript => "raw `EVALSHA` of the store's script",
            Contender::RateCheck => "store `RateLimiter::check` (GCRA script)",
            Contender::RawCounterScript => "raw `EVALSHA` INCR + PEXPIRE script",
            Contender::RawIncr => "raw `INCR`",
            Contender::RawGcraScript => "raw `EVALSHA` of the store's script",
            Contender::EventsAppend => "store `Events::append` (script)",
            Contender::RawXaddPublish => "raw `XADD` + `PUBLISH`, one pipeline",
            Contender::RawAppendScript => "raw `EVALSHA` of the store's script",
            Contender::VerifyUncached => "store `Tokens::verify`, cache off",
            Contender::RawDecodeExists => "raw `jsonwebtoken::decode` + `EXISTS`",
            Contender::VerifyCached => "store `Tokens::verify`, cache on",
            Contender::RawExists => "raw `EXISTS`",
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    pair: Pair,
    contender: Contender,
    round: usize,
    concurrency: usize,
    #[serde(flatten)]
    stats: Stats,
    /// redis-server CPU time (user + sys, from `INFO cpu`) per operation over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_cpu_us_per_op: Option<f64>,
}

struct Settings {
    url: String,
    concurrency: usize,
    rounds: usize,
    warmup: Duration,
    window: Duration,
}

/// Sets up the stores and the keys, then measures every contender of every pair in each
/// round, in an order rotated every round.
async fn run(settings: &Settings, mut on_row: impl FnMut(&Row)) -> anyhow::Result<()> {
    let client = redis::Client::open(settings.url.as_str())?;
    let raw = client.get_multiplexed_async_connection().await?;
    let mut probe = client.get_multiplexed_async_connection().await?;
    let manager = RedisManager::connect(RedisConfig::for_url(&settings.url)?).await?;
    let shared = Arc::new(Shared::new(manager, &client, raw.clone()).await?);
    let task = |who| Task {
        who,
        shared: Arc::clone(&shared),
        raw: raw.clone(),
    };
    for round in 1..=settings.rounds {
        for pair in Pair::ALL {
            let contenders = pair.contenders();
            for i in 0..contenders.len() {
                let who = contenders[(i + round - 1) % contenders.len()];
                eprintln!(
                    "stores: round {round}/{}: {} / {}",
                    settings.rounds,
                    pair.label(),
                    who.label()
                );
                let (measured, server_cpu) =
                    measure(&task(who), pair.items(), settings, &mut probe)
                        .await
                        .with_context(|| format!("{} / {}", pair.label(), who.label()))?;
                let stats = Stats::new(settings.window, measured);
                let server_cpu_us_per_op = server_cpu
                    .filter(|_| stats.ops > 0)
                    .map(|cpu| cpu * 1e6 / stats.ops as f64);
                on_row(&Row {
                    pair,
                    contender: who,
                    round,
                    concurrency: settings.concurrency,
                    stats,
                    server_cpu_us_per_op,
                });
            }
        }
    }
    Ok(())
}

/// Drives one cell and reads redis-server's CPU time at the start and end of its window.
async fn measure(
    task: &Task,
    items: u64,
    settings: &Settings,
    probe: &mut MultiplexedConnection,
) -> anyhow::Result<(Measured, Option<f64>)> {
    let drive = load::drive_items(
        task,
        items,
        settings.concurrency,
        settings.warmup,
        settings.window,
    );
    let probe_start = async {
        tokio::time::sleep(settings.warmup).await;
        server_cpu(probe).await
    };
    let (measured, before) = tokio::join!(drive, probe_start);
    let measured = measured?;
    let after = server_cpu(probe).await?;
    Ok((measured, Some(after - before?)))
}

/// `used_cpu_user + used_cpu_sys` of the server, seconds.
async fn server_cpu(conn: &mut MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}"))?;
        Ok(line.trim().parse()?)
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}
