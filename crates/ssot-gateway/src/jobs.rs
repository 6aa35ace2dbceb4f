//! Jobs over HTTP: a backend enqueues agent work for a user (`POST /v1/users/{id}/jobs`) and
//! reads its state (`GET /v1/users/{id}/jobs/{job}`).
//!
//! ## Behavior
//! - The job goes on the agent queue chat messages use, under the same bounds
//!   (`agent-queue-max-len`: 503 `queue_full`; `agent-queue-max-per-user`: 429
//!   `user_queue_full`), so `ssot worker` runs it and its events reach the user's sockets as
//!   a chat run's do.
//! - `idempotency_key` (1-128 visible ASCII characters) enqueues at most once per user and
//!   key while the queue remembers it (24 h): a repeat answers the first job's id. It is
//!   stored hashed under `http:`, so it never meets a chat message id.
//! - The state is read from Redis at each request (`Jobs::state`), never cached.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use redis_ssot::stores::jobs::NewJob;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::protocol::codes;
use crate::publish::{check_service_key, idempotency_key, parse_user, user_request};
use crate::state::{Budget, GatewayMetrics, Shared};

/// Body of `POST /v1/users/{id}/jobs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobBody {
    kind: String,
    payload: serde_json::Value,
    idempotency_key: Option<String>,
}

pub(crate) async fn enqueue(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (scope, body): (_, JobBody) = user_request(
        &shared,
        &headers,
        &user,
        body,
        "{\"kind\":..,\"payload\":..}",
    )
    .await?;
    let key = body
        .idempotency_key
        .as_deref()
        .map(idempotency_key)
        .transpose()?
        .map(|key| format!("http:{:x}", Sha256::digest(key.as_str().as_bytes())));
    let job = NewJob {
        user: scope.user().clone(),
        kind: body.kind,
        payload: body.payload,
        idempotency_key: key,
    };
    let enqueued = shared.jobs.enqueue(job).await.inspect_err(|err| {
        if matches!(err, redis_ssot::Error::UserQueueFull { .. }) {
            GatewayMetrics::refused(Budget::JobsPerUser);
        }
    })?;
    Ok(Json(serde_json::json!({ "job": enqueued.id })).into_response())
}

pub(crate) async fn state(
    State(shared): State<Arc<Shared>>,
    Path((user, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_service_key(&shared, &headers)?;
    let scope = parse_user(&user)?;
    let state = shared
        .jobs
        .state(scope.user(), &job)
        .await
        .map_err(|err| match err {
            redis_ssot::Error::Invalid { .. } => {
                ApiError::bad_request(codes::INVALID_JOB_ID, err.to_string())
            }
            err => err.into(),
        })?;
    match state {
        Some(state) => {
            Ok(Json(serde_json::json!({ "job": job, "state": state.as_str() })).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::JOB_NOT_FOUND,
            "no such job of this user (or its state expired)",
        )),
    }
}
