//! `Tokens.verify`: JWT verification with revocation, as the gateway does it.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use redis_ssot::stores::tokens::{self, Claims, TokenConfig, TokenOptions};

use super::{Style, scope, seconds};
use crate::bridge::{ToPython, run};
use crate::config;
use crate::errors::to_pyerr;
use crate::manager::Redis;

/// The Rust `Tokens`.
///
/// ## Behavior
/// - Settings are the `[tokens]` options of `ssot.toml`, checked when the object is made.
/// - The Rust store (which follows revocations over the manager's subscriber connection) is
///   built on first use in each process, so a forked child gets its own.
#[pyclass(frozen, module = "redis_ssot._native")]
pub(crate) struct Tokens {
    style: Style,
    config: TokenConfig,
    /// The store of the process `pid`.
    store: Arc<Mutex<Option<(u32, tokens::Tokens)>>>,
}

/// Verified claims as a dict, converted once the GIL is held.
fn claims_dict(claims: Claims) -> ToPython<Claims> {
    ToPython(claims, |py, c| {
        let dict = PyDict::new(py);
        dict.set_item("sub", c.sub.as_str())?;
        dict.set_item("exp", c.exp)?;
        dict.set_item("nbf", c.nbf)?;
        dict.set_item("iat", c.iat)?;
        dict.set_item("jti", c.jti)?;
        dict.set_item("aud", c.aud)?;
        dict.set_item("iss", c.iss)?;
        Ok(dict.into_any())
    })
}

async fn store(
    shared: &Mutex<Option<(u32, tokens::Tokens)>>,
    config: &TokenConfig,
) -> redis_ssot::Result<tokens::Tokens> {
    let pid = std::process::id();
    if let Some((owner, store)) = &*shared.lock().unwrap_or_else(|e| e.into_inner())
        && *owner == pid
    {
        return Ok(store.clone());
    }
    let store = tokens::Tokens::new(config::manager()?, config.clone()).await?;
    let mut slot = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stale) = slot.take()
        && stale.0 != pid
    {
        // The parent's store belongs to the parent's runtime: leak it, never drop it here.
        std::mem::forget(stale);
    }
    *slot = Some((pid, store.clone()));
    Ok(store)
}

#[pymethods]
impl Tokens {
    /// Options as in the `[tokens]` table, in Python spelling: `Tokens(redis,
    /// secret="...")`, `Tokens(redis, algorithm="RS256", public_key=pem, audience=["api"])`.
    #[new]
    #[pyo3(signature = (redis, **options))]
    fn new(
        py: Python<'_>,
        redis: PyRef<'_, Redis>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Tokens> {
        let options_json = crate::options_json(options)?.unwrap_or_else(|| "{}".to_owned());
        let resolve = || -> redis_ssot::Result<TokenConfig> {
            let options: TokenOptions =
                serde_json::from_str(&options_json).map_err(|e| redis_ssot::Error::Config {
                    key: "tokens".to_owned(),
                    reason: e.to_string(),
                })?;
            options.resolve()
        };
        Ok(Tokens {
            style: Style::of(&redis),
            config: resolve().map_err(|e| to_pyerr(py, e))?,
            store: Arc::default(),
        })
    }

    /// The claims of a valid, unrevoked token; raises `TokenError` with its `kind` otherwise.
    fn verify<'py>(&self, py: Python<'py>, token: String) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.store);
        let config = self.config.clone();
        run(py, self.style.mode, async move {
            let store = store(&shared, &config).await?;
            Ok(claims_dict(store.verify(&token).await?))
        })
    }

    /// Signs a token for `user` valid `ttl` seconds (shared-secret settings only), for
    /// tests and development.
    fn issue(&self, py: Python<'_>, user: &Bound<'_, PyAny>, ttl: f64) -> PyResult<String> {
        let scope = scope(user)?;
        let ttl = seconds("ttl", ttl)?;
        self.config
            .issue(scope.user(), ttl)
            .map_err(|e| to_pyerr(py, e))
    }
}
