//! Gateway settings: [`GatewayOptions`] as written (`[gateway]` table, `SSOT_*` env), resolved
//! into a validated [`GatewayConfig`] with errors that name the setting.

use std::net::SocketAddr;
use std::time::Duration;

pub use redis_ssot::config::ConfigError;
use redis_ssot::config::{Redacted, positive, positive_ms, serialize_ms};
use redis_ssot::stores::events::EventsConfig;
use redis_ssot::stores::tokens::TokenConfig;
use serde::{Deserialize, Serialize};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default largest inbound WebSocket message.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Default time a write to a socket may wait for the client before it counts as slow.
pub const DEFAULT_SLOW_CONSUMER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default inbound frames per second per user.
pub const DEFAULT_INBOUND_RATE: u32 = 20;
/// Default inbound burst per user.
pub const DEFAULT_INBOUND_BURST: u32 = 40;
/// Default consecutive rate-limited frames before the socket is closed with 1008.
pub const DEFAULT_ABUSE_THRESHOLD: u32 = 20;
/// Default budget to read request headers (slowloris).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default budget to read a publish request's body (slowloris on the body).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit of open WebSockets per process (the open-file cap is 20,000 here).
pub const DEFAULT_MAX_CONNECTIONS: usize = 19_500;
/// Default time to drain sockets on shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default queue of agent jobs (the worker's default too).
pub const DEFAULT_AGENT_QUEUE: &str = redis_ssot::stores::chat::CHAT_QUEUE;
/// Default largest chat message text.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 8 * 1024;
/// Default chat messages per minute per user.
pub const DEFAULT_MESSAGE_RATE: u32 = 60;
/// Default burst of chat messages per user.
pub const DEFAULT_MESSAGE_BURST: u32 = 20;
/// Default WebSocket read buffer: small, since most sockets are idle most of the time and
/// tungstenite allocates it up front (its default, 128 KiB, would dominate memory per
/// connection). Clients send little; larger frames still work, the buffer grows as needed.
pub const DEFAULT_SOCKET_BUFFER: usize = 512;

/// Default open WebSockets per user (one user must not take the process's sockets).
pub const DEFAULT_MAX_SOCKETS_PER_USER: usize = 16;
/// Default replays running at once per user; a user's other sockets wait for a slot.
pub const DEFAULT_MAX_REPLAYS_PER_USER: usize = 2;
/// Default replays running at once per process.
pub const DEFAULT_MAX_REPLAYS: usize = 64;
/// Default time a socket waits for a replay slot before it is closed with 4001 (retry).
pub const DEFAULT_REPLAY_WAIT: Duration = Duration::from_secs(10);
/// Default bytes queued for one socket (written but not taken by the client) before it is
/// closed with 4000.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1024 * 1024;
/// Default interval of server pings.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default time without any frame from the client before the socket is closed with 4002.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most chat jobs one user may have queued (waiting or running): one user with one
/// token must not fill the backlog that `agent-queue-max-len` bounds for everyone.
pub const DEFAULT_AGENT_QUEUE_MAX_PER_USER: u64 = 32;

/// Default most items of one `POST /v1/events:batch`.
pub const DEFAULT_MAX_BATCH_ITEMS: usize = 500;
/// Default largest body of one `POST /v1/events:batch` (all items together).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Default interval of this gateway's presence reports.
pub const DEFAULT_PRESENCE_INTERVAL: Duration = redis_ssot::stores::presence::DEFAULT_INTERVAL;
/// Default lifetime of a presence report: a killed gateway's sockets drop out of
/// `GET /v1/users/{id}/presence` at most this long after its last report.
pub const DEFAULT_PRESENCE_TTL: Duration = redis_ssot::stores::presence::DEFAULT_TTL;

/// Every variable the gateway reads, with the setting it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SSOT_GATEWAY_LISTEN", "gateway.listen"),
    (
        "SSOT_ALLOWED_ORIGINS",
        "gateway.allowed-origins (comma-separated)",
    ),
    ("SSOT_SERVICE_KEY", "gateway.service-key"),
];

