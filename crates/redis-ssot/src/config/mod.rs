//! Configuration: one place, two stages.
//!
//! [`RedisOptions`] is what a user writes (TOML `[redis]` table, `REDIS_URL` / `SSOT_REDIS_*`
//! environment variables); [`RedisOptions::resolve`] validates it into a [`RedisConfig`] with
//! precise errors naming the setting. Secrets never appear in `Debug` or `Display`.
//!
//! # Layout
//! - this file: the option and config types, [`ConfigError`], [`Redacted`], the shared
//!   [`positive`] / [`positive_ms`] checks, and [`RedisOptions::resolve`].
//! - `breaker`: `[redis.breaker]`, the circuit breaker's options and their validation.
//! - `bulk`: `[redis.bulk]`, the lane of long reads.
//! - `env`: `REDIS_URL` / `SSOT_REDIS_URL` and `SSOT_REDIS_*` read into [`RedisOptions`].
//! - `suggest`: "did you mean" for unknown keys and variables ([`did_you_mean`]).
//! - `url`: URL and topology parsing, [`RedisUrl`], [`redact_url`].
//! - `tls`: reading and checking the PEM files of `[redis.tls]`.
//! - `display`: `Display` of [`RedisConfig`] as TOML, from its `Serialize` view, and the
//!   redacting `Debug` impls.

mod breaker;
mod bulk;
mod display;
mod env;
mod suggest;
mod tls;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use self::breaker::resolve_breaker;
use crate::error::{Error, Result};

pub use self::breaker::{BreakerConfig, BreakerOptions};
pub use self::bulk::{BulkConfig, BulkOptions, DEFAULT_BULK_CONCURRENCY, DEFAULT_BULK_TIMEOUT};
pub use self::env::ENV_VARS;
pub use self::suggest::{did_you_mean, unknown};
pub use self::url::{RedisUrl, redact_url};

/// Default application name used in connection names (`ssot:<app>:<role>`).
pub const DEFAULT_APP: &str = "app";
/// Default Redis URL.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// Default budget of one ordinary command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default budget of one connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default number of connections reserved for blocking commands.
pub const DEFAULT_BLOCKING_POOL_SIZE: usize = 4;
/// Default interval of the health monitor's PING.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// Default first reconnect delay cap (full jitter below it).
pub const DEFAULT_RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Default largest reconnect delay.
pub const DEFAULT_RECONNECT_MAX_DELAY: Duration = Duration::from_millis(1000);
/// Longest accepted application name.
const MAX_APP_LEN: usize = 64;

/// A setting that cannot be used: the one error shape of every configuration in the
/// workspace (`[redis]`, `[gateway]`, `[worker]`, `[tokens]`, the environment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    /// The setting as the user wrote it (`redis.command-timeout-ms`, `REDIS_URL`).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config {
            key: err.key,
            reason: err.reason,
        }
    }
}

/// `value` or `default`; zero is an error naming `key`. For counts and sizes.
pub fn positive<T: PartialEq + From<u8>>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v == T::from(0) => Err(ConfigError::new(key, "must be greater than 0")),
        Some(v) => Ok(v),
    }
}

/// A `*-ms` setting: `value` milliseconds or `default`; zero is an error naming `key`.
pub fn positive_ms(
    key: &str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(ms) => positive(key, Some(ms), ms).map(Duration::from_millis),
    }
}

/// A secret (key, password, PEM private key): `Debug` and `Serialize` show `<redacted>`, so
/// the structs holding it can derive both. Read it with `*` or [`Redacted::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(pub T);

/// What `Debug` and `Serialize` show instead of a secret.
pub const REDACTED: &str = "<redacted>";

impl<T> Redacted<T> {
    /// The secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Redacted(value)
    }
}

