//! Presence: this gateway's periodic report of its sockets per user, and
//! `GET /v1/users/{id}/presence` over every gateway sharing the Redis
//! (`redis_ssot::stores::presence`).
//!
//! ## Behavior
//! - Opening or closing a socket writes nothing to Redis: every `presence-interval-ms` (2 s)
//!   the reporter sends what changed since its last report. A report lives
//!   `presence-ttl-ms` (6 s), so a killed gateway's sockets drop out within that; a graceful
//!   shutdown removes the gateway at once.
//! - While Redis is unreachable reports fail quietly and are sent again (changes included) on
//!   the next tick.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use redis_ssot::stores::presence::Reported;

use crate::error::ApiError;
use crate::publish::{check_service_key, parse_user};
use crate::state::Shared;

/// Reports until the gateway shuts down, then leaves.
pub(crate) async fn report(shared: Arc<Shared>) {
    let mut last = Reported::default();
    let mut tick = tokio::time::interval(shared.config.presence_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = shared.shutdown.clone();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|s| *s) => break,
        }
        let now = shared.sockets.per_user();
        match shared
            .presence
            .report(&shared.gateway_id, &now, &mut last)
            .await
        {
            Ok(()) => failing = false,
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(cause = %err, "presence report failed; retrying each interval");
            }
            Err(_) => {}
        }
    }
    if let Err(err) = shared.presence.leave(&shared.gateway_id).await {
        tracing::debug!(cause = %err, "presence not removed; it expires");
    }
}

pub(crate) async fn presence(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_service_key(&shared, &headers)?;
    let scope = parse_user(&user)?;
    let found = shared.presence.of(scope.user()).await?;
    Ok(
        Json(serde_json::json!({ "sockets": found.sockets, "gateways": found.gateways }))
            .into_response(),
    )
}
