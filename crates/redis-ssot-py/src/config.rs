//! Settings for the Python manager: the same sources, validation and errors as the Rust
//! config and the `ssot` binary.
//!
//! Sources, later ones win: the `[redis]` table of the config file (the `config` argument,
//! else `./ssot.toml` when present), then the environment (`REDIS_URL`, `SSOT_REDIS_*`), then
//! keyword options, then the `url` and `app` arguments.

use std::path::{Path, PathBuf};

use redis_ssot::{Error, RedisConfig, RedisOptions, Result};

use pyo3::Python;
use redis_ssot::RedisManager;

use crate::process;

/// The file read when no `config` is given.
const DEFAULT_FILE: &str = "ssot.toml";

/// What `redis_ssot.init` was called with.
#[derive(Debug, Default)]
pub(crate) struct InitArgs {
    pub(crate) url: Option<String>,
    pub(crate) app: Option<String>,
    pub(crate) file: Option<PathBuf>,
    /// Keyword options as a JSON object with the TOML keys (`command-timeout-ms`).
    pub(crate) options_json: Option<String>,
}

/// Resolves `args` into validated settings.
pub(crate) fn resolve(args: InitArgs) -> Result<RedisConfig> {
    let mut opts = file_options(args.file.as_deref())?.merge(RedisOptions::from_env()?);
    if let Some(json) = args.options_json {
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| Error::Config {
            key: "options".to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(object) = value.as_object() {
            for (key, item) in object {
                // One key at a time, so an error names the option that caused it.
                let single = serde_json::json!({ key: item });
                serde_json::from_value::<RedisOptions>(single).map_err(|e| Error::Config {
                    key: format!("redis.{key}"),
                    reason: e.to_string(),
                })?;
            }
        }
        let given: RedisOptions = serde_json::from_value(value).map_err(|e| Error::Config {
            key: "redis".to_owned(),
            reason: e.to_string(),
        })?;
        opts = opts.merge(given);
    }
    if let Some(url) = args.url {
        opts.url = Some(url.into());
    }
    if args.app.is_some() {
        opts.app = args.app;
    }
    opts.resolve()
}

/// The `[redis]` table of `path`, or of `./ssot.toml` when no path is given and it exists.
fn file_options(path: Option<&Path>) -> Result<RedisOptions> {
    let path = match path {
        Some(path) => path.to_owned(),
        None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(RedisOptions::default()),
    };
    let config_error = |reason: String| Error::Config {
        key: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| config_error(e.to_string()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| config_error(e.message().trim().to_owned()))?;
    match table.remove("redis") {
        None => Ok(RedisOptions::default()),
        Some(toml::Value::Table(redis)) => RedisOptions::from_toml(&redis.to_string()),
        Some(_) => Err(Error::Config {
            key: "redis".to_owned(),
            reason: "expected a table".to_owned(),
        }),
    }
}

/// The manager of this process; the first use without `init` reads the default sources.
pub(crate) fn manager() -> Result<RedisManager> {
    Ok(process::manager(|| resolve(InitArgs::default()))?.0)
}

/// Like [`manager`], from a Python thread: a manager built by this call gets up to its
/// connect timeout (GIL released) to connect, so the first calls of a process do not fail
/// with "connection down" while it is still connecting. Never call it on a runtime thread.
pub(crate) fn manager_connected(py: Python<'_>) -> Result<RedisManager> {
    let (manager, fresh) = process::manager(|| resolve(InitArgs::default()))?;
    if fresh {
        let runtime = process::runtime()?;
        let budget = manager.config().connect_timeout;
        py.detach(|| runtime.block_on(manager.wait_ready(budget)));
    }
    Ok(manager)
}