/// Gateway settings as written by the user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GatewayOptions {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Allowed `Origin` values; `*` allows any. Empty: same host only. Env: `SSOT_ALLOWED_ORIGINS`.
    pub allowed_origins: Option<Vec<String>>,
    /// Largest inbound WebSocket message (bytes); larger ones close with 1009.
    pub max_message_bytes: Option<usize>,
    /// Milliseconds a write may wait for the client before closing with 4000.
    pub slow_consumer_timeout_ms: Option<u64>,
    /// Inbound frames per second per user.
    pub inbound_rate: Option<u32>,
    /// Inbound burst per user.
    pub inbound_burst: Option<u32>,
    /// Consecutive rate-limited frames before closing with 1008.
    pub abuse_threshold: Option<u32>,
    /// Milliseconds to read request headers.
    pub header_timeout_ms: Option<u64>,
    /// Milliseconds to read a publish request's body; slower ones get 408.
    pub body_timeout_ms: Option<u64>,
    /// Open WebSockets per process.
    pub max_connections: Option<usize>,
    /// Milliseconds to drain sockets on shutdown.
    pub drain_timeout_ms: Option<u64>,
    /// WebSocket read buffer allocated per socket (bytes).
    pub socket_buffer_bytes: Option<usize>,
    /// Events kept per user.
    pub event_max_len: Option<u64>,
    /// Seconds events are kept.
    pub event_max_age_secs: Option<u64>,
    /// Largest event `data` (bytes) accepted by the publish API.
    pub max_event_bytes: Option<usize>,
    /// Service key for the publish API. Prefer the env var `SSOT_SERVICE_KEY`.
    pub service_key: Option<Redacted<String>>,
    /// Most items of one `POST /v1/events:batch`; more get 400 `batch_too_large`.
    pub max_batch_items: Option<usize>,
    /// Largest body of one `POST /v1/events:batch` (bytes, all items); larger get 413.
    pub max_batch_bytes: Option<usize>,
    /// Milliseconds between two presence reports of this gateway.
    pub presence_interval_ms: Option<u64>,
    /// Milliseconds a presence report lives: a killed gateway's sockets drop out within it.
    /// More than `presence-interval-ms`.
    pub presence_ttl_ms: Option<u64>,
    /// Queue that chat messages are enqueued on for `ssot worker`.
    pub agent_queue: Option<String>,
    /// Streams the agent queue is partitioned into; `ssot worker`'s `queue-partitions` must
    /// be at least this.
    pub agent_queue_partitions: Option<u32>,
    /// Most jobs one partition of the agent queue holds; more messages get `queue_full`.
    pub agent_queue_max_len: Option<u64>,
    /// Most jobs one user may have in the agent queue, from enqueue until acked or
    /// dead-lettered; more messages get `user_queue_full`.
    pub agent_queue_max_per_user: Option<u64>,
    /// Largest chat message text (bytes).
    pub max_text_bytes: Option<usize>,
    /// Chat messages per minute per user.
    pub message_rate: Option<u32>,
    /// Burst of chat messages per user.
    pub message_burst: Option<u32>,
    /// Open WebSockets per user; more are refused with 429 `too_many_user_sockets`.
    pub max_sockets_per_user: Option<usize>,
    /// Replays running at once per user.
    pub max_replays_per_user: Option<usize>,
    /// Replays running at once per process.
    pub max_replays: Option<usize>,
    /// Milliseconds a socket waits for a replay slot before closing with 4001.
    pub replay_wait_ms: Option<u64>,
    /// Bytes queued for one socket before closing with 4000.
    pub max_queued_bytes: Option<usize>,
    /// Milliseconds between server pings.
    pub ping_interval_ms: Option<u64>,
    /// Milliseconds without a frame from the client before closing with 4002.
    pub idle_timeout_ms: Option<u64>,
}

