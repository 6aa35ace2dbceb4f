//! The manager: the one place in a process that talks to Redis.
//!
//! # Layout
//! - this file: [`RedisManager`], its construction and the process-wide instance.
//! - `call`: lanes (command, bulk, blocking) and the call path every call takes.
//! - `health`: the health monitor and [`HealthReport`].
//! - `pool`: pools of dedicated connections (blocking commands, acknowledged writes).
//! - `acked`: writes acknowledged by replicas (`WAIT`).

mod acked;
mod call;
mod health;
mod pool;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::config::RedisConfig;
use crate::domains::{DomainHealth, Domains, slot_of_key};
use crate::error::{Error, Result};
use crate::link::Link;
use crate::pubsub::{Dispatcher, Subscription};
use acked::DEFAULT_ACKED_POOL_SIZE;
use call::BulkLane;
pub use health::HealthReport;
use health::health_monitor;
use pool::Pool;

/// A cheap, cloneable handle to the process's one Redis manager.
///
/// ## Behavior
/// - Owns every connection: one multiplexed command connection (`ssot:<app>:command`), one
///   subscriber connection shared by all local subscriptions (`ssot:<app>:subscriber`; on a
///   Cluster one per master), and, each opened on first use: at most `blocking_pool_size`
///   connections for blocking commands (`ssot:<app>:blocking`), one for long reads
///   (`ssot:<app>:bulk`), and 4 for replica-acknowledged writes (`ssot:<app>:acked`).
/// - Every call passes the circuit breaker of its failure domain (the server, or its key's
///   master on a Cluster; see `domains`) and has a budget: `command_timeout` for ordinary
///   commands, the block time plus `command_timeout` for blocking ones, `[bulk] timeout-ms`
///   for long reads (see the `call` module for how each lane's outcomes are judged). While
///   the circuit is open or the connection is down, calls fail at once with
///   [`Error::Unavailable`].
/// - Connections reconnect on their own with exponential backoff and full jitter; the
///   subscriber resubscribes and tells each subscription about the gap.
/// - A health monitor PINGs every `health_interval` (faster while unhealthy; on a Cluster
///   each master, after refreshing `CLUSTER SLOTS`), publishes a [`HealthReport`] with one
///   entry per failure domain, logs state changes and exports metrics.
/// - Background tasks stop when the last handle is dropped.
#[derive(Clone)]
pub struct RedisManager {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    config: RedisConfig,
    domains: Domains,
    command: Arc<Link>,
    subscriber: Arc<Link>,
    dispatcher: Arc<Dispatcher>,
    blocking: Pool,
    acked: Pool,
    bulk: BulkLane,
    health: watch::Sender<HealthReport>,
    tasks: TaskGuard,
}

/// Aborts background tasks when the manager goes away.
#[derive(Default)]
struct TaskGuard(Mutex<Vec<AbortHandle>>);

impl TaskGuard {
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut).abort_handle();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for handle in self
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            handle.abort();
        }
    }
}

impl RedisManager {
    /// Builds a manager and starts connecting in the background. Must run inside a Tokio
    /// runtime. Fails only on configuration problems; use [`RedisManager::connect`] or
    /// [`RedisManager::wait_ready`] to wait for Redis.
    pub fn new(config: RedisConfig) -> Result<RedisManager> {
        let domains = Domains::new(config.breaker.clone(), config.is_cluster());
        let dispatcher = Arc::new(Dispatcher::default());
        let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
        let command = Link::new(&config, "command", Some(config.command_timeout), None, None);
        let subscriber = Link::new(
            &config,
            "subscriber",
            Some(config.command_timeout),
            Some(push_tx),
            Some(dispatcher.on_connect()),
        );
        let size = config.blocking_pool_size;
        let blocking = Pool::new(&config, "blocking", size);
        let acked = Pool::new(&config, "acked", DEFAULT_ACKED_POOL_SIZE);
        let bulk = BulkLane {
            link: Link::new(&config, "bulk", Some(config.bulk.timeout), None, None),
            started: AtomicBool::new(false),
            permits: Semaphore::new(config.bulk.concurrency),
            timeout: config.bulk.timeout,
        };
        let id = format!("{:08x}-{:016x}", std::process::id(), rand::random::<u64>());
        let (health, _) = watch::channel(HealthReport {
            instance_id: id.clone(),
            healthy: false,
            reachable: false,
            latency_ms: None,
            breaker: BreakerState::Closed,
            subscriber_up: false,
            reconnects: 0,
            last_error: None,
            domains: Vec::new(),
            checked_at_ms: crate::clock::unix_ms(),
        });
        let tasks = TaskGuard::default();
        tasks.spawn(Arc::clone(&command).run());
        tasks.spawn(Arc::clone(&subscriber).run());
        tasks.spawn(Arc::clone(&dispatcher).run(Arc::clone(&subscriber), push_rx));
        let inner = Arc::new(Inner {
            id,
            config,
            domains,
            command,
            subscriber,
            dispatcher,
            blocking,
            acked,
            bulk,
            health,
            tasks,
        });
        inner.tasks.spawn(health_monitor(Arc::downgrade(&inner)));
        metrics::gauge!("ssot_breaker_state").set(BreakerState::Closed.gauge());
        Ok(RedisManager { inner })
    }

