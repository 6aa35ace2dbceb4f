//! The `ssot` configuration: one TOML document with a table per part.
//!
//! ```toml
//! [redis]                 # see redis_ssot::RedisOptions
//! url = "redis://127.0.0.1:6379"
//! [gateway]               # see ssot_gateway::GatewayOptions
//! listen = "127.0.0.1:8080"
//! [worker]                # see ssot_worker::WorkerOptions
//! agent = "demo"
//! [tokens]                # see redis_ssot::stores::tokens::TokenOptions
//! algorithm = "HS256"     # the secret comes from SSOT_JWT_SECRET
//! [events]                # retention, shared by serve and worker
//! max-len = 10000
//! [check]                 # read by `ssot check` only
//! ```
//! The file is `--config`, else `./ssot.toml`, else `[tool.ssot]` of `./pyproject.toml`.
//! Each command reads its own tables and accepts the others. Settings come from the file,
//! then the environment (see `env`), then flags; later sources win.
//!
//! # Layout
//! - `file`: reading the file, with errors that name the key, line and column.
//! - `env`: every `SSOT_*` variable, and the check that rejects unknown ones.
//! - `effective`: the effective configuration of every table, as `ssot doctor` prints it.

mod effective;
pub(crate) mod env;
mod file;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use redis_ssot::config::{ConfigError, RedisUrl, positive, positive_ms};
use redis_ssot::stores::events::EventsConfig;
use redis_ssot::stores::tokens::{TokenAlgorithm, TokenConfig, TokenOptions};
use redis_ssot::{RedisConfig, RedisOptions};
use serde::Deserialize;
use ssot_gateway::{GatewayConfig, GatewayOptions};
use ssot_worker::{WorkerConfig, WorkerOptions};

pub(crate) use effective::effective;

/// The runtime tables of the file. Top-level names are checked by `file::parse`, which
/// accepts `[check]` and the checker's keys; serde here ignores those.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct FileOptions {
    #[serde(default)]
    pub(crate) redis: RedisOptions,
    #[serde(default)]
    pub(crate) gateway: GatewayOptions,
    #[serde(default)]
    pub(crate) tokens: TokenOptions,
    #[serde(default)]
    pub(crate) worker: WorkerOptions,
    #[serde(default)]
    pub(crate) events: EventsOptions,
    /// `ssot check`'s table, kept only to show it in `ssot doctor`.
    #[serde(default)]
    pub(crate) check: Option<toml::Table>,
    /// The file these settings came from.
    #[serde(skip)]
    pub(crate) source: Option<PathBuf>,
}

/// `[events]`: retention of the per-user event logs, the same for `serve` and `worker` so
/// both trim alike.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct EventsOptions {
    /// Events kept per user.
    pub(crate) max_len: Option<u64>,
    /// Seconds events are kept.
    pub(crate) max_age_secs: Option<u64>,
    /// Largest event `data` (bytes) accepted by the publish API.
    pub(crate) max_data_bytes: Option<usize>,
    /// Bytes one replay page reads at most.
    pub(crate) replay_page_bytes: Option<usize>,
    /// Replicas that must acknowledge a publish (`WAIT`) before it is acknowledged; 0 (the
    /// default) acknowledges once the master stored it.
    pub(crate) min_replicas_acked: Option<u32>,
    /// How long a publish waits for `min-replicas-acked`; then it fails as not replicated.
    pub(crate) wait_timeout_ms: Option<u64>,
    /// Seconds a publish's `Idempotency-Key` is remembered.
    pub(crate) idempotency_window_secs: Option<u64>,
}

/// The default file name looked up in the working directory.
const DEFAULT_FILE: &str = "ssot.toml";
/// A Python project's file, read from `[tool.ssot]` when there is no `ssot.toml`.
const PYPROJECT: &str = "pyproject.toml";