/// Validated gateway settings. `Debug` redacts the service key and token keys; `Serialize`
/// writes the `[gateway]` keys (service key redacted; events and tokens have their own
/// tables).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Allowed origins (`*` = any; empty = same host only).
    pub allowed_origins: Vec<String>,
    /// Largest inbound WebSocket message.
    pub max_message_bytes: usize,
    /// How long a write may wait for the client.
    #[serde(rename = "slow-consumer-timeout-ms", serialize_with = "serialize_ms")]
    pub slow_consumer_timeout: Duration,
    /// Inbound frames per second per user.
    pub inbound_rate: u32,
    /// Inbound burst per user.
    pub inbound_burst: u32,
    /// Consecutive rate-limited frames before closing with 1008.
    pub abuse_threshold: u32,
    /// Budget to read request headers.
    #[serde(rename = "header-timeout-ms", serialize_with = "serialize_ms")]
    pub header_timeout: Duration,
    /// Budget to read a publish request's body.
    #[serde(rename = "body-timeout-ms", serialize_with = "serialize_ms")]
    pub body_timeout: Duration,
    /// Open WebSockets per process.
    pub max_connections: usize,
    /// Time to drain sockets on shutdown.
    #[serde(rename = "drain-timeout-ms", serialize_with = "serialize_ms")]
    pub drain_timeout: Duration,
    /// WebSocket read buffer allocated per socket.
    pub socket_buffer_bytes: usize,
    /// Event retention and payload limit.
    #[serde(skip)]
    pub events: EventsConfig,
    /// Service key of the publish API; `None` disables publishing (401).
    pub service_key: Option<Redacted<String>>,
    /// Most items of one batch publish.
    pub max_batch_items: usize,
    /// Largest body of one batch publish.
    pub max_batch_bytes: usize,
    /// Interval of presence reports.
    #[serde(rename = "presence-interval-ms", serialize_with = "serialize_ms")]
    pub presence_interval: Duration,
    /// Lifetime of a presence report.
    #[serde(rename = "presence-ttl-ms", serialize_with = "serialize_ms")]
    pub presence_ttl: Duration,
    /// Queue that chat messages are enqueued on.
    pub agent_queue: String,
    /// Streams the agent queue is partitioned into.
    pub agent_queue_partitions: u32,
    /// Most jobs one partition of the agent queue holds.
    pub agent_queue_max_len: u64,
    /// Most jobs one user may have in the agent queue.
    pub agent_queue_max_per_user: u64,
    /// Largest chat message text.
    pub max_text_bytes: usize,
    /// Chat messages per minute per user.
    pub message_rate: u32,
    /// Burst of chat messages per user.
    pub message_burst: u32,
    /// Per-user and per-socket budgets.
    #[serde(flatten)]
    pub budgets: Budgets,
    /// Token verification.
    #[serde(skip)]
    pub tokens: TokenConfig,
}

/// What one user or one socket may use (issue 12). Serializes as `[gateway]` keys.
#[derive(Debug, Clone, Serialize)]
pub struct Budgets {
    /// Open WebSockets per user.
    #[serde(rename = "max-sockets-per-user")]
    pub sockets_per_user: usize,
    /// Replays running at once per user.
    #[serde(rename = "max-replays-per-user")]
    pub replays_per_user: usize,
    /// Replays running at once per process.
    #[serde(rename = "max-replays")]
    pub replays: usize,
    /// How long a socket waits for a replay slot.
    #[serde(rename = "replay-wait-ms", serialize_with = "serialize_ms")]
    pub replay_wait: Duration,
    /// Bytes queued for one socket.
    #[serde(rename = "max-queued-bytes")]
    pub queued_bytes: usize,
    /// Interval of server pings.
    #[serde(rename = "ping-interval-ms", serialize_with = "serialize_ms")]
    pub ping_interval: Duration,
    /// Time without a frame from the client before the socket is closed.
    #[serde(rename = "idle-timeout-ms", serialize_with = "serialize_ms")]
    pub idle_timeout: Duration,
}

impl GatewayOptions {
    /// Overlays `SSOT_GATEWAY_LISTEN`, `SSOT_ALLOWED_ORIGINS` and `SSOT_SERVICE_KEY` from the
    /// given variables ([`ENV_VARS`]).
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> GatewayOptions {
        for (key, value) in vars {
            match key.as_str() {
                "SSOT_GATEWAY_LISTEN" => self.listen = Some(value),
                "SSOT_ALLOWED_ORIGINS" => {
                    self.allowed_origins = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                }
                "SSOT_SERVICE_KEY" if !value.is_empty() => self.service_key = Some(value.into()),
                _ => {}
            }
        }
        self
    }

