//! What every request and socket of one gateway shares.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use redis_ssot::stores::events::Events;
use redis_ssot::stores::jobs::Jobs;
use redis_ssot::stores::presence::Presence;
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use redis_ssot::stores::tokens::Tokens;
use redis_ssot::{BreakerState, RedisManager, UserId, UserScope};
use tokio::sync::{Notify, Semaphore, watch};

use crate::config::{Budgets, GatewayConfig};

/// Shared state of one gateway instance.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    /// The address actually bound (`config.listen` may name port 0).
    pub(crate) local_addr: std::net::SocketAddr,
    pub(crate) manager: RedisManager,
    pub(crate) events: Events,
    pub(crate) tokens: Tokens,
    pub(crate) limiter: RateLimiter,
    pub(crate) inbound_limit: Limit,
    pub(crate) message_limit: Limit,
    pub(crate) jobs: Jobs,
    pub(crate) presence: Presence,
    /// This gateway's name in presence reports: the manager's instance id and the port.
    pub(crate) gateway_id: String,
    /// True while Redis is usable (breaker closed and health ok); changes only on transitions.
    /// Sockets read their own failure domain instead ([`Shared::redis_ok_for`]).
    pub(crate) redis_ok: watch::Receiver<bool>,
    /// Bumped when `redis_ok` or a Cluster master's breaker changes: wakes sockets to check
    /// their own failure domain.
    pub(crate) redis_changes: watch::Receiver<u64>,
    /// Becomes true when the gateway shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) sockets: Arc<SocketCount>,
    /// Replay slots of the whole process (`max-replays`).
    pub(crate) replays: Arc<Semaphore>,
    pub(crate) metrics: GatewayMetrics,
    pub(crate) prometheus: Option<PrometheusHandle>,
    pub(crate) started: Instant,
}

/// Open sockets, in all and per user, and a signal when the last one closes.
#[derive(Default)]
pub(crate) struct SocketCount {
    open: AtomicUsize,
    idle: Notify,
    /// Open sockets per user; users without one are not kept.
    per_user: Mutex<HashMap<UserId, UserSockets>>,
}

/// One user's open sockets on this gateway.
struct UserSockets {
    open: usize,
    /// Replay slots shared by the user's sockets (`max-replays-per-user`).
    replays: Arc<Semaphore>,
}

/// Why a socket could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The process holds `max-connections` sockets.
    Process,
    /// The user holds `max-sockets-per-user` sockets.
    User,
}

impl SocketCount {
    /// Reserves a slot for `user` if the process holds fewer than `max` sockets and the
    /// user fewer than `per_user`.
    pub(crate) fn try_open(
        self: &Arc<Self>,
        user: &UserId,
        max: usize,
        budgets: &Budgets,
    ) -> Result<SocketSlot, Full> {
        let mut current = self.open.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return Err(Full::Process);
            }
            match self.open.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        // From here on the slot exists: dropping it gives the process count back.
        let mut slot = SocketSlot {
            count: Arc::clone(self),
            user: None,
        };
        let mut users = self.users_lock();
        let sockets = users.entry(user.clone()).or_insert_with(|| UserSockets {
            open: 0,
            replays: Arc::new(Semaphore::new(budgets.replays_per_user)),
        });
        if sockets.open >= budgets.sockets_per_user {
            return Err(Full::User);
        }
        sockets.open += 1;
        slot.user = Some((user.clone(), Arc::clone(&sockets.replays)));
        Ok(slot)
    }

    fn users_lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, UserSockets>> {
        self.per_user.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Open sockets of each user holding at least one (for the presence report).
    pub(crate) fn per_user(&self) -> HashMap<UserId, usize> {
        self.users_lock()
            .iter()
            .filter(|(_, sockets)| sockets.open > 0)
            .map(|(user, sockets)| (user.clone(), sockets.open))
            .collect()
    }

    /// Waits until no socket is open.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One open socket; releases its slot (the process's and its user's) on drop.
pub(crate) struct SocketSlot {
    count: Arc<SocketCount>,
    /// Set once the user's count was taken: the user and their replay slots.
    user: Option<(UserId, Arc<Semaphore>)>,
}

impl SocketSlot {
    /// The replay slots of the socket's user.
    pub(crate) fn user_replays(&self) -> Arc<Semaphore> {
        let (_, replays) = self.user.as_ref().expect("a handed-out slot has its user");
        Arc::clone(replays)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Some((user, _)) = &self.user {
            let mut users = self.count.users_lock();
            if let Some(sockets) = users.get_mut(user) {
                sockets.open -= 1;
                if sockets.open == 0 {
                    users.remove(user);
                }
            }
        }
        if self.count.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.count.idle.notify_waiters();
        }
    }
}

/// A per-user or per-socket budget (issue 12), as labelled in metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Budget {
    /// `max-sockets-per-user`.
    SocketsPerUser,
    /// No replay slot (`max-replays-per-user`, `max-replays`) within `replay-wait-ms`.
    Replays,
    /// A socket fell more than `max-queued-bytes` behind.
    QueuedBytes,
    /// A user's chat jobs in the agent queue reached `agent-queue-max-per-user`.
    JobsPerUser,
}