    /// Builds a manager and waits up to the connect timeout for the command connection.
    pub async fn connect(config: RedisConfig) -> Result<RedisManager> {
        let manager = RedisManager::new(config)?;
        let budget = manager.inner.config.connect_timeout;
        if !manager.wait_ready(budget).await {
            return Err(Error::Unavailable {
                retry_after: manager.inner.config.reconnect_max_delay,
                reason: "could not connect within connect-timeout-ms",
            });
        }
        Ok(manager)
    }

    /// Waits until the command and subscriber connections are up; false after `budget`.
    pub async fn wait_ready(&self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        for link in [&self.inner.command, &self.inner.subscriber] {
            let left = deadline.saturating_duration_since(Instant::now());
            if !link.wait_up(left).await {
                return false;
            }
        }
        true
    }

    /// The instance id: equal for every handle of the same manager.
    pub fn instance_id(&self) -> &str {
        &self.inner.id
    }

    /// The settings in force.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The state of the process-wide circuit breaker now: the server's on one Redis; on a
    /// Cluster the one of keyless calls (see [`RedisManager::breaker_state_for`]).
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.domains.process().breaker.state()
    }

    /// The state of the breaker that guards calls on `key` (its master's on a Cluster).
    pub fn breaker_state_for(&self, key: &str) -> BreakerState {
        let route = match self.inner.domains.is_cluster() {
            true => crate::domains::Route::Slot(slot_of_key(key.as_bytes())),
            false => crate::domains::Route::Keyless,
        };
        self.inner.domains.resolve(route).breaker.state()
    }

    /// Follows the process-wide circuit breaker state.
    pub fn watch_breaker(&self) -> watch::Receiver<BreakerState> {
        self.inner.domains.process().breaker.watch()
    }

    /// Health of each failure domain now: the server, or each master of a Cluster.
    pub fn domains(&self) -> Vec<DomainHealth> {
        self.inner.domains.report()
    }

    /// The latest health report.
    pub fn health(&self) -> HealthReport {
        self.inner.health.borrow().clone()
    }

    /// Follows health reports (one per health check).
    pub fn watch_health(&self) -> watch::Receiver<HealthReport> {
        self.inner.health.subscribe()
    }

    /// True while the subscriber connection is up now (the health report says what it was at
    /// the last health check).
    pub fn subscriber_up(&self) -> bool {
        self.inner.subscriber.is_up()
    }

    /// Names of the connections this manager holds open right now.
    pub fn open_connections(&self) -> Vec<String> {
        let mut names = Vec::new();
        for link in [
            &self.inner.command,
            &self.inner.subscriber,
            &self.inner.bulk.link,
        ]
        .into_iter()
        .chain(self.inner.blocking.links().iter())
        .chain(self.inner.acked.links().iter())
        {
            if link.is_up() {
                names.push(link.name().to_owned());
            }
        }
        names
    }

    /// Number of channels with at least one local subscription.
    pub fn subscribed_channels(&self) -> usize {
        self.inner.dispatcher.channel_count()
    }

    /// Subscribes to `channel` over the shared subscriber connection. Returns after Redis
    /// confirmed the subscription when connected; while disconnected it returns at once and
    /// the subscription starts (with a [`crate::SubscriptionEvent::Gap`]) after reconnect.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        self.inner
            .dispatcher
            .subscribe(&self.inner.subscriber, channel, false)
            .await
    }

    /// Like [`RedisManager::subscribe`], for a channel named like a key (its hash tag picks
    /// its slot) that is published with `SPUBLISH` on a Cluster: it is subscribed with
    /// `SSUBSCRIBE` on the master owning its slot, follows the slot when it moves, and costs
    /// the other shards nothing. On one server it is an ordinary channel.
    pub async fn subscribe_sharded(&self, channel: &str) -> Result<Subscription> {
        let sharded = self.inner.config.is_cluster();
        self.inner
            .dispatcher
            .subscribe(&self.inner.subscriber, channel, sharded)
            .await
    }
}

impl std::fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisManager")
            .field("instance_id", &self.inner.id)
            .field("config", &self.inner.config)
            .finish()
    }
}

static GLOBAL: OnceLock<RedisManager> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());

/// Sets the process-wide manager from `config`. A second call with the same settings returns
/// the existing manager; with different settings it is an error.
pub fn init(config: RedisConfig) -> Result<RedisManager> {
    let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = GLOBAL.get() {
        if existing.inner.config == config {
            return Ok(existing.clone());
        }
        return Err(Error::config(
            "redis",
            "the process-wide manager is already initialised with different settings",
        ));
    }
    let manager = RedisManager::new(config)?;
    let _ = GLOBAL.set(manager.clone());
    Ok(manager)
}

/// The process-wide manager, initialised from the environment on first use if [`init`] was
/// not called. Fails on invalid settings.
pub fn try_manager() -> Result<RedisManager> {
    if let Some(existing) = GLOBAL.get() {
        return Ok(existing.clone());
    }
    let config = RedisConfig::from_env()?;
    let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = GLOBAL.get() {
        return Ok(existing.clone());
    }
    let manager = RedisManager::new(config)?;
    let _ = GLOBAL.set(manager.clone());
    Ok(manager)
}

/// The process-wide manager: the canonical entry point. Every component receives a clone.
///
/// # Panics
/// When not initialised with [`init`] and the environment holds invalid Redis settings, or
/// when first called outside a Tokio runtime.
pub fn manager() -> RedisManager {
    match try_manager() {
        Ok(manager) => manager,
        Err(err) => panic!("redis_ssot::manager(): {err}"),
    }
}
