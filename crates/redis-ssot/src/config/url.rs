//! The `url` setting: parsing into a [`Topology`], and password redaction.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Topology};

/// The setting a URL from the configuration file is reported as.
const FILE_KEY: &str = "redis.url";

/// The `url` setting as written: one URL, a comma-separated node list,
/// `redis+cluster://` or `redis+sentinel://`, with where it came from. `Debug` and `Serialize` replace its password
/// by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    /// What errors name: `redis.url`, `REDIS_URL`, `--redis`.
    key: String,
}

impl RedisUrl {
    /// A URL that came from `key` (an environment variable or a flag), which errors name.
    pub fn from_source(url: impl Into<String>, key: impl Into<String>) -> Self {
        RedisUrl {
            url: url.into(),
            key: key.into(),
        }
    }

    /// The URL as written, password included.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// Where the URL came from, as errors name it.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl From<String> for RedisUrl {
    fn from(url: String) -> Self {
        RedisUrl::from_source(url, FILE_KEY)
    }
}

impl From<&str> for RedisUrl {
    fn from(url: &str) -> Self {
        RedisUrl::from_source(url, FILE_KEY)
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(RedisUrl::from)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_urls(&self.url), f)
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact_urls(&self.url))
    }
}

/// Each comma-separated part of `raw` redacted.
fn redact_urls(raw: &str) -> String {
    raw.split(',')
        .map(|part| redact_url(part.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the `url` setting into a topology; errors name where the URL came from.
pub(super) fn parse_topology(url: &RedisUrl) -> Result<Topology, ConfigError> {
    let key = url.key();
    let raw = url.expose().trim();
    if raw.is_empty() {
        return Err(ConfigError::new(key, "is empty"));
    }
    for (prefix, scheme) in [
        ("redis+cluster://", "redis"),
        ("rediss+cluster://", "rediss"),
    ] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let nodes = rest
                .split(',')
                .map(|node| check_url(key, &format!("{scheme}://{}", node.trim())))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Topology::Cluster(nodes));
        }
    }
    for (prefix, scheme) in [
        ("redis+sentinel://", "redis"),
        ("rediss+sentinel://", "rediss"),
    ] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            return parse_sentinel(key, scheme, rest);
        }
    }
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() > 1 {
        let nodes = parts
            .into_iter()
            .map(|node| check_url(key, node))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Topology::Cluster(nodes));
    }
    Ok(Topology::Single(check_url(key, raw)?))
}

/// The forms a URL may take, for error messages.
const FORMS: &str = "redis://, rediss://, redis+cluster://, rediss+cluster://, \
                     redis+sentinel:// or rediss+sentinel://";

/// `host:port[,host:port...]/<master-name>` after `redis+sentinel://`: the Sentinels and the
/// name they monitor the master under. Credentials before the first host are the master's.
fn parse_sentinel(key: &str, scheme: &str, rest: &str) -> Result<Topology, ConfigError> {
    let Some((hosts, master)) = rest.rsplit_once('/') else {
        return Err(ConfigError::new(
            key,
            format!(
                "expected {scheme}+sentinel://host:port[,host:port...]/<master-name>, \
                 the master name is missing in {}",
                redact_urls(rest)
            ),
        ));
    };
    if master.is_empty()
        || !master
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ConfigError::new(
            key,
            format!("the Sentinel master name must be [A-Za-z0-9_.-]+, got {master:?}"),
        ));
    }
    let sentinels = hosts
        .split(',')
        .map(|host| {
            let url = check_url(key, &format!("{scheme}://{}", host.trim()))?;
            let parsed = url::Url::parse(&url).map_err(|e| ConfigError::new(key, e.to_string()))?;
            if parsed.port().is_none() || !matches!(parsed.path(), "" | "/") {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "a Sentinel is host:port (Sentinels listen on 26379 by default), got {:?}",
                        redact_url(host.trim())
                    ),
                ));
            }
            Ok(url)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Topology::Sentinel {
        sentinels,
        master: master.to_owned(),
    })
}

fn check_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    if !raw.contains("://") {
        return Err(ConfigError::new(
            key,
            format!(
                "expected a URL like redis://host:6379 ({FORMS}), got {:?}",
                redact_url(raw)
            ),
        ));
    }
    let parsed = url::Url::parse(raw)
        .map_err(|err| ConfigError::new(key, format!("{err} in {}", redact_url(raw))))?;
    match parsed.scheme() {
        "redis" | "rediss" => {}
        other => {
            return Err(ConfigError::new(
                key,
                format!("unsupported scheme {other:?}; use {FORMS}"),
            ));
        }
    }
    if parsed.fragment().is_some() {
        // redis-rs reads `#insecure` as "skip certificate verification": never from config.
        return Err(ConfigError::new(
            key,
            "must not have a #fragment; certificates are set under [redis.tls]",
        ));
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err(ConfigError::new(
            key,
            format!("no host in {}", redact_url(raw)),
        ));
    }
    let path = parsed.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err(ConfigError::new(
            key,
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
