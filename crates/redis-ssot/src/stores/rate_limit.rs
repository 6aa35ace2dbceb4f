//! `RateLimiter`: GCRA rate limits decided atomically on the server.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::lua::lua;
use crate::error::{Error, Result};
use crate::keys::{self, UserScope, family};
use crate::manager::RedisManager;

/// GCRA (generic cell rate algorithm) in one step, on the server's clock.
///
/// KEYS: the limit's key, holding the theoretical arrival time (TAT, µs since the epoch).
/// ARGV: emission interval (µs), burst, cost.
/// Returns {allowed, remaining, retry_after µs, reset_after µs}.
///
/// A request of `cost` is allowed when `max(tat, now) + cost * interval - burst * interval
/// <= now`, so `burst` requests pass at once and one more per interval after that. The TAT
/// is written with `%.0f` because Lua would print a 16-digit number in exponent form.
static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("rate_limit_gcra")));

/// A rate limit: `rate` requests per `period`, with bursts of up to `burst` at once.
///
/// The emission interval is `period / rate`: after a burst is spent, one more request is
/// allowed per interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Name of the limit (`chat-messages`, `tool-calls`), part of its key.
    pub name: String,
    /// Requests per period.
    pub rate: u32,
    /// The period `rate` refers to.
    pub period: Duration,
    /// Requests allowed at once from a fresh state (at least 1).
    pub burst: u32,
}

impl Limit {
    /// `rate` per `period`, with a burst equal to `rate`.
    pub fn new(name: &str, rate: u32, period: Duration) -> Limit {
        Limit {
            name: name.to_owned(),
            rate,
            period,
            burst: rate,
        }
    }

    /// The same limit with another burst.
    pub fn with_burst(mut self, burst: u32) -> Limit {
        self.burst = burst;
        self
    }

    /// Time between two requests at the sustained rate.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.rate.max(1)
    }

    fn check(&self) -> Result<u64> {
        keys::check_name("rate limit", &self.name)?;
        if self.rate == 0 || self.burst == 0 {
            return Err(Error::invalid(
                "rate limit",
                format!("{}: rate and burst must be at least 1", self.name),
            ));
        }
        let micros = self.emission_interval().as_micros();
        if micros == 0 || micros > u128::from(u32::MAX) * 1_000_000 {
            return Err(Error::invalid(
                "rate limit",
                format!(
                    "{}: period / rate must be between 1 µs and ~136 years, got {:?}",
                    self.name,
                    self.emission_interval()
                ),
            ));
        }
        Ok(micros as u64)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed (and was counted).
    pub allowed: bool,
    /// Requests of cost 1 that would be allowed right now, after this one.
    pub remaining: u64,
    /// When denied, how long until the same request would be allowed; zero when allowed.
    pub retry_after: Duration,
    /// How long until the limit is back to a full burst.
    pub reset_after: Duration,
}

/// GCRA rate limits for inbound chat messages, tool calls and the like.
///
/// ## Behavior
/// - Each decision is one Lua script: read the stored TAT, decide, write it back, all on the
///   server's clock (`TIME`), so any number of processes share one limit exactly and clock
///   skew between them does not matter.
/// - One key per limit subject: `ssot:{u:<id>}:rl:<name>` per user,
///   `ssot:rl:{<name>:<subject>}` for [`check_global`](RateLimiter::check_global). A key
///   expires as soon as its limit is back to a full burst, so idle subjects cost nothing.
/// - A denied request is not counted.
/// - Cheap to clone; opens no connection.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    manager: RedisManager,
}

impl RateLimiter {
    /// A limiter on `manager`.
    pub fn new(manager: RedisManager) -> RateLimiter {
        RateLimiter { manager }
    }

    /// Counts one request of the user against `limit`.
    pub async fn check(&self, scope: &UserScope, limit: &Limit) -> Result<Decision> {
        self.check_n(scope, limit, 1).await
    }

    /// Counts a request costing `cost` units (1..=burst) of the user against `limit`.
    pub async fn check_n(&self, scope: &UserScope, limit: &Limit, cost: u32) -> Result<Decision> {
        let key = scope.named_key(family::RATE, &limit.name)?;
        self.decide(key, limit, cost).await
    }

    /// Counts one request of `subject` (an IP, a service, a tool) against a limit shared by
    /// all users.
    pub async fn check_global(&self, subject: &str, limit: &Limit) -> Result<Decision> {
        let key = keys::global_rate(&limit.name, subject)?;
        self.decide(key, limit, 1).await
    }

    async fn decide(&self, key: String, limit: &Limit, cost: u32) -> Result<Decision> {
        let interval = limit.check()?;
        if cost == 0 || cost > limit.burst {
            return Err(Error::invalid(
                "rate limit cost",
                format!("must be 1..={} (the burst), got {cost}", limit.burst),
            ));
        }
        let (allowed, remaining, retry_after, reset_after): (i64, i64, i64, i64) = self
            .manager
            .run_script(GCRA.key(key).arg(interval).arg(limit.burst).arg(cost))
            .await?;
        Ok(Decision {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u64,
            retry_after: micros(retry_after),
            reset_after: micros(reset_after),
        })
    }
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(value.max(0) as u64)
}
