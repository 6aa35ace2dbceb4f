//! The `url` setting: parsing into a [`Topology`], and password redaction.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Topology};

/// The setting every URL error names.
const KEY: &str = "redis.url";

/// The `url` setting as written: one URL, a comma-separated node list, or
/// `redis+cluster://`. `Debug` and `Serialize` replace its password by `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL as written, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for RedisUrl {
    fn from(url: String) -> Self {
        RedisUrl(url)
    }
}

impl From<&str> for RedisUrl {
    fn from(url: &str) -> Self {
        RedisUrl(url.to_owned())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_urls(&self.0), f)
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact_urls(&self.0))
    }
}

/// Each comma-separated part of `raw` redacted.
fn redact_urls(raw: &str) -> String {
    raw.split(',')
        .map(|part| redact_url(part.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the `url` setting into a topology.
pub(super) fn parse_topology(raw: &str) -> Result<Topology, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ConfigError::new(KEY, "is empty"));
    }
    for (prefix, scheme) in [
        ("redis+cluster://", "redis"),
        ("rediss+cluster://", "rediss"),
    ] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let nodes = rest
                .split(',')
                .map(|node| check_url(&format!("{scheme}://{}", node.trim())))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Topology::Cluster(nodes));
        }
    }
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() > 1 {
        let nodes = parts
            .into_iter()
            .map(check_url)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Topology::Cluster(nodes));
    }
    Ok(Topology::Single(check_url(raw)?))
}

fn check_url(raw: &str) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(raw)
        .map_err(|err| ConfigError::new(KEY, format!("{err} in {}", redact_url(raw))))?;
    match parsed.scheme() {
        "redis" | "rediss" => {}
        other => {
            return Err(ConfigError::new(
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
        return Err(ConfigError::new(
            KEY,
            "must not have a #fragment; certificates are set under [redis.tls]",
        ));
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err(ConfigError::new(
            KEY,
            format!("no host in {}", redact_url(raw)),
        ));
    }
    let path = parsed.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err(ConfigError::new(
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
