//! `REDIS_URL` and `SSOT_REDIS_*` read into [`RedisOptions`].

use super::{
    BreakerOptions, BulkOptions, ConfigError, RedisOptions, RedisUrl, TlsOptions, unknown,
};
use crate::error::Result;

/// Every variable that sets a `[redis]` setting, with the setting it sets. `SSOT_REDIS_URL`
/// wins over `REDIS_URL` when both are set; any other `SSOT_REDIS_*` is a typo.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("REDIS_URL", "redis.url"),
    ("SSOT_REDIS_URL", "redis.url (wins over REDIS_URL)"),
    ("SSOT_REDIS_APP", "redis.app"),
    ("SSOT_REDIS_COMMAND_TIMEOUT_MS", "redis.command-timeout-ms"),
    ("SSOT_REDIS_CONNECT_TIMEOUT_MS", "redis.connect-timeout-ms"),
    ("SSOT_REDIS_BLOCKING_POOL_SIZE", "redis.blocking-pool-size"),
    ("SSOT_REDIS_HEALTH_INTERVAL_MS", "redis.health-interval-ms"),
    (
        "SSOT_REDIS_RECONNECT_MIN_DELAY_MS",
        "redis.reconnect-min-delay-ms",
    ),
    (
        "SSOT_REDIS_RECONNECT_MAX_DELAY_MS",
        "redis.reconnect-max-delay-ms",
    ),
    (
        "SSOT_REDIS_BREAKER_OPEN_DURATION_MS",
        "redis.breaker.open-duration-ms",
    ),
    ("SSOT_REDIS_BULK_TIMEOUT_MS", "redis.bulk.timeout-ms"),
    ("SSOT_REDIS_BULK_CONCURRENCY", "redis.bulk.concurrency"),
    ("SSOT_REDIS_TLS_CA_FILE", "redis.tls.ca-file"),
    ("SSOT_REDIS_TLS_CERT_FILE", "redis.tls.cert-file"),
    ("SSOT_REDIS_TLS_KEY_FILE", "redis.tls.key-file"),
];

impl RedisOptions {
    /// Reads `REDIS_URL` and `SSOT_REDIS_*` ([`ENV_VARS`]) from the environment. Unknown
    /// `SSOT_REDIS_*` variables are an error with a "did you mean", so a typo never silently
    /// falls back to a default.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`RedisOptions::from_env`], over the given variables (for tests and embedding).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut opts = RedisOptions::default();
        let mut breaker = BreakerOptions::default();
        let mut tls = TlsOptions::default();
        let mut redis_url = None;
        let mut bulk = BulkOptions::default();
        for (key, value) in vars {
            if key == "REDIS_URL" {
                redis_url = Some(RedisUrl::from_source(value, key));
                continue;
            }
            if !key.starts_with("SSOT_REDIS_") {
                continue;
            }
            if !ENV_VARS.iter().any(|(name, _)| *name == key) {
                let names: Vec<&str> = ENV_VARS.iter().map(|(name, _)| *name).collect();
                return Err(unknown(&key, "variable", &names).into());
            }
            let number = |v: &str| -> Result<u64, ConfigError> {
                v.trim().parse::<u64>().map_err(|_| {
                    ConfigError::new(&key, format!("expected a whole number, got {v:?}"))
                })
            };
            match key.as_str() {
                "SSOT_REDIS_URL" => opts.url = Some(RedisUrl::from_source(value, key)),
                "SSOT_REDIS_APP" => opts.app = Some(value),
                "SSOT_REDIS_COMMAND_TIMEOUT_MS" => opts.command_timeout_ms = Some(number(&value)?),
                "SSOT_REDIS_CONNECT_TIMEOUT_MS" => opts.connect_timeout_ms = Some(number(&value)?),
                "SSOT_REDIS_BLOCKING_POOL_SIZE" => {
                    opts.blocking_pool_size = Some(number(&value)? as usize)
                }
                "SSOT_REDIS_HEALTH_INTERVAL_MS" => opts.health_interval_ms = Some(number(&value)?),
                "SSOT_REDIS_RECONNECT_MIN_DELAY_MS" => {
                    opts.reconnect_min_delay_ms = Some(number(&value)?)
                }
                "SSOT_REDIS_RECONNECT_MAX_DELAY_MS" => {
                    opts.reconnect_max_delay_ms = Some(number(&value)?)
                }
                "SSOT_REDIS_BREAKER_OPEN_DURATION_MS" => {
                    breaker.open_duration_ms = Some(number(&value)?)
                }
                "SSOT_REDIS_BULK_TIMEOUT_MS" => bulk.timeout_ms = Some(number(&value)?),
                "SSOT_REDIS_BULK_CONCURRENCY" => bulk.concurrency = Some(number(&value)? as usize),
                "SSOT_REDIS_TLS_CA_FILE" => tls.ca_file = Some(value.into()),
                "SSOT_REDIS_TLS_CERT_FILE" => tls.cert_file = Some(value.into()),
                "SSOT_REDIS_TLS_KEY_FILE" => tls.key_file = Some(value.into()),
                _ => unreachable!("listed in ENV_VARS"),
            }
        }
        opts.url = opts.url.or(redis_url);
        if breaker.open_duration_ms.is_some() {
            opts.breaker = Some(breaker);
        }
        if bulk.timeout_ms.is_some() || bulk.concurrency.is_some() {
            opts.bulk = Some(bulk);
        }
        if tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some() {
            opts.tls = Some(tls);
        }
        Ok(opts)
    }
}