impl From<&str> for Redacted<String> {
    fn from(value: &str) -> Self {
        Redacted(value.to_owned())
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Redacted<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Serializes a [`Duration`] as whole milliseconds, the unit of every `*-ms` setting.
pub fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Redis settings as written by the user. Every field is optional; see the `DEFAULT_*` constants.
///
/// `Debug` redacts the password of `url`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedisOptions {
    /// `redis://`, `rediss://` (TLS), a comma-separated list of nodes, or
    /// `redis+cluster://h1:p1,h2:p2` (`rediss+cluster://` with TLS).
    pub url: Option<RedisUrl>,
    /// Application name in connection names.
    pub app: Option<String>,
    /// Budget of one ordinary command, in milliseconds.
    pub command_timeout_ms: Option<u64>,
    /// Budget of one connection attempt, in milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Connections reserved for blocking commands (XREADGROUP BLOCK).
    pub blocking_pool_size: Option<usize>,
    /// Health monitor PING interval, in milliseconds.
    pub health_interval_ms: Option<u64>,
    /// Cap of the first reconnect delay, in milliseconds.
    pub reconnect_min_delay_ms: Option<u64>,
    /// Largest reconnect delay, in milliseconds.
    pub reconnect_max_delay_ms: Option<u64>,
    /// Circuit breaker.
    pub breaker: Option<BreakerOptions>,
    /// The lane of long reads (replays, scans).
    pub bulk: Option<BulkOptions>,
    /// Certificates for `rediss://`.
    pub tls: Option<TlsOptions>,
}

/// TLS settings as written by the user: PEM files. Without `ca-file` the system's trust
/// store verifies the server; `cert-file` and `key-file` (both or neither) enable mutual TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsOptions {
    /// CA certificate(s) that sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain, for servers that require client certificates.
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert-file`.
    pub key_file: Option<PathBuf>,
}

/// Validated TLS material, read once at start-up. `Debug` shows the files, never the PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Where `ca_pem` came from.
    pub ca_file: Option<PathBuf>,
    /// PEM of the trusted CA certificate(s); `None`: the system's trust store.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key (PEM), for mutual TLS.
    pub client: Option<ClientCertificate>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// Where `cert_pem` came from.
    pub cert_file: PathBuf,
    /// Where `key_pem` came from.
    pub key_file: PathBuf,
    /// The certificate chain.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

/// Where Redis is. `Debug` redacts passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server.
    Single(String),
    /// A Redis Cluster, reached through these seed nodes (full URLs).
    Cluster(Vec<String>),
    /// A master and its replicas watched by Redis Sentinel: the master named `master`, found
    /// through these Sentinels (full URLs; the first carries the master's credentials, if
    /// any). Connections go to whichever node the Sentinels name master now.
    Sentinel {
        /// The Sentinels, as `redis://host:port` (`rediss://` for TLS).
        sentinels: Vec<String>,
        /// The name the Sentinels monitor the master under.
        master: String,
    },
}

/// Validated settings of the manager.
///
/// `Debug` redacts passwords; `Display` is the `[redis]` table as TOML, from the `Serialize`
/// view (passwords redacted), which [`RedisOptions::from_toml`] reads back.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// Where Redis is.
    pub topology: Topology,
    /// Application name in connection names.
    pub app: String,
    /// Budget of one ordinary command.
    pub command_timeout: Duration,
    /// Budget of one connection attempt.
    pub connect_timeout: Duration,
    /// Connections reserved for blocking commands.
    pub blocking_pool_size: usize,
    /// Health monitor PING interval.
    pub health_interval: Duration,
    /// Cap of the first reconnect delay.
    pub reconnect_min_delay: Duration,
    /// Largest reconnect delay.
    pub reconnect_max_delay: Duration,
    /// Circuit breaker.
    pub breaker: BreakerConfig,
    /// The lane of long reads.
    pub bulk: BulkConfig,
    /// TLS material; `Some` exactly when the URL(s) are `rediss://`.
    pub tls: Option<TlsConfig>,
}