impl Budget {
    fn as_str(self) -> &'static str {
        match self {
            Budget::SocketsPerUser => "sockets_per_user",
            Budget::Replays => "replays",
            Budget::QueuedBytes => "queued_bytes",
            Budget::JobsPerUser => "jobs_per_user",
        }
    }
}

/// Metric handles, resolved once.
pub(crate) struct GatewayMetrics {
    pub(crate) connections: Gauge,
    pub(crate) delivered: Counter,
    pub(crate) replayed: Counter,
    pub(crate) published: Counter,
    pub(crate) publish_seconds: Histogram,
    pub(crate) rejected_handshakes: Counter,
}

impl GatewayMetrics {
    pub(crate) fn new() -> GatewayMetrics {
        GatewayMetrics {
            connections: metrics::gauge!("ssot_gateway_connections"),
            delivered: metrics::counter!("ssot_gateway_events_delivered_total"),
            replayed: metrics::counter!("ssot_gateway_events_replayed_total"),
            published: metrics::counter!("ssot_gateway_events_published_total"),
            publish_seconds: metrics::histogram!("ssot_gateway_publish_seconds"),
            rejected_handshakes: metrics::counter!("ssot_gateway_rejected_handshakes_total"),
        }
    }

    /// Counts a refusal by the budget that was exceeded.
    pub(crate) fn refused(budget: Budget) {
        metrics::counter!("ssot_gateway_budget_refusals_total", "budget" => budget.as_str())
            .increment(1);
    }

    /// Counts a close by its code (`dropped connections by close code`). Codes chosen by
    /// clients are any number: only the RFC 6455 codes and the gateway's own become labels,
    /// the rest is `other`, so a client cannot grow the number of series.
    pub(crate) fn closed(code: u16) {
        let known = (1000..=1015).contains(&code)
            || crate::protocol::CloseCode::ALL
                .iter()
                .any(|c| c.code() == code);
        let label = if known {
            code.to_string()
        } else {
            "other".to_owned()
        };
        metrics::counter!("ssot_gateway_closes_total", "code" => label).increment(1);
    }
}

/// Follows the manager and reduces its health to what sockets need, changing only on
/// transitions so thousands of sockets are woken only when Redis goes away or comes back:
/// `ok`, one bit for the whole process (`/ready`, `/health`), and `changes`, bumped whenever
/// `ok` or (on a Cluster) any master's breaker changes. A socket woken by `changes` reads
/// its own failure domain with [`Shared::redis_ok_for`].
pub(crate) fn watch_redis(
    manager: &RedisManager,
) -> (
    watch::Receiver<bool>,
    watch::Receiver<u64>,
    tokio::task::JoinHandle<()>,
) {
    let initial = manager.breaker_state() == BreakerState::Closed && manager.health().healthy;
    let (tx, rx) = watch::channel(initial);
    let (changes_tx, changes_rx) = watch::channel(0u64);
    let mut health = manager.watch_health();
    let mut breaker = manager.watch_breaker();
    let manager = manager.clone();
    let task = tokio::spawn(async move {
        let mut seen = domain_breakers(&manager);
        loop {
            let state = *breaker.borrow_and_update();
            // The recorder may have been installed after the manager set this gauge.
            metrics::gauge!("ssot_breaker_state").set(state.gauge());
            let ok = state == BreakerState::Closed && health.borrow_and_update().healthy;
            let ok_changed = tx.send_if_modified(|current| {
                let changed = *current != ok;
                *current = ok;
                changed
            });
            let now = domain_breakers(&manager);
            if ok_changed || now != seen {
                seen = now;
                changes_tx.send_modify(|n| *n += 1);
            }
            tokio::select! {
                r = health.changed() => if r.is_err() { return },
                r = breaker.changed() => if r.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    (rx, changes_rx, task)
}

/// Each master's breaker on a Cluster (empty on one server, where `ok` says it all).
fn domain_breakers(manager: &RedisManager) -> Vec<(String, BreakerState)> {
    if !manager.config().is_cluster() {
        return Vec::new();
    }
    manager
        .domains()
        .into_iter()
        .map(|d| (d.node, d.breaker))
        .collect()
}

impl Shared {
    /// True while Redis is usable for `scope`'s user: on one server, the process-wide bit;
    /// on a Cluster, the breaker of the master that owns the user's slot, so users on
    /// healthy masters are not told `degraded` because another master failed.
    pub(crate) fn redis_ok_for(&self, scope: &UserScope) -> bool {
        if !self.manager.config().is_cluster() {
            return *self.redis_ok.borrow();
        }
        // Every key of the user shares the `{u:<id>}` hash tag, so the prefix has their slot.
        self.manager.breaker_state_for(scope.prefix()) == BreakerState::Closed
    }
}