impl FileOptions {
    /// Reads `path`, or `./ssot.toml`, or `./pyproject.toml` when it has `[tool.ssot]`.
    pub(crate) fn load(path: Option<&Path>) -> Result<FileOptions> {
        let path: PathBuf = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
            None if Path::new(PYPROJECT).exists() => PathBuf::from(PYPROJECT),
            None => return Ok(FileOptions::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let pyproject = path.file_name().is_some_and(|name| name == PYPROJECT);
        let mut options = file::parse(&text, pyproject)
            .map_err(|err| anyhow::anyhow!("invalid configuration in {}: {err}", path.display()))?;
        options.source = Some(path);
        Ok(options)
    }
}

/// File, then environment, then the `--redis` flag.
pub(crate) fn redis_config(file: &FileOptions, redis_flag: Option<&str>) -> Result<RedisConfig> {
    let mut opts = file.redis.clone().merge(RedisOptions::from_env()?);
    if let Some(url) = redis_flag {
        opts.url = Some(RedisUrl::from_source(url, "redis.url (--redis)"));
    }
    Ok(opts.resolve()?)
}

/// `[tokens]` with the secret from `SSOT_JWT_SECRET` when set.
pub(crate) fn token_config(file: &FileOptions) -> Result<TokenConfig> {
    Ok(token_options(file, jwt_secret_from_env())?.resolve()?)
}

/// `SSOT_JWT_SECRET`, when set and not empty.
fn jwt_secret_from_env() -> Option<String> {
    std::env::var("SSOT_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `[tokens]` with `SSOT_JWT_SECRET`, checked for what the chosen algorithm needs.
fn token_options(
    file: &FileOptions,
    env_secret: Option<String>,
) -> Result<TokenOptions, ConfigError> {
    let mut opts = file.tokens.clone();
    let algorithm = opts.algorithm.unwrap_or_default();
    if let Some(secret) = env_secret {
        if algorithm != TokenAlgorithm::HS256 {
            return Err(ConfigError::new(
                "SSOT_JWT_SECRET",
                format!(
                    "not used with algorithm {}; set [tokens] public-key",
                    algorithm.as_str()
                ),
            ));
        }
        opts.secret = Some(secret);
    }
    if algorithm == TokenAlgorithm::HS256 && opts.secret.is_none() {
        return Err(ConfigError::new(
            "tokens.secret",
            "required for HS256; set SSOT_JWT_SECRET (at least 32 bytes), or [tokens] \
             algorithm = \"RS256\" or \"EdDSA\" with public-key",
        ));
    }
    Ok(opts)
}

/// `[gateway]`, then the environment, then `--listen`; events from [`events_config`].
pub(crate) fn gateway_config(
    file: &FileOptions,
    listen: Option<&str>,
    tokens: TokenConfig,
) -> Result<GatewayConfig> {
    let mut opts = file.gateway.clone().with_env(std::env::vars());
    let listen = match listen {
        Some(flag) => Some((flag.to_owned(), "--listen")),
        None => std::env::var("SSOT_GATEWAY_LISTEN")
            .ok()
            .map(|v| (v, "SSOT_GATEWAY_LISTEN")),
    };
    if let Some((listen, source)) = listen {
        listen
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::new(source, format!("expected ip:port, got {listen:?}")))?;
        opts.listen = Some(listen);
    }
    let mut config = opts.resolve(tokens)?;
    config.events = events_config(file)?;
    Ok(config)
}

/// `[worker]` with the flags of `ssot worker` on top.
pub(crate) fn worker_config(file: &FileOptions, flags: WorkerFlags) -> Result<WorkerConfig> {
    let mut opts = file.worker.clone();
    opts.concurrency = flags.concurrency.or(opts.concurrency);
    opts.agent = flags.agent.or(opts.agent);
    opts.agent_url = flags.agent_url.or(opts.agent_url);
    Ok(opts.resolve()?)
}

/// `[events]`, over the older `[gateway]` keys `event-max-len`, `event-max-age-secs` and
/// `max-event-bytes`; setting one in both places is an error naming both.
pub(crate) fn events_config(file: &FileOptions) -> Result<EventsConfig, ConfigError> {
    let older = file.gateway.events_config()?;
    let events = &file.events;
    for (new, old, both) in [
        (
            "events.max-len",
            "gateway.event-max-len",
            events.max_len.is_some() && file.gateway.event_max_len.is_some(),
        ),
        (
            "events.max-age-secs",
            "gateway.event-max-age-secs",
            events.max_age_secs.is_some() && file.gateway.event_max_age_secs.is_some(),
        ),
        (
            "events.max-data-bytes",
            "gateway.max-event-bytes",
            events.max_data_bytes.is_some() && file.gateway.max_event_bytes.is_some(),
        ),
    ] {
        if both {
            return Err(ConfigError::new(
                new,
                format!("also set as {old}; keep only {new}"),
            ));
        }
    }
    Ok(EventsConfig {
        max_len: positive("events.max-len", events.max_len, older.max_len)?,
        max_age: Duration::from_secs(positive(
            "events.max-age-secs",
            events.max_age_secs,
            older.max_age.as_secs(),
        )?),
        max_data_bytes: positive(
            "events.max-data-bytes",
            events.max_data_bytes,
            older.max_data_bytes,
        )?,
        replay_page_bytes: positive(
            "events.replay-page-bytes",
            events.replay_page_bytes,
            older.replay_page_bytes,
        )?,
        // 0 is a valid setting: no replica acknowledgement.
        min_replicas_acked: events
            .min_replicas_acked
            .unwrap_or(older.min_replicas_acked),
        wait_timeout: positive_ms(
            "events.wait-timeout-ms",
            events.wait_timeout_ms,
            older.wait_timeout,
        )?,
        idempotency_window: Duration::from_secs(positive(
            "events.idempotency-window-secs",
            events.idempotency_window_secs,
            older.idempotency_window.as_secs(),
        )?),
    })
}

/// Flags of `ssot worker` that override `[worker]`.
#[derive(Debug, Default)]
pub(crate) struct WorkerFlags {
    pub(crate) concurrency: Option<usize>,
    pub(crate) agent: Option<String>,
    pub(crate) agent_url: Option<String>,
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