    /// Event retention and payload limit: the gateway's, and what `ssot worker` must use too so
    /// both trim the same way.
    pub fn events_config(&self) -> Result<EventsConfig, ConfigError> {
        let defaults = EventsConfig::default();
        let events = EventsConfig {
            max_len: positive(
                "gateway.event-max-len",
                self.event_max_len,
                defaults.max_len,
            )?,
            max_age: Duration::from_secs(positive(
                "gateway.event-max-age-secs",
                self.event_max_age_secs,
                defaults.max_age.as_secs(),
            )?),
            max_data_bytes: positive(
                "gateway.max-event-bytes",
                self.max_event_bytes,
                defaults.max_data_bytes,
            )?,
            ..defaults
        };
        Ok(events)
    }

    /// Validates into settings; `tokens` comes from the `[tokens]` table and `SSOT_JWT_SECRET`.
    pub fn resolve(self, tokens: TokenConfig) -> Result<GatewayConfig, ConfigError> {
        let events = self.events_config()?;
        let listen_raw = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            ConfigError::new(
                "gateway.listen",
                format!("expected ip:port, got {listen_raw:?}"),
            )
        })?;
        // A gateway others can reach must not accept tokens minted for another service.
        if !listen.ip().is_loopback()
            && tokens.audience().is_empty()
            && !tokens.allows_any_audience()
        {
            return Err(ConfigError::new(
                "tokens.audience",
                format!(
                    "required when listening on {listen} (beyond loopback); \
                     set tokens.allow-any-audience = true to run without it (development only)"
                ),
            ));
        }
        let allowed_origins = self.allowed_origins.unwrap_or_default();
        for origin in &allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    "gateway.allowed-origins",
                    format!("{origin:?} is not an origin like https://app.example.com, nor *"),
                ));
            }
        }
        if let Some(key) = &self.service_key
            && key.expose().len() < 16
        {
            return Err(ConfigError::new(
                "gateway.service-key",
                "must be at least 16 characters",
            ));
        }
        let budgets = Budgets {
            sockets_per_user: positive(
                "gateway.max-sockets-per-user",
                self.max_sockets_per_user,
                DEFAULT_MAX_SOCKETS_PER_USER,
            )?,
            replays_per_user: positive(
                "gateway.max-replays-per-user",
                self.max_replays_per_user,
                DEFAULT_MAX_REPLAYS_PER_USER,
            )?,
            replays: positive("gateway.max-replays", self.max_replays, DEFAULT_MAX_REPLAYS)?,
            replay_wait: positive_ms(
                "gateway.replay-wait-ms",
                self.replay_wait_ms,
                DEFAULT_REPLAY_WAIT,
            )?,
            queued_bytes: positive(
                "gateway.max-queued-bytes",
                self.max_queued_bytes,
                DEFAULT_MAX_QUEUED_BYTES,
            )?,
            ping_interval: positive_ms(
                "gateway.ping-interval-ms",
                self.ping_interval_ms,
                DEFAULT_PING_INTERVAL,
            )?,
            idle_timeout: positive_ms(
                "gateway.idle-timeout-ms",
                self.idle_timeout_ms,
                DEFAULT_IDLE_TIMEOUT,
            )?,
        };
        let presence_interval = positive_ms(
            "gateway.presence-interval-ms",
            self.presence_interval_ms,
            DEFAULT_PRESENCE_INTERVAL,
        )?;
        let presence_ttl = positive_ms(
            "gateway.presence-ttl-ms",
            self.presence_ttl_ms,
            DEFAULT_PRESENCE_TTL,
        )?;
        if presence_ttl <= presence_interval {
            return Err(ConfigError::new(
                "gateway.presence-ttl-ms",
                "must be longer than gateway.presence-interval-ms",
            ));
        }
        if budgets.idle_timeout <= budgets.ping_interval {
            return Err(ConfigError::new(
                "gateway.idle-timeout-ms",
                "must be longer than gateway.ping-interval-ms",
            ));
        }
        Ok(GatewayConfig {
            budgets,
            listen,
            allowed_origins,
            max_message_bytes: positive(
                "gateway.max-message-bytes",
                self.max_message_bytes,
                DEFAULT_MAX_MESSAGE_BYTES,
            )?,
            slow_consumer_timeout: positive_ms(
                "gateway.slow-consumer-timeout-ms",
                self.slow_consumer_timeout_ms,
                DEFAULT_SLOW_CONSUMER_TIMEOUT,
            )?,
            inbound_rate: positive(
                "gateway.inbound-rate",
                self.inbound_rate,
                DEFAULT_INBOUND_RATE,
            )?,
            inbound_burst: positive(
                "gateway.inbound-burst",
                self.inbound_burst,
                DEFAULT_INBOUND_BURST,
            )?,
            abuse_threshold: positive(
                "gateway.abuse-threshold",
                self.abuse_threshold,
                DEFAULT_ABUSE_THRESHOLD,
            )?,
            header_timeout: positive_ms(
                "gateway.header-timeout-ms",
                self.header_timeout_ms,
                DEFAULT_HEADER_TIMEOUT,
            )?,
            body_timeout: positive_ms(
                "gateway.body-timeout-ms",
                self.body_timeout_ms,
                DEFAULT_BODY_TIMEOUT,
            )?,
            max_connections: positive(
                "gateway.max-connections",
                self.max_connections,
                DEFAULT_MAX_CONNECTIONS,
            )?,
            drain_timeout: positive_ms(
                "gateway.drain-timeout-ms",
                self.drain_timeout_ms,
                DEFAULT_DRAIN_TIMEOUT,
            )?,
            socket_buffer_bytes: positive(
                "gateway.socket-buffer-bytes",
                self.socket_buffer_bytes,
                DEFAULT_SOCKET_BUFFER,
            )?,
            events,
            presence_interval,
            presence_ttl,
            service_key: self.service_key,
            max_batch_items: positive(
                "gateway.max-batch-items",
                self.max_batch_items,
                DEFAULT_MAX_BATCH_ITEMS,
            )?,
            max_batch_bytes: positive(
                "gateway.max-batch-bytes",
                self.max_batch_bytes,
                DEFAULT_MAX_BATCH_BYTES,
            )?,
            agent_queue: {
                let queue = self
                    .agent_queue
                    .unwrap_or_else(|| DEFAULT_AGENT_QUEUE.to_owned());
                redis_ssot::keys::check_name("gateway.agent-queue", &queue)
                    .map_err(|e| ConfigError::new("gateway.agent-queue", e.to_string()))?;
                queue
            },
            agent_queue_partitions: {
                let partitions = positive(
                    "gateway.agent-queue-partitions",
                    self.agent_queue_partitions,
                    redis_ssot::stores::jobs::DEFAULT_PARTITIONS,
                )?;
                let most = redis_ssot::stores::jobs::MAX_PARTITIONS;
                if partitions > most {
                    return Err(ConfigError::new(
                        "gateway.agent-queue-partitions",
                        format!("must be at most {most}, got {partitions}"),
                    ));
                }
                partitions
            },
            agent_queue_max_len: positive(
                "gateway.agent-queue-max-len",
                self.agent_queue_max_len,
                redis_ssot::stores::jobs::DEFAULT_MAX_LEN,
            )?,
            agent_queue_max_per_user: positive(
                "gateway.agent-queue-max-per-user",
                self.agent_queue_max_per_user,
                DEFAULT_AGENT_QUEUE_MAX_PER_USER,
            )?,
            max_text_bytes: positive(
                "gateway.max-text-bytes",
                self.max_text_bytes,
                DEFAULT_MAX_TEXT_BYTES,
            )?,
            message_rate: positive(
                "gateway.message-rate",
                self.message_rate,
                DEFAULT_MESSAGE_RATE,
            )?,
            message_burst: positive(
                "gateway.message-burst",
                self.message_burst,
                DEFAULT_MESSAGE_BURST,
            )?,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests;
