//! `[redis.bulk]`: the lane of long reads (replay pages, scans, large ranges).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, positive, positive_ms, serialize_ms};

/// Default budget of one bulk call.
pub const DEFAULT_BULK_TIMEOUT: Duration = Duration::from_millis(5000);
/// Default bulk calls running at once per process. Redis runs the pages pipelined on one
/// connection back to back, so each one in flight adds its run time to the wait of a short
/// call that arrives meanwhile; two keep the connection busy (one runs while the next is
/// sent) and bound that wait to two pages.
pub const DEFAULT_BULK_CONCURRENCY: usize = 2;

/// `[redis.bulk]` as written by the user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BulkOptions {
    /// Budget of one bulk call, in milliseconds; also the longest wait for a turn.
    pub timeout_ms: Option<u64>,
    /// Bulk calls running at once per process; the others wait their turn in the process.
    pub concurrency: Option<usize>,
}

/// The bulk lane's validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BulkConfig {
    /// Budget of one bulk call, and the longest wait for a turn.
    #[serde(rename = "timeout-ms", serialize_with = "serialize_ms")]
    pub timeout: Duration,
    /// Bulk calls running at once per process.
    pub concurrency: usize,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            timeout: DEFAULT_BULK_TIMEOUT,
            concurrency: DEFAULT_BULK_CONCURRENCY,
        }
    }
}

impl BulkOptions {
    /// Settings of `other` win over `self` where `other` has them.
    pub(super) fn merge(a: Option<BulkOptions>, b: Option<BulkOptions>) -> Option<BulkOptions> {
        match (a, b) {
            (Some(a), Some(b)) => Some(BulkOptions {
                timeout_ms: b.timeout_ms.or(a.timeout_ms),
                concurrency: b.concurrency.or(a.concurrency),
            }),
            (a, b) => b.or(a),
        }
    }

    pub(super) fn resolve(self) -> Result<BulkConfig, ConfigError> {
        let d = BulkConfig::default();
        Ok(BulkConfig {
            timeout: positive_ms("redis.bulk.timeout-ms", self.timeout_ms, d.timeout)?,
            concurrency: positive("redis.bulk.concurrency", self.concurrency, d.concurrency)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedisOptions;

    #[test]
    fn bulk_settings_from_toml_env_and_defaults() {
        let url = "url = \"redis://h:1\"\n";
        let cfg = RedisOptions::from_toml(url).unwrap().resolve().unwrap();
        assert_eq!(cfg.bulk, BulkConfig::default());
        let toml = format!("{url}[bulk]\ntimeout-ms = 800\nconcurrency = 3\n");
        let cfg = RedisOptions::from_toml(&toml).unwrap().resolve().unwrap();
        assert_eq!(cfg.bulk.timeout, Duration::from_millis(800));
        assert_eq!(cfg.bulk.concurrency, 3);
        assert!(
            cfg.to_string()
                .contains("[bulk]\ntimeout-ms = 800\nconcurrency = 3"),
            "{cfg}"
        );
        let vars = [
            ("REDIS_URL", "redis://h:1"),
            ("SSOT_REDIS_BULK_CONCURRENCY", "5"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let from_env = RedisOptions::from_vars(vars).unwrap();
        let cfg = RedisOptions::from_toml(&toml)
            .unwrap()
            .merge(from_env)
            .resolve()
            .unwrap();
        assert_eq!(
            (cfg.bulk.timeout, cfg.bulk.concurrency),
            (Duration::from_millis(800), 5)
        );
        let zero = format!("{url}[bulk]\nconcurrency = 0\n");
        let err = RedisOptions::from_toml(&zero)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("redis.bulk.concurrency"), "{err}");
    }
}
