//! The manager: the one place in a process that talks to Redis.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, ScriptInvocation, ToRedisArgs};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::config::RedisConfig;
use crate::error::{Error, Result, is_transient_redis};
use crate::link::{Conn, Link};
use crate::pubsub::{Dispatcher, Subscription};

/// Health monitor interval while something is wrong, so recovery is seen quickly.
const FAST_HEALTH_INTERVAL: Duration = Duration::from_millis(100);

/// A cheap, cloneable handle to the process's one Redis manager.
///
/// ## Behavior
/// - Owns every connection: one multiplexed command connection (`ssot:<app>:command`), one
///   subscriber connection shared by all local subscriptions (`ssot:<app>:subscriber`), and at
///   most `blocking_pool_size` connections for blocking commands (`ssot:<app>:blocking`),
///   opened on first use.
/// - Every call passes the circuit breaker and has a budget: `command_timeout` for ordinary
///   commands, the block time plus `command_timeout` for blocking ones. While the circuit is
///   open or the connection is down, calls fail at once with [`Error::Unavailable`].
/// - Connections reconnect on their own with exponential backoff and full jitter; the
///   subscriber resubscribes and tells each subscription about the gap.
/// - A health monitor PINGs every `health_interval` (faster while unhealthy), publishes a
///   [`HealthReport`], logs state changes and exports metrics.
/// - Background tasks stop when the last handle is dropped.
#[derive(Clone)]
pub struct RedisManager {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    config: RedisConfig,
    breaker: Arc<CircuitBreaker>,
    command: Arc<Link>,
    subscriber: Arc<Link>,
    dispatcher: Arc<Dispatcher>,
    blocking: BlockingPool,
    health: watch::Sender<HealthReport>,
    tasks: TaskGuard,
}

/// A snapshot of the manager's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The manager instance.
    pub instance_id: String,
    /// True when the command connection is up, the last PING answered and the circuit is closed.
    pub healthy: bool,
    /// True when the last PING answered.
    pub reachable: bool,
    /// Round trip of the last PING, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Circuit breaker state.
    pub breaker: BreakerState,
    /// True when the subscriber connection is up.
    pub subscriber_up: bool,
    /// Reconnects of the command and subscriber connections since start.
    pub reconnects: u64,
    /// The last PING error, if the last PING failed.
    pub last_error: Option<String>,
    /// When this report was made (Unix milliseconds).
    pub checked_at_ms: u64,
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

/// Connections for blocking commands, each opened on first use.
struct BlockingPool {
    links: Vec<Arc<Link>>,
    started: Vec<AtomicBool>,
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
}

