//! `[redis.breaker]`: the circuit breaker's options and their validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, positive, positive_ms, serialize_ms};

/// Circuit breaker settings as written by the user (resilience4j names, kebab-case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BreakerOptions {
    /// Outcomes kept in the sliding window.
    pub window_size: Option<usize>,
    /// Outcomes needed before rates are evaluated.
    pub minimum_calls: Option<usize>,
    /// Failure rate (percent) at or above which the circuit opens.
    pub failure_rate_threshold: Option<f64>,
    /// A call slower than this (milliseconds) counts as slow.
    pub slow_call_duration_ms: Option<u64>,
    /// Slow-call rate (percent) at or above which the circuit opens.
    pub slow_call_rate_threshold: Option<f64>,
    /// Time the circuit stays open before probing, in milliseconds.
    pub open_duration_ms: Option<u64>,
    /// Probe calls allowed while half-open.
    pub half_open_calls: Option<usize>,
}

/// Validated circuit breaker settings. Serializes as the `[redis.breaker]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BreakerConfig {
    /// Outcomes kept in the sliding window.
    pub window_size: usize,
    /// Outcomes needed before rates are evaluated.
    pub minimum_calls: usize,
    /// Failure rate (0..=100) at or above which the circuit opens.
    pub failure_rate_threshold: f64,
    /// A call slower than this counts as slow.
    #[serde(rename = "slow-call-duration-ms", serialize_with = "serialize_ms")]
    pub slow_call_duration: Duration,
    /// Slow-call rate (0..=100) at or above which the circuit opens.
    pub slow_call_rate_threshold: f64,
    /// Time the circuit stays open before probing.
    #[serde(rename = "open-duration-ms", serialize_with = "serialize_ms")]
    pub open_duration: Duration,
    /// Probe calls allowed while half-open.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window_size: 50,
            minimum_calls: 10,
            failure_rate_threshold: 50.0,
            slow_call_duration: Duration::from_millis(500),
            slow_call_rate_threshold: 80.0,
            open_duration: Duration::from_millis(2000),
            half_open_calls: 3,
        }
    }
}

pub(super) fn resolve_breaker(opts: BreakerOptions) -> Result<BreakerConfig, ConfigError> {
    let d = BreakerConfig::default();
    let key = |name: &str| format!("redis.breaker.{name}");
    let percent = |name: &str, v: Option<f64>, default: f64| match v {
        None => Ok(default),
        Some(p) if p > 0.0 && p <= 100.0 => Ok(p),
        Some(p) => Err(ConfigError::new(
            key(name),
            format!("must be a percentage in (0, 100], got {p}"),
        )),
    };
    let window_size = positive(&key("window-size"), opts.window_size, d.window_size)?;
    let minimum_calls = positive(&key("minimum-calls"), opts.minimum_calls, d.minimum_calls)?;
    if minimum_calls > window_size {
        return Err(ConfigError::new(
            key("minimum-calls"),
            format!("must not exceed window-size ({window_size})"),
        ));
    }
    Ok(BreakerConfig {
        window_size,
        minimum_calls,
        failure_rate_threshold: percent(
            "failure-rate-threshold",
            opts.failure_rate_threshold,
            d.failure_rate_threshold,
        )?,
        slow_call_duration: positive_ms(
            &key("slow-call-duration-ms"),
            opts.slow_call_duration_ms,
            d.slow_call_duration,
        )?,
        slow_call_rate_threshold: percent(
            "slow-call-rate-threshold",
            opts.slow_call_rate_threshold,
            d.slow_call_rate_threshold,
        )?,
        open_duration: positive_ms(
            &key("open-duration-ms"),
            opts.open_duration_ms,
            d.open_duration,
        )?,
        half_open_calls: positive(
            &key("half-open-calls"),
            opts.half_open_calls,
            d.half_open_calls,
        )?,
    })
}
