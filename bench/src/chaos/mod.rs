//! Randomized faults with exact accounting (issue 12): real `redis-server` processes (one
//! server behind fault proxies, or a 3-master Cluster with replicas), two `ssot serve` and
//! one `ssot worker` as real processes, users publishing over HTTP and chatting over
//! WebSocket, and random faults meanwhile. Afterwards every acknowledged event and chat
//! message is accounted for.
//!
//! # Layout
//! - this file: [`ChaosConfig`], [`run`]: set up, load, faults, settle, account.
//! - `topology`: the Redis topology and its faults (SIGKILL, SIGSTOP/SIGCONT, restart on the
//!   same port, proxy blackhole and delay).
//! - `procs`: the `ssot` processes, started with a clean environment, killed and restarted.
//! - `faults`: the fault schedule, drawn from the seed, on a thread of its own.
//! - `clients`: sockets (reconnecting with `?after=`), publishers, chatters, and what each saw.
//! - `accounting`: the checks and the [`Report`].
//!
//! # What passes
//! - Every event the publish API acknowledged (200) is in the user's stream, unless it was
//!   acknowledged at most [`LOSS_WINDOW`] before a fault of a Redis node on a Cluster (a
//!   master's asynchronous replication: the documented failover window); such losses are
//!   counted and printed, never hidden.
//! - Every socket received every event of its user's stream exactly once, in id order.
//! - Every acknowledged chat message ran exactly once: one `agent_completed` or
//!   `agent_failed` for its message id in the stream, each (job, step) once.
//! - No socket was closed with 1011, and no HTTP answer was a 500.

mod accounting;
mod clients;
mod faults;
mod procs;
mod topology;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use accounting::Report;

/// How long before a fault of a Redis node an acknowledged write may still be lost on a
/// Cluster: Redis replicates asynchronously, so what the master acknowledged but had not
/// sent to its replica is gone when the replica takes over.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);

/// Load without faults after the last one healed, before the load stops.
const QUIET_TAIL: Duration = Duration::from_secs(10);

/// Which Redis the run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One `redis-server` with AOF (`appendfsync always`); each `ssot` process reaches it
    /// through a fault proxy of its own.
    Single,
    /// Three masters with one replica each, AOF on every node; processes connect directly.
    Cluster,
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "single" => Ok(Topology::Single),
            "cluster" => Ok(Topology::Cluster),
            other => Err(format!("unknown topology {other:?}: single or cluster")),
        }
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Topology::Single => "single",
            Topology::Cluster => "cluster",
        })
    }
}

/// One chaos run.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The `ssot` binary to run as gateways and worker.
    pub ssot: PathBuf,
    /// Redis topology.
    pub topology: Topology,
    /// How long load and faults run (settling afterwards comes on top).
    pub duration: Duration,
    /// Seed of the fault schedule and of every client's choices.
    pub seed: u64,
    /// Users; each has `sockets_per_user` sockets spread over both gateways.
    pub users: usize,
    /// Sockets per user (at least 2: one on each gateway).
    pub sockets_per_user: usize,
    /// Publishes per second per user (one publisher per user, sequential).
    pub publish_per_user_per_sec: f64,
    /// Seconds between two chat messages of one user.
    pub chat_every: Duration,
    /// Pause between two faults (drawn up to twice this).
    pub fault_gap: Duration,
    /// How long to wait after the faults for everything to arrive.
    pub settle: Duration,
    /// Fault kinds to draw from (`redis-kill`, `redis-pause`, `redis-restart`,
    /// `proxy-blackhole`, `proxy-delay`, `gateway-kill`, `worker-kill`); empty: every kind
    /// the topology has. Narrowing it helps to replay one failure.
    pub faults: Vec<String>,
    /// `SSOT_LOG` of the `ssot` processes (their logs are kept when the run fails).
    pub ssot_log: String,
}

impl ChaosConfig {
    /// Defaults of `bench/chaos/run.sh`: 16 users × 4 sockets, 2 publishes per second per
    /// user, a chat message per user every 3 s, a fault every 2-8 s.
    pub fn new(ssot: PathBuf, topology: Topology, duration: Duration, seed: u64) -> ChaosConfig {
        ChaosConfig {
            ssot,
            topology,
            duration,
            seed,
            users: 16,
            sockets_per_user: 4,
            publish_per_user_per_sec: 2.0,
            chat_every: Duration::from_secs(3),
            fault_gap: Duration::from_secs(4),
            settle: Duration::from_secs(90),
            faults: Vec::new(),
            ssot_log: "warn".to_owned(),
        }
    }
}

/// A fresh seed from the clock, for runs without `--seed`.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Runs the chaos described by `config` and accounts for everything. Blocking; prints its
/// progress (faults, settling) to stderr. `Err` only when the setup itself fails.
pub fn run(config: &ChaosConfig) -> anyhow::Result<Report> {
    eprintln!(
        "chaos: seed {} topology {} duration {:?} users {} sockets/user {}",
        config.seed, config.topology, config.duration, config.users, config.sockets_per_user
    );
    let started = Instant::now();
    let work = tempfile::Builder::new().prefix("ssot-chaos-").tempdir()?;
    let redis = topology::Redis::start(config.topology);
    let procs = procs::Procs::start(config, work.path(), &redis)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop_load = Arc::new(AtomicBool::new(false));
    let record = clients::Record::new(config);
    let ports = procs.gateway_ports();
    let load = rt.spawn(clients::run_load(
        config.clone(),
        ports.clone(),
        Arc::clone(&record),
        Arc::clone(&stop_load),
    ));

    // Faults until the duration is over; the thread heals everything before it returns.
    let schedule = faults::Schedule::new(config, redis, procs);
    let stop_faults = Arc::new(AtomicBool::new(false));
    let fault_thread = {
        let stop = Arc::clone(&stop_faults);
        std::thread::spawn(move || schedule.run(&stop))
    };
    std::thread::sleep(config.duration);
    stop_faults.store(true, Ordering::Release);
    let (redis, procs, episodes) = fault_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the fault thread panicked (see above)"))?;
    eprintln!(
        "chaos: {} faults applied; load stops, settling up to {:?}",
        episodes.len(),
        config.settle
    );

    // The load goes on a while after the last fault: recovery is judged under live traffic,
    // not only by a final catch-up.
    std::thread::sleep(QUIET_TAIL);
    // No new load; the sockets keep reading until they hold the whole streams.
    stop_load.store(true, Ordering::Release);
    let publishes = rt.block_on(load)?;
    let settle = rt.block_on(accounting::settle(
        &redis,
        &record,
        config.settle,
        config.topology,
    ))?;
    if !settle.complete() {
        for port in &ports {
            eprintln!("chaos: gateway :{port} /ready: {}", procs::ready(*port));
        }
    }
    record.stop_sockets();
    let report = Report::new(
        config,
        &record,
        &settle,
        &episodes,
        publishes,
        started.elapsed(),
    );
    drop(procs);
    drop(redis);
    rt.shutdown_timeout(Duration::from_secs(2));
    if !report.passed() {
        // The processes' logs, for the diagnosis.
        eprintln!("chaos: logs kept in {}", work.keep().display());
    }
    Ok(report)
}
