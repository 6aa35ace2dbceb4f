//! How settings are shown: `Display` of [`RedisConfig`] as the TOML `[redis]` table, from its
//! `Serialize` view, and the `Debug` impls that keep passwords and PEM material out of logs.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{
    BreakerConfig, BulkConfig, RedisConfig, TlsConfig, Topology, redact_url, serialize_ms,
};

/// What a [`RedisConfig`] serializes as: the keys of `[redis]`, secrets redacted.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RedisView<'a> {
    url: String,
    app: &'a str,
    #[serde(serialize_with = "serialize_ms")]
    command_timeout_ms: Duration,
    #[serde(serialize_with = "serialize_ms")]
    connect_timeout_ms: Duration,
    blocking_pool_size: usize,
    #[serde(serialize_with = "serialize_ms")]
    health_interval_ms: Duration,
    #[serde(serialize_with = "serialize_ms")]
    reconnect_min_delay_ms: Duration,
    #[serde(serialize_with = "serialize_ms")]
    reconnect_max_delay_ms: Duration,
    breaker: &'a BreakerConfig,
    bulk: &'a BulkConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsView<'a>>,
}

/// The files of `[redis.tls]`; the PEM content is never shown.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct TlsView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<&'a Path>,
}

impl Serialize for RedisConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RedisView {
            url: shown_url(&self.topology),
            app: &self.app,
            command_timeout_ms: self.command_timeout,
            connect_timeout_ms: self.connect_timeout,
            blocking_pool_size: self.blocking_pool_size,
            health_interval_ms: self.health_interval,
            reconnect_min_delay_ms: self.reconnect_min_delay,
            reconnect_max_delay_ms: self.reconnect_max_delay,
            breaker: &self.breaker,
            bulk: &self.bulk,
            tls: self.tls.as_ref().map(|tls| TlsView {
                ca_file: tls.ca_file.as_deref(),
                cert_file: tls.client.as_ref().map(|c| c.cert_file.as_path()),
                key_file: tls.client.as_ref().map(|c| c.key_file.as_path()),
            }),
        }
        .serialize(serializer)
    }
}

/// The `url` setting that reads back as `topology`, passwords redacted.
fn shown_url(topology: &Topology) -> String {
    match topology {
        Topology::Sentinel { sentinels, master } => {
            let scheme = if sentinels[0].starts_with("rediss://") {
                "rediss"
            } else {
                "redis"
            };
            let hosts: Vec<String> = sentinels
                .iter()
                .map(|url| {
                    let shown = redact_url(url);
                    match shown.split_once("://") {
                        Some((_, host)) => host.trim_end_matches('/').to_owned(),
                        None => shown,
                    }
                })
                .collect();
            format!("{scheme}+sentinel://{}/{master}", hosts.join(","))
        }
        other => other
            .urls()
            .into_iter()
            .map(redact_url)
            .collect::<Vec<_>>()
            .join(","),
    }
}

impl fmt::Display for RedisConfig {
    /// The `[redis]` table's content as TOML (without the `[redis]` header).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = toml::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(text.trim_end())
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
            Topology::Sentinel { sentinels, master } => f
                .debug_struct("Sentinel")
                .field(
                    "sentinels",
                    &sentinels.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
                )
                .field("master", master)
                .finish(),
        }
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
