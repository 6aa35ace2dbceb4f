//! The effective configuration of every table, as `ssot doctor` prints it: TOML that the
//! file reader accepts, secrets shown as `<redacted>`, and a comment for each table that
//! cannot be used as configured.

use redis_ssot::RedisConfig;
use redis_ssot::config::Redacted;
use redis_ssot::stores::events::EventsConfig;
use redis_ssot::stores::tokens::{DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL, DEFAULT_LEEWAY};
use redis_ssot::stores::tokens::{TokenConfig, TokenOptions};
use serde::Serialize;
use ssot_gateway::GatewayConfig;
use ssot_worker::WorkerConfig;

use super::{
    FileOptions, WorkerFlags, events_config, gateway_config, jwt_secret_from_env, token_options,
    worker_config,
};

/// The whole document; a table that cannot be resolved is left out and explained above it.
#[derive(Serialize)]
struct Effective<'a> {
    redis: &'a RedisConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<GatewayConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokensView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<WorkerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<EventsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'a toml::Table>,
}

/// `[tokens]` as it will be used. The key material is never shown.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct TokensView {
    algorithm: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<Redacted<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<Redacted<()>>,
    audience: Vec<String>,
    issuer: Vec<String>,
    leeway_secs: u64,
    strict_revocation: bool,
    cache_size: usize,
    cache_ttl_ms: u64,
}

impl TokensView {
    fn new(opts: TokenOptions) -> TokensView {
        TokensView {
            algorithm: opts.algorithm.unwrap_or_default().as_str(),
            secret: opts.secret.map(|_| Redacted(())),
            public_key: opts.public_key.map(|_| Redacted(())),
            audience: opts.audience.unwrap_or_default(),
            issuer: opts.issuer.unwrap_or_default(),
            leeway_secs: opts.leeway_secs.unwrap_or(DEFAULT_LEEWAY.as_secs()),
            strict_revocation: opts.strict_revocation.unwrap_or(false),
            cache_size: opts.cache_size.unwrap_or(DEFAULT_CACHE_SIZE),
            cache_ttl_ms: opts
                .cache_ttl_ms
                .unwrap_or(DEFAULT_CACHE_TTL.as_millis() as u64),
        }
    }
}

/// `[events]` as it will be used.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct EventsView {
    max_len: u64,
    max_age_secs: u64,
    max_data_bytes: usize,
    replay_page_bytes: usize,
    min_replicas_acked: u32,
    wait_timeout_ms: u64,
    idempotency_window_secs: u64,
}

impl From<&EventsConfig> for EventsView {
    fn from(events: &EventsConfig) -> Self {
        EventsView {
            max_len: events.max_len,
            max_age_secs: events.max_age.as_secs(),
            max_data_bytes: events.max_data_bytes,
            replay_page_bytes: events.replay_page_bytes,
            min_replicas_acked: events.min_replicas_acked,
            wait_timeout_ms: u64::try_from(events.wait_timeout.as_millis()).unwrap_or(u64::MAX),
            idempotency_window_secs: events.idempotency_window.as_secs(),
        }
    }
}

/// The effective configuration as TOML, with `# <table>: <error>` lines for the tables that
/// cannot be used as configured.
pub(crate) fn effective(file: &FileOptions, redis: &RedisConfig) -> String {
    let mut problems = Vec::new();
    let mut note = |table: &str, err: &dyn std::fmt::Display| {
        problems.push(format!("# [{table}] cannot be used: {err}"));
    };
    let tokens = token_options(file, jwt_secret_from_env())
        .map_err(anyhow::Error::from)
        .and_then(|opts| {
            let config = opts.clone().resolve()?;
            Ok((TokensView::new(opts), config))
        });
    let (tokens_view, token_config) = match tokens {
        Ok((view, config)) => (Some(view), Some(config)),
        Err(err) => {
            note("tokens", &format!("{err:#}"));
            (None, None)
        }
    };
    // The gateway's own settings do not depend on the token keys (they are not shown), so a
    // stand-in key lets them be checked and shown even while [tokens] is incomplete.
    let token_config = token_config.unwrap_or_else(|| {
        TokenConfig::hs256(&[0; redis_ssot::stores::tokens::MIN_SECRET_LEN])
            .expect("a key of the minimum length is valid")
    });
    let gateway = gateway_config(file, None, token_config)
        .inspect_err(|err| note("gateway", &format!("{err:#}")))
        .ok();
    let worker = worker_config(file, WorkerFlags::default())
        .inspect_err(|err| note("worker", &format!("{err:#}")))
        .ok();
    let events = events_config(file)
        .inspect_err(|err| note("events", err))
        .ok();
    let document = Effective {
        redis,
        gateway,
        tokens: tokens_view,
        worker,
        events: events.as_ref().map(EventsView::from),
        check: file.check.as_ref(),
    };
    let mut out = String::new();
    if let Some(source) = &file.source {
        out.push_str(&format!("# from {}\n", source.display()));
    }
    for line in &problems {
        out.push_str(line);
        out.push('\n');
    }
    match toml::to_string(&document) {
        Ok(text) => out.push_str(text.trim_end()),
        Err(err) => out.push_str(&format!("# cannot show the configuration: {err}")),
    }
    out
}
