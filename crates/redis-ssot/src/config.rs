//! Configuration: one place, two stages.
//!
//! [`RedisOptions`] is what a user writes (TOML `[redis]` table, `REDIS_URL` / `SSOT_REDIS_*`
//! environment variables); [`RedisOptions::resolve`] validates it into a [`RedisConfig`] with
//! precise errors naming the setting. Secrets never appear in `Debug` or `Display`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Default application name used in connection names (`ssot:<app>:<role>`).
pub const DEFAULT_APP: &str = "app";
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

/// Redis settings as written by the user. Every field is optional; see the `DEFAULT_*` constants.
///
/// `Debug` redacts the password of `url`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedisOptions {
    /// `redis://`, `rediss://` (TLS), a comma-separated list of nodes, or
    /// `redis+cluster://h1:p1,h2:p2` (`rediss+cluster://` with TLS).
    pub url: Option<String>,
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

/// Validated TLS material, read once at start-up. `Debug` shows the files, never the key.
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
    /// The certificate chain.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

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

/// Validated circuit breaker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Outcomes kept in the sliding window.
    pub window_size: usize,
    /// Outcomes needed before rates are evaluated.
    pub minimum_calls: usize,
    /// Failure rate (0..=100) at or above which the circuit opens.
    pub failure_rate_threshold: f64,
    /// A call slower than this counts as slow.
    pub slow_call_duration: Duration,
    /// Slow-call rate (0..=100) at or above which the circuit opens.
    pub slow_call_rate_threshold: f64,
    /// Time the circuit stays open before probing.
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

/// Where Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server.
    Single(String),
    /// A Redis Cluster, reached through these seed nodes (full URLs).
    Cluster(Vec<String>),
}

/// Validated settings of the manager.
#[derive(Clone, PartialEq)]
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
    /// TLS material; `Some` exactly when the URL(s) are `rediss://`.
    pub tls: Option<TlsConfig>,
}

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
    "SSOT_REDIS_TLS_CA_FILE",
    "SSOT_REDIS_TLS_CERT_FILE",
    "SSOT_REDIS_TLS_KEY_FILE",
];

impl RedisOptions {
    /// Parses the content of a `[redis]` TOML table (or a file holding only these keys).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|err| Error::config("redis", toml_reason(&err)))
    }

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
        for (key, value) in vars {
            if key == "REDIS_URL" {
                opts.url = Some(value);
                continue;
            }
            if !key.starts_with("SSOT_REDIS_") {
                continue;
            }
            if !ENV_KEYS.contains(&key.as_str()) {
                return Err(Error::config(
                    key,
                    format!(
                        "unknown variable; known: REDIS_URL, {}",
                        ENV_KEYS.join(", ")
                    ),
                ));
            }
            let number = |v: &str| -> Result<u64> {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::config(&key, format!("expected a whole number, got {v:?}")))
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
                "SSOT_REDIS_TLS_CA_FILE" => tls.ca_file = Some(value.into()),
                "SSOT_REDIS_TLS_CERT_FILE" => tls.cert_file = Some(value.into()),
                "SSOT_REDIS_TLS_KEY_FILE" => tls.key_file = Some(value.into()),
                _ => unreachable!("listed in ENV_KEYS"),
            }
        }
        if breaker.open_duration_ms.is_some() {
            opts.breaker = Some(breaker);
        }
        if tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some() {
            opts.tls = Some(tls);
        }
        Ok(opts)
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
        let url = self
            .url
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let topology = parse_topology(&url)?;
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
        let ms = |key: &str, value: Option<u64>, default: Duration| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(0) => Err(Error::config(
                    format!("redis.{key}"),
                    "must be greater than 0",
                )),
                Some(v) => Ok(Duration::from_millis(v)),
            }
        };
        let reconnect_min_delay = ms(
            "reconnect-min-delay-ms",
            self.reconnect_min_delay_ms,
            DEFAULT_RECONNECT_MIN_DELAY,
        )?;
        let reconnect_max_delay = ms(
            "reconnect-max-delay-ms",
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
            command_timeout: ms(
                "command-timeout-ms",
                self.command_timeout_ms,
                DEFAULT_COMMAND_TIMEOUT,
            )?,
            connect_timeout: ms(
                "connect-timeout-ms",
                self.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            blocking_pool_size,
            health_interval: ms(
                "health-interval-ms",
                self.health_interval_ms,
                DEFAULT_HEALTH_INTERVAL,
            )?,
            reconnect_min_delay,
            reconnect_max_delay,
            breaker: resolve_breaker(self.breaker.unwrap_or_default())?,
            tls: resolve_tls(&topology_urls(&topology), self.tls)?,
            topology,
        })
    }
}