impl RedisOptions {
    /// Parses the content of a `[redis]` TOML table (or a file holding only these keys).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|err| Error::config("redis", toml_reason(&err)))
    }

    /// Settings from `other` win over `self` where `other` has them.
    pub fn merge(self, other: RedisOptions) -> RedisOptions {
        RedisOptions {
            url: other.url.or(self.url),
            app: other.app.or(self.app),
            command_timeout_ms: other.command_timeout_ms.or(self.command_timeout_ms),
            connect_timeout_ms: other.connect_timeout_ms.or(self.connect_timeout_ms),
            blocking_pool_size: other.blocking_pool_size.or(self.blocking_pool_size),
            health_interval_ms: other.health_interval_ms.or(self.health_interval_ms),
            reconnect_min_delay_ms: other.reconnect_min_delay_ms.or(self.reconnect_min_delay_ms),
            reconnect_max_delay_ms: other.reconnect_max_delay_ms.or(self.reconnect_max_delay_ms),
            breaker: match (self.breaker, other.breaker) {
                (Some(a), Some(b)) => Some(BreakerOptions {
                    window_size: b.window_size.or(a.window_size),
                    minimum_calls: b.minimum_calls.or(a.minimum_calls),
                    failure_rate_threshold: b.failure_rate_threshold.or(a.failure_rate_threshold),
                    slow_call_duration_ms: b.slow_call_duration_ms.or(a.slow_call_duration_ms),
                    slow_call_rate_threshold: b
                        .slow_call_rate_threshold
                        .or(a.slow_call_rate_threshold),
                    open_duration_ms: b.open_duration_ms.or(a.open_duration_ms),
                    half_open_calls: b.half_open_calls.or(a.half_open_calls),
                }),
                (a, b) => b.or(a),
            },
            bulk: BulkOptions::merge(self.bulk, other.bulk),
            tls: match (self.tls, other.tls) {
                (Some(a), Some(b)) => Some(TlsOptions {
                    ca_file: b.ca_file.or(a.ca_file),
                    cert_file: b.cert_file.or(a.cert_file),
                    key_file: b.key_file.or(a.key_file),
                }),
                (a, b) => b.or(a),
            },
        }
    }

    /// Validates into settings; the error names the offending key.
    pub fn resolve(self) -> Result<RedisConfig> {
        let url = self.url.unwrap_or_else(|| RedisUrl::from(DEFAULT_URL));
        let topology = url::parse_topology(&url)?;
        let app = self.app.unwrap_or_else(|| DEFAULT_APP.to_owned());
        if app.is_empty()
            || app.len() > MAX_APP_LEN
            || !app
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Error::config(
                "redis.app",
                format!("must be 1-{MAX_APP_LEN} characters of [A-Za-z0-9_.-], got {app:?}"),
            ));
        }
        let reconnect_min_delay = positive_ms(
            "redis.reconnect-min-delay-ms",
            self.reconnect_min_delay_ms,
            DEFAULT_RECONNECT_MIN_DELAY,
        )?;
        let reconnect_max_delay = positive_ms(
            "redis.reconnect-max-delay-ms",
            self.reconnect_max_delay_ms,
            DEFAULT_RECONNECT_MAX_DELAY,
        )?;
        if reconnect_max_delay < reconnect_min_delay {
            return Err(Error::config(
                "redis.reconnect-max-delay-ms",
                "must not be smaller than reconnect-min-delay-ms",
            ));
        }
        let blocking_pool_size = self
            .blocking_pool_size
            .unwrap_or(DEFAULT_BLOCKING_POOL_SIZE);
        if !(1..=256).contains(&blocking_pool_size) {
            return Err(Error::config(
                "redis.blocking-pool-size",
                format!("must be between 1 and 256, got {blocking_pool_size}"),
            ));
        }
        Ok(RedisConfig {
            app,
            command_timeout: positive_ms(
                "redis.command-timeout-ms",
                self.command_timeout_ms,
                DEFAULT_COMMAND_TIMEOUT,
            )?,
            connect_timeout: positive_ms(
                "redis.connect-timeout-ms",
                self.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            blocking_pool_size,
            health_interval: positive_ms(
                "redis.health-interval-ms",
                self.health_interval_ms,
                DEFAULT_HEALTH_INTERVAL,
            )?,
            reconnect_min_delay,
            reconnect_max_delay,
            breaker: resolve_breaker(self.breaker.unwrap_or_default())?,
            bulk: self.bulk.unwrap_or_default().resolve()?,
            tls: tls::resolve(&topology.urls(), self.tls)?,
            topology,
        })
    }
}

fn toml_reason(err: &toml::de::Error) -> String {
    err.message().trim().to_owned()
}

impl Topology {
    /// Every URL of the topology, as configured (passwords included).
    pub(crate) fn urls(&self) -> Vec<&str> {
        match self {
            Topology::Single(url) => vec![url.as_str()],
            Topology::Cluster(urls)
            | Topology::Sentinel {
                sentinels: urls, ..
            } => urls.iter().map(String::as_str).collect(),
        }
    }
}

impl RedisConfig {
    /// Reads and validates settings from the environment (`REDIS_URL`, `SSOT_REDIS_*`).
    pub fn from_env() -> Result<Self> {
        RedisOptions::from_env()?.resolve()
    }

    /// Settings for a single server at `url`, all else default.
    pub fn for_url(url: &str) -> Result<Self> {
        RedisOptions {
            url: Some(url.into()),
            ..RedisOptions::default()
        }
        .resolve()
    }

    /// The URLs to display, passwords redacted.
    pub fn redacted_urls(&self) -> Vec<String> {
        self.topology.urls().into_iter().map(redact_url).collect()
    }

    /// True when the topology is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }
}

#[cfg(test)]
mod tests;
