//! The call path: which lane a call takes, and how its outcome is judged.
//!
//! ## Behavior
//! - A call belongs to a lane (a connection by role) and a failure domain (its breaker).
//! - **Command lane** (`ssot:<app>:command`): short hot-path commands and scripts, and the
//!   health PING. Failures, timeouts and slow calls all count against the breaker.
//! - **Bulk lane** (`ssot:<app>:bulk`, opened on first use): long reads (replay pages, scans,
//!   large ranges). At most `[redis.bulk] concurrency` (default 2) run at once per process;
//!   the rest wait, at most `[redis.bulk] timeout-ms` (default 5000), in this process rather than in Redis. A bulk call is
//!   refused at once unless its breaker is closed, and never serves as a half-open probe. Its
//!   slowness and its timeouts never count against the breaker (a timeout recycles the bulk
//!   connection instead); connection-level and server-busy errors still count.
//! - **Blocking lane** (`ssot:<app>:blocking`, a pool): commands that block server-side by
//!   design; their duration is not slowness.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult,
    ScriptInvocation, ToRedisArgs, Value,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::RedisManager;
use crate::breaker::{CircuitBreaker, Permit};
use crate::domains::{Domain, Domains, Route};
use crate::error::{Error, Result, is_transient_redis};
use crate::link::{Conn, Link};

/// How long callers are told to wait when the bulk lane stayed full.
const BULK_BUSY_RETRY: Duration = Duration::from_millis(100);

/// Which connection a call takes, and so how its outcome is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Command,
    Bulk,
    Blocking,
}

/// The bulk lane: one multiplexed connection opened on first use, and a bound on concurrent
/// calls.
pub(crate) struct BulkLane {
    pub(crate) link: Arc<Link>,
    pub(crate) started: AtomicBool,
    pub(crate) permits: Semaphore,
    pub(crate) timeout: Duration,
}

