//! The `ssot` configuration file: one TOML document with a table per part.
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
//! ```
//! Settings come from the file (`--config`, else `./ssot.toml` when present), then the
//! environment (`REDIS_URL`, `SSOT_REDIS_*`, `SSOT_JWT_SECRET`, `SSOT_SERVICE_KEY`,
//! `SSOT_ALLOWED_ORIGINS`), then flags; later sources win.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use redis_ssot::stores::tokens::{TokenConfig, TokenOptions};
use redis_ssot::{RedisConfig, RedisOptions};
use serde::Deserialize;
use ssot_gateway::{GatewayConfig, GatewayOptions};
use ssot_worker::{WorkerConfig, WorkerOptions};

/// The whole file. Unknown tables or keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileOptions {
    #[serde(default)]
    pub(crate) redis: RedisOptions,
    #[serde(default)]
    pub(crate) gateway: GatewayOptions,
    #[serde(default)]
    pub(crate) tokens: TokenOptions,
    #[serde(default)]
    pub(crate) worker: WorkerOptions,
}

/// The default file name looked up in the working directory.
const DEFAULT_FILE: &str = "ssot.toml";

impl FileOptions {
    /// Reads `path`, or `./ssot.toml` when no path is given and it exists.
    pub(crate) fn load(path: Option<&Path>) -> Result<FileOptions> {
        let path: PathBuf = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(FileOptions::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "invalid configuration in {}: {}",
                path.display(),
                err.message().trim()
            )
        })
    }
}

/// File, then environment, then the `--redis` flag.
pub(crate) fn redis_config(file: &FileOptions, redis_flag: Option<&str>) -> Result<RedisConfig> {
    let mut opts = file.redis.clone().merge(RedisOptions::from_env()?);
    if let Some(url) = redis_flag {
        opts.url = Some(url.into());
    }
    Ok(opts.resolve()?)
}

/// `[tokens]` with the secret from `SSOT_JWT_SECRET` when set.
pub(crate) fn token_config(file: &FileOptions) -> Result<TokenConfig> {
    let mut opts = file.tokens.clone();
    if let Ok(secret) = std::env::var("SSOT_JWT_SECRET")
        && !secret.is_empty()
    {
        opts.secret = Some(secret);
    }
    if opts.secret.is_none() && opts.public_key.is_none() {
        anyhow::bail!(
            "invalid configuration: tokens.secret: required; set SSOT_JWT_SECRET (at least 32 bytes) \
             or [tokens] public-key"
        );
    }
    Ok(opts.resolve()?)
}

/// `[gateway]`, then the environment, then `--listen`.
pub(crate) fn gateway_config(
    file: &FileOptions,
    listen: Option<&str>,
    tokens: TokenConfig,
) -> Result<GatewayConfig> {
    let mut opts = file.gateway.clone().with_env(std::env::vars());
    if let Some(listen) = listen {
        opts.listen = Some(listen.to_owned());
    }
    Ok(opts.resolve(tokens)?)
}

/// `[worker]` with the flags of `ssot worker` on top.
pub(crate) fn worker_config(file: &FileOptions, flags: WorkerFlags) -> Result<WorkerConfig> {
    let mut opts = file.worker.clone();
    opts.concurrency = flags.concurrency.or(opts.concurrency);
    opts.agent = flags.agent.or(opts.agent);
    opts.agent_url = flags.agent_url.or(opts.agent_url);
    Ok(opts.resolve()?)
}

/// Flags of `ssot worker` that override `[worker]`.
#[derive(Debug, Default)]
pub(crate) struct WorkerFlags {
    pub(crate) concurrency: Option<usize>,
    pub(crate) agent: Option<String>,
    pub(crate) agent_url: Option<String>,
}
