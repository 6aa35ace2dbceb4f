//! The health monitor and its report.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use serde::Serialize;
use tokio::time::Instant;

use super::{Inner, RedisManager};
use crate::breaker::BreakerState;
use crate::domains::{DomainHealth, parse_cluster_slots};
use crate::error::{Error, Result};

/// Health monitor interval while something is wrong, so recovery is seen quickly.
const FAST_HEALTH_INTERVAL: Duration = Duration::from_millis(100);

/// A snapshot of the manager's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The manager instance.
    pub instance_id: String,
    /// True when the command connection is up, the last PING answered and the circuit is
    /// closed; on a Cluster, for every master.
    pub healthy: bool,
    /// True when the last PING answered (on a Cluster: at least one master's).
    pub reachable: bool,
    /// Round trip of the last PING, in milliseconds.
    pub latency_ms: Option<f64>,
    /// The process-wide circuit breaker state (on a Cluster: that of keyless calls).
    pub breaker: BreakerState,
    /// True when the subscriber connection is up.
    pub subscriber_up: bool,
    /// Reconnects of the command and subscriber connections since start.
    pub reconnects: u64,
    /// The last PING error, if the last PING failed.
    pub last_error: Option<String>,
    /// Each failure domain: the server, or each master of a Cluster.
    pub domains: Vec<DomainHealth>,
    /// When this report was made (Unix milliseconds).
    pub checked_at_ms: u64,
}

/// PINGs, detects hung connections, drives breaker recovery and publishes health.
pub(super) async fn health_monitor(inner: std::sync::Weak<Inner>) {
    let (mut command_up, mut breaker_rx) = match inner.upgrade() {
        Some(inner) => (
            inner.command.watch_up(),
            inner.domains.process().breaker.watch(),
        ),
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
        let round = match inner_ref.domains.is_cluster() {
            false => check_server(&manager).await,
            true => {
                let round = check_masters(&manager).await;
                rename_cluster_links(inner_ref).await;
                round
            }
        };
        let Round { ping, latency } = round;
        let breaker = inner_ref.domains.process().breaker.state();
        let domains = inner_ref.domains.report();
        let reachable = ping.is_ok();
        let healthy = reachable
            && breaker == BreakerState::Closed
            && inner_ref.command.is_up()
            && domains
                .iter()
                .all(|d| d.reachable && d.breaker == BreakerState::Closed);
        if reachable {
            metrics::histogram!("ssot_redis_ping_seconds").record(latency.as_secs_f64());
        }
        metrics::gauge!("ssot_redis_up").set(if healthy { 1.0 } else { 0.0 });
        // Also set here, not only on transitions, so a recorder installed after the manager
        // was built still shows it.
        metrics::gauge!("ssot_breaker_state").set(breaker.gauge());
        if inner_ref.domains.is_cluster() {
            for domain in &domains {
                let label = domain.node.clone();
                metrics::gauge!("ssot_breaker_state", "domain" => label.clone())
                    .set(domain.breaker.gauge());
                metrics::gauge!("ssot_redis_up", "domain" => label).set(if domain.reachable {
                    1.0
                } else {
                    0.0
                });
            }
        }
        if was_healthy != Some(healthy) {
            match (&ping, healthy) {
                (_, true) => {
                    tracing::info!(latency_ms = rounded_ms(latency), "redis healthy")
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
            domains,
            checked_at_ms: crate::clock::unix_ms(),
        });
        let interval = if healthy {
            inner_ref.config.health_interval
        } else {
            inner_ref.config.health_interval.min(FAST_HEALTH_INTERVAL)
        };
        let weak = Arc::downgrade(&manager.inner);
        drop(manager);
        // Sleep, but wake at once when the command connection comes back (the circuit may
        // probe now), the breaker changes, or a call saw the cluster's topology change.
        let refresh = async {
            match weak.upgrade() {
                Some(inner) => inner.domains.refresh_requested().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = refresh => {}
            changed = command_up.changed() => {
                if changed.is_err() { return; }
                if *command_up.borrow_and_update()
                    && let Some(inner) = weak.upgrade()
                {
                    inner.domains.process().breaker.on_reconnect();
                    for domain in inner.domains.masters() {
                        domain.breaker.on_reconnect();
                    }
                }
            }
            changed = breaker_rx.changed() => {
                if changed.is_err() { return; }
                breaker_rx.borrow_and_update();
            }
        }
    }
}

/// What one health round saw: the PING verdict and its latency.
struct Round {
    ping: Result<()>,
    latency: Duration,
}

/// Milliseconds with two decimals for log fields: `0.02`, not `0.019644000000000002`.
fn rounded_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e5).round() / 100.0
}