fn topology_urls(topology: &Topology) -> Vec<&str> {
    match topology {
        Topology::Single(url) => vec![url.as_str()],
        Topology::Cluster(urls) => urls.iter().map(String::as_str).collect(),
    }
}

/// TLS material for `rediss://` URLs, read from the configured files. Every node must use
/// the same scheme, and certificates without a `rediss://` URL are a mistake worth naming.
fn resolve_tls(urls: &[&str], opts: Option<TlsOptions>) -> Result<Option<TlsConfig>> {
    let tls_nodes = urls.iter().filter(|u| u.starts_with("rediss://")).count();
    if tls_nodes != 0 && tls_nodes != urls.len() {
        return Err(Error::config(
            "redis.url",
            "mixes redis:// and rediss:// nodes; use one scheme for every node",
        ));
    }
    let opts = opts.unwrap_or_default();
    if tls_nodes == 0 {
        if let Some(key) = [
            ("ca-file", &opts.ca_file),
            ("cert-file", &opts.cert_file),
            ("key-file", &opts.key_file),
        ]
        .iter()
        .find_map(|(key, v)| v.as_ref().map(|_| key))
        {
            return Err(Error::config(
                format!("redis.tls.{key}"),
                "is set but the URL is not rediss://",
            ));
        }
        return Ok(None);
    }
    let read = |key: &str, path: &Path| -> Result<Vec<u8>> {
        let pem = std::fs::read(path).map_err(|err| {
            Error::config(
                format!("redis.tls.{key}"),
                format!("cannot read {}: {err}", path.display()),
            )
        })?;
        if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(Error::config(
                format!("redis.tls.{key}"),
                format!("{} is not a PEM file", path.display()),
            ));
        }
        Ok(pem)
    };
    let ca_pem = opts
        .ca_file
        .as_deref()
        .map(|p| read("ca-file", p))
        .transpose()?;
    let client = match (opts.cert_file, opts.key_file) {
        (None, None) => None,
        (Some(cert_file), Some(key_file)) => Some(ClientCertificate {
            cert_pem: read("cert-file", &cert_file)?,
            key_pem: read("key-file", &key_file)?,
            cert_file,
        }),
        (Some(_), None) => {
            return Err(Error::config(
                "redis.tls.key-file",
                "is required with cert-file",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::config(
                "redis.tls.cert-file",
                "is required with key-file",
            ));
        }
    };
    Ok(Some(TlsConfig {
        ca_file: opts.ca_file,
        ca_pem,
        client,
    }))
}

fn resolve_breaker(opts: BreakerOptions) -> Result<BreakerConfig> {
    let d = BreakerConfig::default();
    let count = |key: &str, v: Option<usize>, default: usize| -> Result<usize> {
        match v {
            None => Ok(default),
            Some(0) => Err(Error::config(
                format!("redis.breaker.{key}"),
                "must be greater than 0",
            )),
            Some(v) => Ok(v),
        }
    };
    let percent = |key: &str, v: Option<f64>, default: f64| -> Result<f64> {
        match v {
            None => Ok(default),
            Some(p) if p > 0.0 && p <= 100.0 => Ok(p),
            Some(p) => Err(Error::config(
                format!("redis.breaker.{key}"),
                format!("must be a percentage in (0, 100], got {p}"),
            )),
        }
    };
    let ms = |key: &str, v: Option<u64>, default: Duration| -> Result<Duration> {
        match v {
            None => Ok(default),
            Some(0) => Err(Error::config(
                format!("redis.breaker.{key}"),
                "must be greater than 0",
            )),
            Some(v) => Ok(Duration::from_millis(v)),
        }
    };
    let window_size = count("window-size", opts.window_size, d.window_size)?;
    let minimum_calls = count("minimum-calls", opts.minimum_calls, d.minimum_calls)?;
    if minimum_calls > window_size {
        return Err(Error::config(
            "redis.breaker.minimum-calls",
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
        slow_call_duration: ms(
            "slow-call-duration-ms",
            opts.slow_call_duration_ms,
            d.slow_call_duration,
        )?,
        slow_call_rate_threshold: percent(
            "slow-call-rate-threshold",
            opts.slow_call_rate_threshold,
            d.slow_call_rate_threshold,
        )?,
        open_duration: ms("open-duration-ms", opts.open_duration_ms, d.open_duration)?,
        half_open_calls: count("half-open-calls", opts.half_open_calls, d.half_open_calls)?,
    })
}

fn toml_reason(err: &toml::de::Error) -> String {
    err.message().trim().to_owned()
}

/// Parses `REDIS_URL` into a topology.
fn parse_topology(raw: &str) -> Result<Topology> {
    const KEY: &str = "redis.url";
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::config(KEY, "is empty"));
    }
    for (prefix, scheme) in [
        ("redis+cluster://", "redis"),
        ("rediss+cluster://", "rediss"),
    ] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let nodes = rest
                .split(',')
                .map(|node| check_url(&format!("{scheme}://{}", node.trim())))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Topology::Cluster(nodes));
        }
    }
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() > 1 {
        let nodes = parts
            .into_iter()
            .map(check_url)
            .collect::<Result<Vec<_>>>()?;
        return Ok(Topology::Cluster(nodes));
    }
    Ok(Topology::Single(check_url(raw)?))
}