impl RedisManager {
    /// Builds a manager and starts connecting in the background. Must run inside a Tokio
    /// runtime. Fails only on configuration problems; use [`RedisManager::connect`] or
    /// [`RedisManager::wait_ready`] to wait for Redis.
    pub fn new(config: RedisConfig) -> Result<RedisManager> {
        let breaker = Arc::new(CircuitBreaker::new(config.breaker.clone()));
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
        let blocking = BlockingPool {
            links: (0..size)
                .map(|_| Link::new(&config, "blocking", None, None, None))
                .collect(),
            started: (0..size).map(|_| AtomicBool::new(false)).collect(),
            free: Mutex::new((0..size).rev().collect()),
            permits: Semaphore::new(size),
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
            checked_at_ms: now_ms(),
        });
        let tasks = TaskGuard::default();
        tasks.spawn(Arc::clone(&command).run());
        tasks.spawn(Arc::clone(&subscriber).run());
        tasks.spawn(Arc::clone(&dispatcher).run(push_rx));
        let inner = Arc::new(Inner {
            id,
            config,
            breaker,
            command,
            subscriber,
            dispatcher,
            blocking,
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

    /// The circuit breaker state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// Follows the circuit breaker state.
    pub fn watch_breaker(&self) -> watch::Receiver<BreakerState> {
        self.inner.breaker.watch()
    }

    /// The latest health report.
    pub fn health(&self) -> HealthReport {
        self.inner.health.borrow().clone()
    }

    /// Follows health reports (one per health check).
    pub fn watch_health(&self) -> watch::Receiver<HealthReport> {
        self.inner.health.subscribe()
    }

    /// Names of the connections this manager holds open right now.
    pub fn open_connections(&self) -> Vec<String> {
        let mut names = Vec::new();
        for link in [&self.inner.command, &self.inner.subscriber]
            .into_iter()
            .chain(self.inner.blocking.links.iter())
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

    /// Runs one command on the command connection.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.exec(&self.inner.command, None, true, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// Runs a pipeline (or MULTI/EXEC transaction) on the command connection.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        self.exec(&self.inner.command, None, true, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    /// Runs a Lua script (EVALSHA, loading it on NOSCRIPT). Keys go through KEYS, values
    /// through ARGV; the script text never depends on input.
    pub async fn run_script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        self.exec(&self.inner.command, None, true, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Publishes `payload` on `channel`; returns how many subscribers received it.
    pub async fn publish(&self, channel: &str, payload: impl ToRedisArgs) -> Result<u64> {
        self.query(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    /// Subscribes to `channel` over the shared subscriber connection. Returns after Redis
    /// confirmed the subscription when connected; while disconnected it returns at once and
    /// the subscription starts (with a [`crate::SubscriptionEvent::Gap`]) after reconnect.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        self.inner
            .dispatcher
            .subscribe(&self.inner.subscriber, channel)
            .await
    }

    /// Runs a blocking command (e.g. `XREADGROUP ... BLOCK ms`) on a pooled connection of its
    /// own. `block` is how long the command may block server-side; the budget is `block` plus
    /// the command timeout. Waits at most the command timeout for a free connection.
    pub async fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd, block: Duration) -> Result<T> {
        let inner = &self.inner;
        let pool = &inner.blocking;
        let timeout = inner.config.command_timeout;
        let _permit = tokio::time::timeout(timeout, pool.permits.acquire())
            .await
            .map_err(|_| Error::Unavailable {
                retry_after: Duration::from_millis(50),
                reason: "blocking pool exhausted",
            })?
            .expect("the pool semaphore is never closed");
        let slot = SlotGuard::take(pool);
        let link = &pool.links[slot.index];
        if !pool.started[slot.index].swap(true, Ordering::AcqRel) {
            inner.tasks.spawn(Arc::clone(link).run());
        }
        if !link.is_up() && !link.wait_up(inner.config.connect_timeout).await {
            // Let the breaker judge an unreachable server like any other call.
            self.exec(link, Some(timeout), false, |_| async { Ok(()) })
                .await?;
        }
        let result = self
            .exec(link, Some(block + timeout), false, |mut conn| async move {
                cmd.query_async(&mut conn).await
            })
            .await;
        if let Err(Error::Timeout { .. }) = &result {
            // The server may still hold the connection blocked; start afresh.
            if let Ok((epoch, _)) = link.get() {
                link.mark_down(epoch, "blocking command timed out");
            }
        }
        result
    }

    /// Admission, budget, outcome accounting: the path of every call.
    ///
    /// `budget: None` relies on the connection's own response timeout (the command and
    /// subscriber connections have one): a second timer per call costs measurable CPU at
    /// high concurrency and decides nothing the connection's does not.
    async fn exec<T, F, Fut>(
        &self,
        link: &Link,
        budget: Option<Duration>,
        slow_counts: bool,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let breaker = &self.inner.breaker;
        let permit = breaker.acquire().inspect_err(|_| {
            metrics::counter!("ssot_redis_calls_total", "outcome" => "rejected").increment(1);
        })?;
        let mut pending = PendingCall {
            breaker,
            permit: Some(permit),
        };
        let (epoch, conn) = match link.get() {
            Ok(found) => found,
            Err(err) => {
                pending.finish(true, Duration::ZERO);
                metrics::counter!("ssot_redis_calls_total", "outcome" => "down").increment(1);
                return Err(err);
            }
        };
        let start = Instant::now();
        let outcome = match budget {
            Some(budget) => tokio::time::timeout(budget, f(conn)).await.ok(),
            None => Some(f(conn).await),
        };
        let elapsed = start.elapsed();
        let counted = if slow_counts { elapsed } else { Duration::ZERO };
        call_seconds(link.role()).record(elapsed.as_secs_f64());
        let timed_out = |pending: &mut PendingCall<'_>| {
            pending.finish(true, elapsed);
            metrics::counter!("ssot_redis_calls_total", "outcome" => "timeout").increment(1);
            Error::Timeout {
                after: budget.or(link.response_timeout()).unwrap_or(elapsed),
            }
        };
        match outcome {
            None => Err(timed_out(&mut pending)),
            Some(Err(err)) if err.is_timeout() => Err(timed_out(&mut pending)),
            Some(Err(err)) => {
                link.observe_error(epoch, &err);
                pending.finish(is_transient_redis(&err), counted);
                metrics::counter!("ssot_redis_calls_total", "outcome" => "error").increment(1);
                Err(err.into())
            }
            Some(Ok(value)) => {
                pending.finish(false, counted);
                metrics::counter!("ssot_redis_calls_total", "outcome" => "ok").increment(1);
                Ok(value)
            }
        }
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

/// Hands a permit back to the breaker if the call is dropped before it finished.
struct PendingCall<'a> {
    breaker: &'a CircuitBreaker,
    permit: Option<crate::breaker::Permit>,
}

impl PendingCall<'_> {
    fn finish(&mut self, failed: bool, elapsed: Duration) {
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, failed, elapsed);
        }
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.release(permit);
        }
    }
}

