//! `REDIS_URL` and `SSOT_REDIS_*` read into [`RedisOptions`].

use super::{BreakerOptions, BulkOptions, ConfigError, RedisOptions, TlsOptions};
use crate::error::Result;

/// Environment variables for Redis settings besides `REDIS_URL`; any other `SSOT_REDIS_*` is a typo.
const ENV_KEYS: &[&str] = &[
    "SSOT_REDIS_APP",
    "SSOT_REDIS_COMMAND_TIMEOUT_MS",
    "SSOT_REDIS_CONNECT_TIMEOUT_MS",
    "SSOT_REDIS_BLOCKING_POOL_SIZE",
    "SSOT_REDIS_HEALTH_INTERVAL_MS",
    "SSOT_REDIS_RECONNECT_MIN_DELAY_MS",
    "SSOT_REDIS_RECONNECT_MAX_DELAY_MS",
    "SSOT_REDIS_BREAKER_OPEN_DURATION_MS",
    "SSOT_REDIS_BULK_TIMEOUT_MS",
    "SSOT_REDIS_BULK_CONCURRENCY",
    "SSOT_REDIS_TLS_CA_FILE",
    "SSOT_REDIS_TLS_CERT_FILE",
    "SSOT_REDIS_TLS_KEY_FILE",
];

impl RedisOptions {
    /// Reads `REDIS_URL` and `SSOT_REDIS_*` from the environment. Unknown `SSOT_REDIS_*`
    /// variables are an error, so a typo never silently falls back to a default.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`RedisOptions::from_env`], over the given variables (for tests and embedding).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut opts = RedisOptions::default();
        let mut breaker = BreakerOptions::default();
        let mut tls = TlsOptions::default();
        let mut bulk = BulkOptions::default();
        for (key, value) in vars {
            if key == "REDIS_URL" {
                opts.url = Some(value.into());
                continue;
            }
            if !key.starts_with("SSOT_REDIS_") {
                continue;
            }
            if !ENV_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "unknown variable; known: REDIS_URL, {}",
                        ENV_KEYS.join(", ")
                    ),
                )
                .into());
            }
            let number = |v: &str| -> Result<u64, ConfigError> {
                v.trim().parse::<u64>().map_err(|_| {
                    ConfigError::new(&key, format!("expected a whole number, got {v:?}"))
                })
            };
            match key.as_str() {
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
                _ => unreachable!("listed in ENV_KEYS"),
            }
        }
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