fn check_url(raw: &str) -> Result<String> {
    const KEY: &str = "redis.url";
    let parsed = url::Url::parse(raw)
        .map_err(|err| Error::config(KEY, format!("{err} in {}", redact_url(raw))))?;
    match parsed.scheme() {
        "redis" | "rediss" => {}
        other => {
            return Err(Error::config(
                KEY,
                format!(
                    "unsupported scheme {other:?}; use redis://, rediss://, redis+cluster:// \
                     or rediss+cluster://"
                ),
            ));
        }
    }
    if parsed.fragment().is_some() {
        // redis-rs reads `#insecure` as "skip certificate verification": never from config.
        return Err(Error::config(
            KEY,
            "must not have a #fragment; certificates are set under [redis.tls]",
        ));
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err(Error::config(
            KEY,
            format!("no host in {}", redact_url(raw)),
        ));
    }
    let path = parsed.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err(Error::config(
            KEY,
            format!("database must be a number, got {path:?}"),
        ));
    }
    Ok(raw.to_owned())
}

/// Replaces the password of a Redis URL by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => raw.to_owned(),
        // Not a URL: do not echo what may be a secret.
        Err(_) => raw.split('@').next_back().unwrap_or("").to_owned(),
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
            url: Some(url.to_owned()),
            ..RedisOptions::default()
        }
        .resolve()
    }

    /// The URLs to display, passwords redacted.
    pub fn redacted_urls(&self) -> Vec<String> {
        match &self.topology {
            Topology::Single(url) => vec![redact_url(url)],
            Topology::Cluster(urls) => urls.iter().map(|u| redact_url(u)).collect(),
        }
    }

    /// True when the topology is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Single(url) => f.debug_tuple("Single").field(&redact_url(url)).finish(),
            Topology::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("app", &self.app)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("blocking_pool_size", &self.blocking_pool_size)
            .field("health_interval", &self.health_interval)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("breaker", &self.breaker)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("app", &self.app)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("blocking_pool_size", &self.blocking_pool_size)
            .field("health_interval_ms", &self.health_interval_ms)
            .field("reconnect_min_delay_ms", &self.reconnect_min_delay_ms)
            .field("reconnect_max_delay_ms", &self.reconnect_max_delay_ms)
            .field("breaker", &self.breaker)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_file", &self.ca_file)
            .field(
                "client_cert_file",
                &self.client.as_ref().map(|c| &c.cert_file),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_cluster() {
            "cluster"
        } else {
            "single"
        };
        writeln!(f, "url = {:?}  # {kind}", self.redacted_urls().join(","))?;
        writeln!(f, "app = {:?}", self.app)?;
        writeln!(
            f,
            "command-timeout-ms = {}",
            self.command_timeout.as_millis()
        )?;
        writeln!(
            f,
            "connect-timeout-ms = {}",
            self.connect_timeout.as_millis()
        )?;
        writeln!(f, "blocking-pool-size = {}", self.blocking_pool_size)?;
        writeln!(
            f,
            "health-interval-ms = {}",
            self.health_interval.as_millis()
        )?;
        writeln!(
            f,
            "reconnect-min-delay-ms = {}",
            self.reconnect_min_delay.as_millis()
        )?;
        writeln!(
            f,
            "reconnect-max-delay-ms = {}",
            self.reconnect_max_delay.as_millis()
        )?;
        let b = &self.breaker;
        writeln!(f, "[breaker]")?;
        writeln!(f, "window-size = {}", b.window_size)?;
        writeln!(f, "minimum-calls = {}", b.minimum_calls)?;
        writeln!(f, "failure-rate-threshold = {}", b.failure_rate_threshold)?;
        writeln!(
            f,
            "slow-call-duration-ms = {}",
            b.slow_call_duration.as_millis()
        )?;
        writeln!(
            f,
            "slow-call-rate-threshold = {}",
            b.slow_call_rate_threshold
        )?;
        writeln!(f, "open-duration-ms = {}", b.open_duration.as_millis())?;
        write!(f, "half-open-calls = {}", b.half_open_calls)?;
        if let Some(tls) = &self.tls {
            writeln!(f, "\n[tls]")?;
            match &tls.ca_file {
                Some(path) => writeln!(f, "ca-file = {:?}", path.display().to_string())?,
                None => writeln!(f, "# ca-file unset: the system's trust store")?,
            }
            match &tls.client {
                Some(client) => write!(
                    f,
                    "cert-file = {:?}  # key-file set, not shown",
                    client.cert_file.display().to_string()
                )?,
                None => write!(f, "# no client certificate")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_key(result: Result<RedisConfig>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_resolve() {
        let cfg = RedisOptions::default().resolve().unwrap();
        assert_eq!(
            cfg.topology,
            Topology::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(cfg.command_timeout, DEFAULT_COMMAND_TIMEOUT);
    }

    #[test]
    fn unknown_toml_key_is_named() {
        let err =
            RedisOptions::from_toml("url = \"redis://x\"\ncomand-timeout-ms = 5\n").unwrap_err();
        assert!(err.to_string().contains("comand-timeout-ms"), "{err}");
    }

    #[test]
    fn zero_timeout_rejected_with_key() {
        let opts = RedisOptions::from_toml("command-timeout-ms = 0").unwrap();
        assert_eq!(err_key(opts.resolve()), "redis.command-timeout-ms");
    }

    #[test]
    fn bad_urls_rejected() {
        for url in [
            "",
            "http://x",
            "redis://",
            "redis://h:notaport",
            "redis://h/abc",
        ] {
            let opts = RedisOptions {
                url: Some(url.into()),
                ..Default::default()
            };
            assert_eq!(err_key(opts.resolve()), "redis.url", "{url}");
        }
    }

    #[test]
    fn cluster_forms() {
        let opts = RedisOptions {
            url: Some("redis+cluster://a:1,b:2".into()),
            ..Default::default()
        };
        assert_eq!(
            opts.resolve().unwrap().topology,
            Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        let opts = RedisOptions {
            url: Some("redis://a:1, redis://b:2".into()),
            ..Default::default()
        };
        assert!(opts.resolve().unwrap().is_cluster());
    }

    #[test]
    fn secrets_redacted() {
        let opts = RedisOptions {
            url: Some("redis://user:hunter2@localhost:6379/0".into()),
            ..Default::default()
        };
        let shown_opts = format!("{opts:?}");
        let cfg = opts.resolve().unwrap();
        for shown in [shown_opts, format!("{cfg:?}"), cfg.to_string()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    #[test]
    fn env_typo_is_an_error() {
        let vars = [("SSOT_REDIS_COMAND_TIMEOUT_MS".to_owned(), "5".to_owned())];
        let err = RedisOptions::from_vars(vars).unwrap_err();
        assert!(
            err.to_string().contains("SSOT_REDIS_COMAND_TIMEOUT_MS"),
            "{err}"
        );
        let vars = [(
            "SSOT_REDIS_COMMAND_TIMEOUT_MS".to_owned(),
            "soon".to_owned(),
        )];
        assert!(RedisOptions::from_vars(vars).is_err());
    }

    #[test]
    fn breaker_bounds() {
        let opts = RedisOptions::from_toml("[breaker]\nfailure-rate-threshold = 150").unwrap();
        assert_eq!(
            err_key(opts.resolve()),
            "redis.breaker.failure-rate-threshold"
        );
        let opts =
            RedisOptions::from_toml("[breaker]\nwindow-size = 5\nminimum-calls = 6").unwrap();
        assert_eq!(err_key(opts.resolve()), "redis.breaker.minimum-calls");
    }
}