/// A blocking-pool slot, returned on drop.
struct SlotGuard<'a> {
    pool: &'a BlockingPool,
    index: usize,
}

impl<'a> SlotGuard<'a> {
    fn take(pool: &'a BlockingPool) -> Self {
        let index = pool
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .expect("a semaphore permit guarantees a free slot");
        SlotGuard { pool, index }
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.index);
    }
}

/// The call-latency histogram of a connection role. The manager's own roles get static
/// keys: a label given as an expression makes `metrics` allocate and hash a fresh key on
/// every call, which showed up in the GET/SET benchmark.
fn call_seconds(role: &'static str) -> metrics::Histogram {
    match role {
        "command" => metrics::histogram!("ssot_redis_call_seconds", "role" => "command"),
        "blocking" => metrics::histogram!("ssot_redis_call_seconds", "role" => "blocking"),
        "subscriber" => metrics::histogram!("ssot_redis_call_seconds", "role" => "subscriber"),
        other => metrics::histogram!("ssot_redis_call_seconds", "role" => other),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// PINGs, detects hung connections, drives breaker recovery and publishes health.
async fn health_monitor(inner: std::sync::Weak<Inner>) {
    let (mut command_up, mut breaker_rx) = match inner.upgrade() {
        Some(inner) => (inner.command.watch_up(), inner.breaker.watch()),
        None => return,
    };
    let mut was_healthy: Option<bool> = None;
    // Give the first connection its chance before judging, so a normal start does not log
    // "unhealthy".
    if let Some(this) = inner.upgrade() {
        let (command, budget) = (Arc::clone(&this.command), this.config.connect_timeout);
        drop(this);
        command.wait_up(budget).await;
    }
    loop {
        let Some(this) = inner.upgrade() else { return };
        let manager = RedisManager { inner: this };
        let inner_ref = &manager.inner;
        // Ping.
        let start = Instant::now();
        let ping: Result<String> = manager.query(&redis::cmd("PING")).await;
        let latency = start.elapsed();
        if let Err(Error::Timeout { .. }) = &ping
            && let Ok((epoch, _)) = inner_ref.command.get()
        {
            inner_ref.command.mark_down(epoch, "health ping timed out");
        }
        check_subscriber(inner_ref).await;
        if inner_ref.config.is_cluster() {
            rename_cluster_links(inner_ref).await;
        }
        let breaker = inner_ref.breaker.state();
        let reachable = ping.is_ok();
        let healthy = reachable && breaker == BreakerState::Closed && inner_ref.command.is_up();
        if reachable {
            metrics::histogram!("ssot_redis_ping_seconds").record(latency.as_secs_f64());
        }
        metrics::gauge!("ssot_redis_up").set(if healthy { 1.0 } else { 0.0 });
        // Also set here, not only on transitions, so a recorder installed after the manager
        // was built still shows it.
        metrics::gauge!("ssot_breaker_state").set(breaker.gauge());
        if was_healthy != Some(healthy) {
            match (&ping, healthy) {
                (_, true) => {
                    tracing::info!(latency_ms = latency.as_secs_f64() * 1e3, "redis healthy")
                }
                (Err(err), false) => {
                    tracing::warn!(cause = %err, breaker = breaker.as_str(), "redis unhealthy")
                }
                (Ok(_), false) => tracing::warn!(breaker = breaker.as_str(), "redis unhealthy"),
            }
            was_healthy = Some(healthy);
        }
        inner_ref.health.send_replace(HealthReport {
            instance_id: inner_ref.id.clone(),
            healthy,
            reachable,
            latency_ms: reachable.then_some(latency.as_secs_f64() * 1e3),
            breaker,
            subscriber_up: inner_ref.subscriber.is_up(),
            reconnects: inner_ref.command.reconnects() + inner_ref.subscriber.reconnects(),
            // A PING fails with "connection down" while the link reconnects; the cause of the
            // last connection attempt (refused, TLS certificate, auth) is what to show.
            last_error: ping.err().map(|e| match inner_ref.command.connect_error() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }),
            checked_at_ms: now_ms(),
        });
        let interval = if healthy {
            inner_ref.config.health_interval
        } else {
            inner_ref.config.health_interval.min(FAST_HEALTH_INTERVAL)
        };
        let breaker_handle = Arc::clone(&inner_ref.breaker);
        drop(manager);
        // Sleep, but wake at once when the command connection comes back (the circuit may
        // probe now) or the breaker changes.
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = command_up.changed() => {
                if changed.is_err() { return; }
                if *command_up.borrow_and_update() {
                    breaker_handle.on_reconnect();
                }
            }
            changed = breaker_rx.changed() => {
                if changed.is_err() { return; }
                breaker_rx.borrow_and_update();
            }
        }
    }
}

/// A subscriber connection that does not answer PING is replaced (and resubscribed).
async fn check_subscriber(inner: &Inner) {
    let Ok((epoch, mut conn)) = inner.subscriber.get() else {
        return;
    };
    let ping = tokio::time::timeout(
        inner.config.command_timeout,
        conn.req_packed_command(&redis::cmd("PING")),
    )
    .await;
    match ping {
        Err(_) => inner.subscriber.mark_down(epoch, "health ping timed out"),
        Ok(Err(err)) => inner.subscriber.observe_error(epoch, &err),
        Ok(Ok(_)) => {}
    }
}

/// Cluster node connections may be replaced inside the cluster client; name them again.
async fn rename_cluster_links(inner: &Inner) {
    for link in [&inner.command, &inner.subscriber] {
        if let Ok((_, mut conn)) = link.get() {
            let cmd = redis::cmd("CLIENT").arg("SETNAME").arg(link.name()).clone();
            let _ =
                tokio::time::timeout(inner.config.command_timeout, conn.on_all_nodes(&cmd)).await;
        }
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
