//! The fault schedule: one fault at a time, drawn from the seed, each healed before the next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ChaosConfig;
use super::procs::Procs;
use super::topology::{PROCESSES, Redis, between};

/// One fault as it happened.
#[derive(Debug, Clone)]
pub(crate) struct Episode {
    /// The kind, for counting: `redis-kill`, `gateway-kill`, ...
    pub(crate) kind: &'static str,
    pub(crate) start: Instant,
    /// When it was healed.
    pub(crate) end: Instant,
    /// A fault of a Redis node (kill, pause, restart): acknowledged writes from just before
    /// it until just after it healed may be lost on a Cluster (see [`super::LOSS_WINDOW`]).
    pub(crate) redis_node: bool,
}

/// Faults to apply until stopped.
pub(crate) struct Schedule {
    rng: StdRng,
    redis: Redis,
    procs: Procs,
    gap: Duration,
    started: Instant,
    /// Kinds to draw from; empty: all of the topology's.
    only: Vec<String>,
}

const SINGLE: &[&str] = &[
    "redis-kill",
    "redis-pause",
    "redis-restart",
    "proxy-blackhole",
    "proxy-delay",
    "gateway-kill",
    "worker-kill",
];
const CLUSTER: &[&str] = &[
    "redis-kill",
    "redis-pause",
    "redis-restart",
    "gateway-kill",
    "worker-kill",
];

impl Schedule {
    pub(crate) fn new(config: &ChaosConfig, redis: Redis, procs: Procs) -> Schedule {
        Schedule {
            rng: StdRng::seed_from_u64(config.seed),
            redis,
            procs,
            gap: config.fault_gap,
            started: Instant::now(),
            only: config.faults.clone(),
        }
    }

    /// Applies faults until `stop`, then makes sure everything runs again; hands the
    /// topology and processes back with what was done.
    pub(crate) fn run(mut self, stop: &AtomicBool) -> (Redis, Procs, Vec<Episode>) {
        let mut episodes = Vec::new();
        // Let the load start before the first fault.
        self.sleep(stop, Duration::from_secs(2));
        while !stop.load(Ordering::Acquire) {
            let all = if self.redis.is_cluster() {
                CLUSTER
            } else {
                SINGLE
            };
            let kinds: Vec<&'static str> = all
                .iter()
                .copied()
                .filter(|k| self.only.is_empty() || self.only.iter().any(|o| o == k))
                .collect();
            if kinds.is_empty() {
                eprintln!(
                    "chaos: no fault kind of {:?} applies to this topology",
                    self.only
                );
                break;
            }
            let kind = kinds[self.rng.random_range(0..kinds.len())];
            let start = Instant::now();
            let what = self.apply(kind);
            let end = Instant::now();
            // Unix ms too: event ids carry them, which places a gap against the faults.
            eprintln!(
                "chaos: t={:6.1}s unix_ms={} {what} ({:.1}s)",
                start.duration_since(self.started).as_secs_f64(),
                redis_ssot::clock::unix_ms()
                    - end.elapsed().as_millis() as u64
                    - (end - start).as_millis() as u64,
                (end - start).as_secs_f64()
            );
            episodes.push(Episode {
                kind,
                start,
                end,
                redis_node: kind.starts_with("redis-"),
            });
            if let Err(problem) = self.redis.wait_ready() {
                eprintln!("chaos: cluster did not recover: {problem}");
            }
            let gap = self.gap.mul_f64(self.rng.random_range(0.5..1.5));
            self.sleep(stop, gap);
        }
        (self.redis, self.procs, episodes)
    }

    /// Sleeps `d`, or less once `stop` is set.
    fn sleep(&self, stop: &AtomicBool, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Applies one fault of `kind` and heals it; what was done.
    fn apply(&mut self, kind: &str) -> String {
        let rng = &mut self.rng;
        match kind {
            "redis-kill" | "redis-pause" => {
                let node = rng.random_range(0..self.redis.nodes());
                let role = self.redis.role(node);
                let down = between(rng, 300, 4000);
                let kill = kind == "redis-kill";
                if kill {
                    self.redis.kill(node);
                } else {
                    self.redis.pause(node);
                }
                std::thread::sleep(down);
                if kill {
                    self.redis.restart(node);
                } else {
                    self.redis.resume(node);
                }
                format!("{kind} node {node} ({role}), down {down:?}")
            }
            "redis-restart" => {
                let node = rng.random_range(0..self.redis.nodes());
                let role = self.redis.role(node);
                self.redis.restart(node);
                format!("redis-restart node {node} ({role})")
            }
            "proxy-blackhole" => {
                let target = rng.random_range(0..PROCESSES);
                let down = between(rng, 300, 4000);
                if let Some(proxy) = self.redis.proxy(target) {
                    proxy.blackhole();
                    std::thread::sleep(down);
                    proxy.pass();
                }
                format!("proxy-blackhole {}, {down:?}", process_name(target))
            }
            "proxy-delay" => {
                let target = rng.random_range(0..PROCESSES);
                let delay = between(rng, 20, 600);
                let hold = between(rng, 1000, 5000);
                if let Some(proxy) = self.redis.proxy(target) {
                    proxy.delay(delay);
                    std::thread::sleep(hold);
                    proxy.pass();
                }
                format!(
                    "proxy-delay {} by {delay:?} for {hold:?}",
                    process_name(target)
                )
            }
            "gateway-kill" => {
                let i = rng.random_range(0..2);
                let down = between(rng, 100, 3000);
                self.procs.kill_gateway(i);
                std::thread::sleep(down);
                self.retry_start(|procs| procs.start_gateway(i));
                format!("gateway-kill gateway{i}, down {down:?}")
            }
            "worker-kill" => {
                let down = between(rng, 100, 3000);
                self.procs.kill_worker();
                std::thread::sleep(down);
                self.retry_start(Procs::start_worker);
                format!("worker-kill, down {down:?}")
            }
            other => unreachable!("unknown fault {other}"),
        }
    }

    /// Starts a process again; a port still held a moment after SIGKILL gets retries.
    fn retry_start(&mut self, mut start: impl FnMut(&mut Procs) -> anyhow::Result<()>) {
        for attempt in 0..5 {
            match start(&mut self.procs) {
                Ok(()) => return,
                Err(err) => {
                    eprintln!("chaos: restart attempt {attempt} failed: {err:#}");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
}

fn process_name(i: usize) -> &'static str {
    match i {
        0 => "gateway0",
        1 => "gateway1",
        _ => "worker",
    }
}
