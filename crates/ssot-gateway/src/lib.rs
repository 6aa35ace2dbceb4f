//! `ssot serve`: the WebSocket gateway that delivers each user's agent events exactly once,
//! in order, across reconnects, gateway restarts and Redis outages.
//!
//! # Layout
//! - [`config`]: [`GatewayOptions`] (what users write) resolved into [`GatewayConfig`].
//! - [`protocol`]: frames and close codes; [`protocol::codes`] the one catalogue of error
//!   codes (WebSocket frames and HTTP bodies), mirrored in `docs/protocol.md`.
//! - `http`: routes — `GET /v1/ws`, `/health`, `/ready`,
//!   `/metrics`, `/v1/status`, `/openapi.json` (`assets/openapi.json`), `/` (status page) and
//!   `/client.js`.
//! - `publish`: the service API's publish routes, `POST /v1/users/{id}/events` and
//!   `POST /v1/events:batch`, and the service-key check.
//! - `jobs`: jobs over HTTP, `POST /v1/users/{id}/jobs` and `GET /v1/users/{id}/jobs/{job}`.
//! - `presence`: the periodic presence report of this gateway's sockets per user, and
//!   `GET /v1/users/{id}/presence`.
//! - `connection`: one socket: `delivery` (subscribe → replay → live), `inbound` (client
//!   frames), `signals` (shutdown, expiry, revocations, Redis status), the loop in `mod`.
//! - `state`: what requests and sockets share; Redis health reduced to one bit.
//! - `telemetry`: the Prometheus recorder, every metric family described, latency histograms.
//! - [`Gateway`]: binds, accepts with header timeouts, shuts down gracefully.
//!
//! Redis is reached only through the process's [`redis_ssot::RedisManager`].

pub mod config;
mod connection;
mod error;
mod http;
mod jobs;
mod presence;
pub mod protocol;
mod publish;
mod state;
mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use redis_ssot::RedisManager;
use redis_ssot::stores::events::Events;
use redis_ssot::stores::jobs::{Jobs, JobsConfig};
use redis_ssot::stores::presence::Presence;
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use redis_ssot::stores::tokens::Tokens;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{ConfigError, GatewayConfig, GatewayOptions};
pub use http::SUBPROTOCOL;

use crate::state::{GatewayMetrics, Shared, SocketCount};

/// Why the gateway could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Setting up the stores failed.
    #[error(transparent)]
    Redis(#[from] redis_ssot::Error),
}

/// A bound gateway, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    _redis_watch: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Binds `config.listen` (port 0 picks a free port) and prepares the stores.
    pub async fn bind(
        config: GatewayConfig,
        manager: RedisManager,
    ) -> Result<Gateway, GatewayError> {
        let prometheus = telemetry::prometheus();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let tokens = Tokens::new(manager.clone(), config.tokens.clone()).await?;
        let (redis_ok, redis_changes, redis_watch) = state::watch_redis(&manager);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let inbound_limit = Limit::new(
            "ws-inbound",
            config.inbound_rate,
            std::time::Duration::from_secs(1),
        )
        .with_burst(config.inbound_burst);
        let message_limit = Limit::new(
            "chat-messages",
            config.message_rate,
            std::time::Duration::from_secs(60),
        )
        .with_burst(config.message_burst);
        let jobs = Jobs::with_config(
            manager.clone(),
            &config.agent_queue,
            JobsConfig {
                partitions: config.agent_queue_partitions,
                max_len: config.agent_queue_max_len,
                max_per_user: Some(config.agent_queue_max_per_user),
                ..JobsConfig::default()
            },
        )?;
        let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            presence: Presence::new(manager.clone(), config.presence_ttl),
            gateway_id: format!("{}-{}", manager.instance_id(), local_addr.port()),
            local_addr,
            message_limit,
            jobs,
            events: Events::with_config(manager.clone(), config.events.clone()),
            limiter: RateLimiter::new(manager.clone()),
            inbound_limit,
            tokens,
            manager,
            redis_ok,
            redis_changes,
            shutdown,
            sockets: Arc::new(SocketCount::default()),
            replays: Arc::new(tokio::sync::Semaphore::new(config.budgets.replays)),
            metrics: GatewayMetrics::new(),
            prometheus,
            started: Instant::now(),
            config,
        });
        Ok(Gateway {
            listener,
            shared,
            shutdown_tx,
            _redis_watch: redis_watch,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes; then stops accepting, closes every socket with 1012,
    /// waits up to the drain timeout for them, and returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), GatewayError> {
        let Gateway {
            listener,
            shared,
            shutdown_tx,
            _redis_watch,
        } = self;
        let app = http::router(Arc::clone(&shared));
        // Stopped by the shutdown signal (it then removes this gateway from presence), or
        // aborted with this future.
        let mut reporter = AbortOnDrop(tokio::spawn(presence::report(Arc::clone(&shared))));
        let header_timeout = shared.config.header_timeout;
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "gateway listening");
        tokio::pin!(shutdown);
        let mut stopping = shared.shutdown.clone();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, _peer) = match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(cause = %err, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    let mut stopping = stopping.clone();
                    tokio::spawn(async move {
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(header_timeout)
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        tokio::pin!(conn);
                        let stop = async move {
                            let _ = stopping.wait_for(|s| *s).await;
                        };
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            () = stop => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
            }
        }
        drop(listener);
        tracing::info!(
            sockets = shared.sockets.open(),
            "gateway stopping; closing sockets with 1012"
        );
        let _ = shutdown_tx.send(true);
        let _ = stopping.borrow_and_update();
        if tokio::time::timeout(shared.config.drain_timeout, shared.sockets.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                left = shared.sockets.open(),
                "drain timeout; exiting with sockets open"
            );
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut reporter.0).await;
        Ok(())
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds and serves until `shutdown`: what `ssot serve` runs.
pub async fn run(
    config: GatewayConfig,
    manager: RedisManager,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    Gateway::bind(config, manager).await?.serve(shutdown).await
}