impl RedisManager {
    /// Runs one command on the command connection.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let route = self.inner.domains.route_of(cmd);
        self.exec(
            Lane::Command,
            &self.inner.command,
            None,
            &self.inner.domains.resolve(route),
            |mut conn| async move { cmd.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs a pipeline (or MULTI/EXEC transaction) on the command connection.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        let domains = &self.inner.domains;
        let route = pipe
            .cmd_iter()
            .map(|cmd| domains.route_of(cmd))
            .find(|route| *route != Route::Keyless)
            .unwrap_or(Route::Keyless);
        self.exec(
            Lane::Command,
            &self.inner.command,
            None,
            &self.inner.domains.resolve(route),
            |mut conn| async move { pipe.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs a Lua script (EVALSHA, loading it on NOSCRIPT). Keys go through KEYS, values
    /// through ARGV; the script text never depends on input.
    pub async fn run_script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let route = script_route(&self.inner.domains, invocation).await;
        self.exec(
            Lane::Command,
            &self.inner.command,
            None,
            &self.inner.domains.resolve(route),
            |mut conn| async move { invocation.invoke_async(&mut conn).await },
        )
        .await
    }

    /// Runs one long read (a large range, a scan page) on the bulk lane: its own connection
    /// and budget, bounded concurrency, and its slowness never opens the breaker that guards
    /// short calls. Fails with [`Error::Unavailable`] when the lane stayed full for the bulk
    /// timeout.
    pub async fn query_bulk<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let route = self.inner.domains.route_of(cmd);
        self.exec_bulk(
            route,
            |mut conn| async move { cmd.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs a long-reading Lua script (a replay page) on the bulk lane; see
    /// [`RedisManager::query_bulk`].
    pub async fn run_script_bulk<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let route = script_route(&self.inner.domains, invocation).await;
        self.exec_bulk(route, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Publishes `payload` on `channel`; returns how many subscribers received it.
    pub async fn publish(&self, channel: &str, payload: impl ToRedisArgs) -> Result<u64> {
        self.query(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    /// Runs a blocking command (e.g. `XREADGROUP ... BLOCK ms`) on a pooled connection of its
    /// own. `block` is how long the command may block server-side; the budget is `block` plus
    /// the command timeout. Waits at most the command timeout for a free connection.
    pub async fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd, block: Duration) -> Result<T> {
        let inner = &self.inner;
        let timeout = inner.config.command_timeout;
        let domain = inner.domains.resolve(inner.domains.route_of(cmd));
        let lent = self.lend(&inner.blocking, &domain).await?;
        let link = lent.link();
        let result = self
            .exec(
                Lane::Blocking,
                link,
                Some(block + timeout),
                &domain,
                |mut conn| async move { cmd.query_async(&mut conn).await },
            )
            .await;
        if let Err(Error::Timeout { .. }) = &result {
            // The server may still hold the connection blocked; start afresh.
            if let Ok((epoch, _)) = link.get() {
                link.mark_down(epoch, "blocking command timed out");
            }
        }
        result
    }

    /// The bulk lane's admission: a permit of the lane (waiting at most the bulk timeout), the
    /// connection opened on first use, then the common call path.
    async fn exec_bulk<T, F, Fut>(&self, route: Route, f: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &self.inner;
        let bulk = &inner.bulk;
        // Refuse before queueing: a caller must not wait for a lane whose calls would be
        // refused anyway.
        let domain = inner.domains.resolve(route);
        domain.breaker.acquire_unprobed()?;
        let _permit = tokio::time::timeout(bulk.timeout, bulk.permits.acquire())
            .await
            .map_err(|_| {
                metrics::counter!("ssot_redis_calls_total", "outcome" => "bulk_busy").increment(1);
                Error::Unavailable {
                    retry_after: BULK_BUSY_RETRY,
                    reason: "bulk lane busy",
                }
            })?
            .expect("the bulk semaphore is never closed");
        if !bulk.started.swap(true, Ordering::AcqRel) {
            inner.tasks.spawn(Arc::clone(&bulk.link).run());
        }
        if !bulk.link.is_up() {
            bulk.link.wait_up(inner.config.connect_timeout).await;
        }
        self.exec(Lane::Bulk, &bulk.link, None, &domain, f).await
    }

    /// PINGs the master of `domain` (the server on one Redis) through the domain's breaker.
    pub(super) async fn ping_domain(&self, domain: &Domain) -> Result<()> {
        let node = self
            .inner
            .domains
            .is_cluster()
            .then(|| domain.name.to_string());
        let ping = redis::cmd("PING");
        let (ping, node) = (&ping, node.as_deref());
        self.exec(
            Lane::Command,
            &self.inner.command,
            None,
            domain,
            |mut conn| async move { conn.on_node(ping, node).await.map(drop) },
        )
        .await
    }

    /// Admission, budget, outcome accounting: the path of every call.
    ///
    /// `budget: None` relies on the connection's own response timeout (the command, bulk and
    /// subscriber connections have one): a second timer per call costs measurable CPU at
    /// high concurrency and decides nothing the connection's does not.
    pub(super) async fn exec<T, F, Fut>(
        &self,
        lane: Lane,
        link: &Link,
        budget: Option<Duration>,
        domain: &Domain,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let domains = &self.inner.domains;
        let breaker = &domain.breaker;
        let admitted = match lane {
            Lane::Bulk => breaker.acquire_unprobed(),
            Lane::Command | Lane::Blocking => breaker.acquire(),
        };
        let permit = admitted.inspect_err(|_| {
            metrics::counter!("ssot_redis_calls_total", "outcome" => "rejected").increment(1);
        })?;
        let mut pending = PendingCall {
            breaker,
            permit: Some(permit),
        };
        let (epoch, conn) = match link.get() {
            Ok(found) => found,
            Err(err) => {
                // The bulk connection is down when it is being recycled after a timeout: that
                // says nothing new about the server, whose health the command lane judges.
                if lane != Lane::Bulk {
                    pending.finish(true, Duration::ZERO);
                }
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
        // Only the command lane's duration says something about the server: a bulk call is
        // long by nature and a blocking call blocks by design.
        let counted = if lane == Lane::Command {
            elapsed
        } else {
            Duration::ZERO
        };
        call_seconds(link.role()).record(elapsed.as_secs_f64());
        let timed_out = |pending: &mut PendingCall<'_>| {
            if lane == Lane::Bulk {
                // A bulk timeout recycles the bulk connection only; the breaker does not
                // hear of it.
                link.mark_down(epoch, "bulk call timed out");
            } else {
                pending.finish(true, elapsed);
            }
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
                if err.is_io_error() || err.is_connection_dropped() || err.is_cluster_error() {
                    // A node failed or slots moved: learn the new owners now, not at the next
                    // health round.
                    domains.request_refresh();
                }
                let failed = is_transient_redis(&err);
                if failed || lane != Lane::Bulk {
                    pending.finish(failed, counted);
                }
                metrics::counter!("ssot_redis_calls_total", "outcome" => "error").increment(1);
                Err(err.into())
            }
            Some(Ok(value)) => {
                // A bulk success is not recorded either: counted, hundreds of replay pages
                // would dilute the failure rate of the short calls the breaker guards.
                if lane != Lane::Bulk {
                    pending.finish(false, counted);
                }
                metrics::counter!("ssot_redis_calls_total", "outcome" => "ok").increment(1);
                Ok(value)
            }
        }
    }
}

/// The route of a script call. A [`ScriptInvocation`] does not show its keys, so on a
/// Cluster it is asked to build its `EVALSHA` against a connection that only notes the route
/// and answers with an error; nothing is sent.
pub(super) async fn script_route(domains: &Domains, invocation: &ScriptInvocation<'_>) -> Route {
    if !domains.is_cluster() {
        return Route::Keyless;
    }
    let mut probe = RouteProbe {
        domains,
        route: Route::Keyless,
    };
    let _: RedisResult<Value> = invocation.invoke_async(&mut probe).await;
    probe.route
}

/// See [`script_route`].
struct RouteProbe<'a> {
    domains: &'a Domains,
    route: Route,
}

impl redis::aio::ConnectionLike for RouteProbe<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.route = self.domains.route_of(cmd);
        Box::pin(async { Err(RedisError::from((ErrorKind::Client, "route probe"))) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a Pipeline,
        _: usize,
        _: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async { Err(RedisError::from((ErrorKind::Client, "route probe"))) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Hands a permit back to the breaker if the call is dropped before it finished, or when its
/// outcome is not to be recorded.
struct PendingCall<'a> {
    breaker: &'a CircuitBreaker,
    permit: Option<Permit>,
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

/// The call-latency histogram of a connection role. The manager's own roles get static
/// keys: a label given as an expression makes `metrics` allocate and hash a fresh key on
/// every call, which showed up in the GET/SET benchmark.
fn call_seconds(role: &'static str) -> metrics::Histogram {
    match role {
        "command" => metrics::histogram!("ssot_redis_call_seconds", "role" => "command"),
        "bulk" => metrics::histogram!("ssot_redis_call_seconds", "role" => "bulk"),
        "blocking" => metrics::histogram!("ssot_redis_call_seconds", "role" => "blocking"),
        "subscriber" => metrics::histogram!("ssot_redis_call_seconds", "role" => "subscriber"),
        other => metrics::histogram!("ssot_redis_call_seconds", "role" => other),
    }
}
