//! redis-ssot: the single source of truth for Redis in a process.
//!
//! One [`RedisManager`] per process owns a bounded, named set of connections and puts a
//! circuit breaker, timeouts, reconnect with backoff and health monitoring in front of every
//! call. Components never open their own Redis connections: they receive a clone of the
//! manager (or call [`manager()`]).
//!
//! # Layout
//! - [`config`]: [`RedisOptions`] (what users write) resolved into [`RedisConfig`].
//! - [`manager()`] / [`RedisManager`]: the process-wide instance and its call path; calls
//!   take a lane by role: `command` (short calls, the health PING), `bulk` (long reads such
//!   as replay pages, [`RedisManager::query_bulk`]), `blocking` and `subscriber`.
//! - `breaker`: the circuit breaker ([`BreakerState`]).
//! - [`clock`]: Unix time now ([`clock::unix_ms`], [`clock::unix_secs`]).
//! - `link`: one named, self-healing connection.
//! - `pubsub`: local subscriptions over the shared subscriber connection ([`Subscription`]).
//! - [`keys`]: the key schema, [`keys::UserId`] and [`keys::UserScope`].
//! - [`stores`]: typed stores (cache, sessions, tokens, rate limits, agent state, locks,
//!   events, jobs), each owning one key family.
//! - [`compat`]: deprecated aliases of old manager entry points.
//! - [`Error`]: the one error type, with [`Error::is_transient`] and [`Error::retry_after`].
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

mod breaker;
pub mod clock;
pub mod compat;
pub mod config;
mod error;
pub mod keys;
mod link;
mod manager;
mod pubsub;
pub mod stores;

pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, ClientCertificate, RedisConfig, RedisOptions, TlsConfig, TlsOptions, Topology,
};
pub use error::{Error, Result};
pub use keys::{UserId, UserScope};
pub use manager::{HealthReport, RedisManager, init, manager, try_manager};
pub use pubsub::{Subscription, SubscriptionEvent};
/// The Redis client library the manager is built on, for building commands and scripts.
pub use redis;