/// One server: PING it through the call path, so the breaker judges it like any call.
async fn check_server(manager: &RedisManager) -> Round {
    let inner = &manager.inner;
    let start = Instant::now();
    let ping: Result<String> = manager.query(&redis::cmd("PING")).await;
    let latency = start.elapsed();
    if let Err(Error::Timeout { .. }) = &ping
        && let Ok((epoch, _)) = inner.command.get()
    {
        inner.command.mark_down(epoch, "health ping timed out");
    }
    let error = ping.as_ref().err().map(ToString::to_string);
    inner
        .domains
        .process()
        .observe_ping(ping.is_ok().then_some(latency.as_secs_f64() * 1e3), error);
    check_subscriber(inner).await;
    Round {
        ping: ping.map(drop),
        latency,
    }
}

/// A Cluster: refresh the slot map, then PING every master through its own domain. The
/// round's verdict is the slowest successful PING, or an error when no master answered.
async fn check_masters(manager: &RedisManager) -> Round {
    let inner = &manager.inner;
    let refreshed = refresh_slot_map(inner).await;
    let masters = inner.domains.masters();
    let pings = masters.iter().map(|domain| async move {
        let start = Instant::now();
        let ping = manager.ping_domain(domain).await;
        let latency = start.elapsed();
        let error = ping.as_ref().err().map(ToString::to_string);
        domain.observe_ping(ping.is_ok().then_some(latency.as_secs_f64() * 1e3), error);
        ping.map(|()| latency)
    });
    let results = futures_util::future::join_all(pings).await;
    let latency = results.iter().flatten().max().copied();
    let ping = match (latency, refreshed) {
        (Some(_), _) => Ok(()),
        (None, Err(err)) => Err(err),
        (None, Ok(())) => Err(Error::Unavailable {
            retry_after: inner.config.reconnect_min_delay,
            reason: "no master answered",
        }),
    };
    if ping.is_err()
        && let Ok((epoch, _)) = inner.command.get()
    {
        // Not one node answers: the cluster connection itself may be stale.
        inner.command.mark_down(epoch, "no cluster node answered");
    }
    Round {
        ping,
        latency: latency.unwrap_or_default(),
    }
}

/// Reads `CLUSTER SLOTS` from the first master that answers (known ones first, then any
/// node) and installs it.
async fn refresh_slot_map(inner: &Inner) -> Result<()> {
    let (_, mut conn) = inner.command.get()?;
    let cmd = redis::cmd("CLUSTER").arg("SLOTS").clone();
    let mut nodes: Vec<Option<String>> = inner
        .domains
        .masters()
        .into_iter()
        .filter(|d| d.health().reachable)
        .map(|d| Some(d.name.to_string()))
        .collect();
    nodes.push(None);
    let mut last = Error::Unavailable {
        retry_after: inner.config.reconnect_min_delay,
        reason: "no node answered CLUSTER SLOTS",
    };
    for node in nodes {
        let reply = tokio::time::timeout(
            inner.config.command_timeout,
            conn.on_node(&cmd, node.as_deref()),
        )
        .await;
        match reply {
            Ok(Ok(value)) => match parse_cluster_slots(&value) {
                Some(ranges) => {
                    if inner.domains.update(ranges)
                        && let Ok((epoch, _)) = inner.subscriber.get()
                    {
                        // A slot changed master. Sharded subscriptions stay on the old one
                        // (now a replica, or paused) and, while it resyncs from the new one,
                        // lose messages without a word; and the subscriber's cluster client
                        // may not know the new owner yet. A fresh connection subscribes
                        // every channel on the current owners, with a gap for each.
                        inner.subscriber.mark_down(epoch, "a slot changed master");
                    }
                    return Ok(());
                }
                None => last = Error::invalid("CLUSTER SLOTS reply", format!("{value:?}")),
            },
            Ok(Err(err)) => last = err.into(),
            Err(_) => {
                last = Error::Timeout {
                    after: inner.config.command_timeout,
                }
            }
        }
    }
    Err(last)
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
    for link in [&inner.command, &inner.subscriber, &inner.bulk.link] {
        if let Ok((_, mut conn)) = link.get() {
            let cmd = redis::cmd("CLIENT").arg("SETNAME").arg(link.name()).clone();
            let _ =
                tokio::time::timeout(inner.config.command_timeout, conn.on_all_nodes(&cmd)).await;
        }
    }
}
