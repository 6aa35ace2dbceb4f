//! redis-ssot: the single source of truth for Redis in a process.
//!
//! One [`RedisManager`] per process owns a bounded, named set of connections and puts a
//! circuit breaker, timeouts, reconnect with backoff and health monitoring in front of every
//! call. Components never open their own Redis connections: they receive a clone of the
//! manager (or call [`manager()`]).
//!
//! # Layout
//! - [`config`]: [`RedisOptions`] (what users write) resolved into [`RedisConfig`]; the URL
//!   gives the [`Topology`]: one server, a Cluster (`redis+cluster://`) or a master behind
//!   Sentinel (`redis+sentinel://h1:p1,h2:p2/<master-name>`).
//! - [`manager()`] / [`RedisManager`]: the process-wide instance and its call path; calls
//!   take a lane by role: `command` (short calls, the health PING), `bulk` (long reads such
//!   as replay pages, [`RedisManager::query_bulk`]), `blocking` and `subscriber`.
//! - `breaker`: the circuit breaker ([`BreakerState`]).
//! - `domains`: failure domains (the server, or each Cluster master) and their breakers
//!   ([`DomainHealth`]).
//! - [`backoff`]: exponential backoff with full or equal jitter (reconnects, retries).
//! - [`clock`]: Unix time now ([`clock::unix_ms`], [`clock::unix_secs`]).
//! - `link`: one named, self-healing connection; behind Sentinel (`redis+sentinel://`) each
//!   connection asks the Sentinels for the master first, so it follows a failover.
//! - `pubsub`: local subscriptions over the shared subscriber connection ([`Subscription`]).
//! - [`keys`]: the key schema, [`keys::UserId`] and [`keys::UserScope`].
//! - [`stores`]: typed stores (cache, sessions, tokens, rate limits, agent state, locks,
//!   events, jobs), each owning one key family; `stores::chat` is the gateway-worker seam
//!   (a chat message as a job).
//! - [`compat`]: deprecated aliases of old manager entry points.
//! - `telemetry`: [`describe_metrics`], the help text of every metric family recorded here.
//! - [`Error`]: the one error type, with [`Error::is_transient`] and [`Error::retry_after`].
//!
//! # Failure domains and the failover window
//! A call's breaker is that of its failure domain: the server on one Redis; on a Cluster the
//! master owning its key's slot (keyless calls share a process-wide domain). When a master
//! fails, only the calls routed to it fail:
//! - from the fault until its breaker opens, they fail with the node's error (connection
//!   refused at once, or [`Error::Timeout`] after `command-timeout-ms` if the node hangs):
//!   at most `minimum-calls` such failures in the breaker window;
//! - then they are refused at once with [`Error::Unavailable`];
//! - Redis promotes a replica after about `cluster-node-timeout` (failure detection) plus
//!   the replica's election delay (500 ms + up to 500 ms random + 1 s per rank), so
//!   typically `cluster-node-timeout` + 0.5..1 s;
//! - the health monitor then sees the new owner in `CLUSTER SLOTS` within one round
//!   (`health-interval-ms`, at most 100 ms while unhealthy). The new master is a new domain
//!   with a closed breaker, so calls succeed at once: `open-duration-ms` does not lengthen
//!   the window. It only matters when the same node comes back (a restart without a
//!   replica): then calls resume after at most `open-duration-ms` and the half-open probes.
//!
//! So the window is about `cluster-node-timeout` + 1 s + `health-interval-ms`; the test
//! `failover::a_failed_master_refuses_only_its_own_users` holds it under
//! `cluster-node-timeout` + 2 s. Calls to the other masters see no refusal. This needs the
//! Cluster to run with `cluster-require-full-coverage no`: with the default `yes`, every
//! node refuses every query while the failed master's slots are uncovered.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> redis_ssot::Result<()> {
//! let config = redis_ssot::RedisConfig::for_url("redis://127.0.0.1:6379")?;
//! let redis = redis_ssot::init(config)?;
//! redis.query::<()>(redis::cmd("SET").arg("greeting").arg("hello")).await?;
//! let value: String = redis.query(redis::cmd("GET").arg("greeting")).await?;
//! # Ok(()) }
//! ```

pub mod backoff;
mod breaker;
pub mod clock;
pub mod compat;
pub mod config;
mod domains;
mod error;
pub mod keys;
mod link;
mod manager;
mod pubsub;
pub mod stores;
mod telemetry;

pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, BulkConfig, ClientCertificate, RedisConfig, RedisOptions, TlsConfig, TlsOptions,
    Topology,
};
pub use domains::DomainHealth;
pub use error::{Error, Result};
pub use keys::{UserId, UserScope};
pub use manager::{HealthReport, RedisManager, init, manager, try_manager};
pub use pubsub::{Subscription, SubscriptionEvent};
/// The Redis client library the manager is built on, for building commands and scripts.
pub use redis;
pub use telemetry::describe_metrics;
