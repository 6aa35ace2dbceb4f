//! The publish API: `POST /v1/users/{id}/events` (one event) and `POST /v1/events:batch`
//! (many events, for many users, answered item by item), and the service-key check that every
//! service route shares.
//!
//! ## Behavior
//! - One event: validated, appended (at most once per `Idempotency-Key`), answered `{id}`.
//! - A batch: the body (all items together) is bounded by `max-batch-bytes`, the item count
//!   by `max-batch-items`. Each item is validated and appended on its own, and answered in
//!   its place with `{id}` or `{error:{code,message}}`: one bad item fails alone.
//! - Per-user order is item order: the items of one user are appended one after another,
//!   while different users' items run concurrently and share the manager's auto-pipelined
//!   connection (on a Cluster, each goes to its user's slot). When an item of a user fails
//!   for want of Redis, that user's later items are not attempted (they answer
//!   `redis_unavailable` too), so a retry of the failed item cannot land after them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use redis_ssot::UserScope;
use redis_ssot::stores::events::{EventId, IdempotencyKey};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::protocol::codes;
use crate::state::Shared;

/// Users of one batch whose items are appended at once.
const BATCH_USERS_AT_ONCE: usize = 64;

/// Body of `POST /v1/users/{id}/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    event: String,
    data: Box<RawValue>,
}

/// Body of `POST /v1/events:batch`: items are parsed one by one, so that one malformed item
/// fails alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    items: Vec<Box<RawValue>>,
}

/// One item of a batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    user: String,
    event: String,
    data: Box<RawValue>,
    idempotency_key: Option<String>,
}

/// Checks `Authorization: Bearer <service key>`: the routes a backend calls (publish, jobs,
/// presence) all require it.
pub(crate) fn check_service_key(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&shared.config.service_key, presented) {
        (Some(expected), Some(given)) if same_key(expected.as_bytes(), given.trim().as_bytes()) => {
            Ok(())
        }
        (None, _) => Err(ApiError::unauthorized(
            codes::PUBLISH_DISABLED,
            "the service API needs SSOT_SERVICE_KEY",
        )),
        _ => Err(ApiError::unauthorized(
            codes::SERVICE_KEY,
            "missing or wrong service key",
        )),
    }
}

/// The common start of a service route on one user's behalf: the service key, the user id,
/// and the JSON body (at most `max-event-bytes` + 1 KiB) of the shape `expected` describes.
pub(crate) async fn user_request<T: serde::de::DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    user: &str,
    body: Body,
    expected: &str,
) -> Result<(UserScope, T), ApiError> {
    check_service_key(shared, headers)?;
    let scope = parse_user(user)?;
    let limit = shared.config.events.max_data_bytes + 1024;
    let bytes = read_body(shared, body, limit).await?;
    let body = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(codes::INVALID_BODY, format!("expected {expected}: {e}"))
    })?;
    Ok((scope, body))
}

/// Reads a request body of at most `limit` bytes within the body timeout.
pub(crate) async fn read_body(
    shared: &Shared,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    // The header timeout ends with the headers; a body trickled in byte by byte would hold
    // the connection (and this task) for ever without its own budget.
    let budget = shared.config.body_timeout;
    tokio::time::timeout(budget, to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::body_timeout(budget))?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                format!("body exceeds {limit} bytes"),
            )
        })
}

pub(crate) async fn publish(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (scope, body): (_, PublishBody) =
        user_request(&shared, &headers, &user, body, "{\"event\":..,\"data\":..}").await?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(raw) => Some(idempotency_key(raw.to_str().map_err(|_| {
            ApiError::bad_request(
                codes::INVALID_IDEMPOTENCY_KEY,
                "Idempotency-Key must be visible ASCII",
            )
        })?)?),
    };
    let id = append(&shared, &scope, &body.event, &body.data, key.as_ref()).await?;
    Ok(Json(serde_json::json!({ "id": id.to_string() })).into_response())
}

pub(crate) async fn batch(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_service_key(&shared, &headers)?;
    let bytes = read_body(&shared, body, shared.config.max_batch_bytes).await?;
    let body: BatchBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_BODY,
            format!("expected {{\"items\":[..]}}: {e}"),
        )
    })?;
    let most = shared.config.max_batch_items;
    if body.items.len() > most {
        return Err(ApiError::bad_request(
            codes::BATCH_TOO_LARGE,
            format!("{} items; at most {most} per batch", body.items.len()),
        ));
    }
    let mut results: Vec<Option<Result<EventId, ApiError>>> =
        body.items.iter().map(|_| None).collect();
    // Valid items grouped by user, in item order.
    let mut users: HashMap<String, Vec<(usize, Valid)>> = HashMap::new();
    for (at, raw) in body.items.iter().enumerate() {
        match validate(&shared, raw) {
            Ok(valid) => users
                .entry(valid.scope.user().as_str().to_owned())
                .or_default()
                .push((at, valid)),
            Err(err) => results[at] = Some(Err(err)),
        }
    }
    let shared = &shared;
    let mut runs = futures_util::stream::iter(users.into_values().map(|items| async move {
        let mut answers = Vec::with_capacity(items.len());
        let mut unavailable = false;
        for (at, item) in items {
            if unavailable {
                answers.push((at, Err(not_attempted())));
                continue;
            }
            let result = append(
                shared,
                &item.scope,
                &item.event,
                &item.data,
                item.key.as_ref(),
            )
            .await;
            // Later items of this user wait for the caller's retry, to keep item order.
            unavailable = result
                .as_ref()
                .is_err_and(|e| e.status() == StatusCode::SERVICE_UNAVAILABLE);
            answers.push((at, result));
        }
        answers
    }))
    .buffer_unordered(BATCH_USERS_AT_ONCE);
    while let Some(answers) = runs.next().await {
        for (at, result) in answers {
            results[at] = Some(result);
        }
    }
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r {
            Some(Ok(id)) => serde_json::json!({ "id": id.to_string() }),
            Some(Err(err)) => err.body(),
            None => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "lost").body()
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "results": results })).into_response())
}

/// A batch item that passed validation.
struct Valid {
    scope: UserScope,
    event: String,
    data: Box<RawValue>,
    key: Option<IdempotencyKey>,
}

fn validate(shared: &Shared, raw: &RawValue) -> Result<Valid, ApiError> {
    let item: BatchItem = serde_json::from_str(raw.get()).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_BODY,
            format!("expected {{\"user\":..,\"event\":..,\"data\":..}}: {e}"),
        )
    })?;
    let scope = parse_user(&item.user)?;
    let key = item
        .idempotency_key
        .as_deref()
        .map(idempotency_key)
        .transpose()?;
    check_data(shared, &item.data)?;
    redis_ssot::keys::check_name("event name", &item.event)?;
    Ok(Valid {
        scope,
        event: item.event,
        data: item.data,
        key,
    })
}

fn not_attempted() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::REDIS_UNAVAILABLE,
        "not attempted: an earlier item of this user failed for want of Redis; retry both in order",
    )
}

pub(crate) fn parse_user(user: &str) -> Result<UserScope, ApiError> {
    UserScope::parse(user).map_err(|e| ApiError::bad_request(codes::INVALID_USER_ID, e.to_string()))
}

fn check_data(shared: &Shared, data: &RawValue) -> Result<(), ApiError> {
    let most = shared.config.events.max_data_bytes;
    if data.get().len() > most {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("data exceeds {most} bytes"),
        ));
    }
    Ok(())
}

/// Appends one event, at most once per `key`; a repeat of a key answers the first id.
async fn append(
    shared: &Shared,
    scope: &UserScope,
    event: &str,
    data: &RawValue,
    key: Option<&IdempotencyKey>,
) -> Result<EventId, ApiError> {
    let start = Instant::now();
    check_data(shared, data)?;
    let id = match key {
        None => shared.events.append(scope, event, data).await?,
        Some(key) => {
            let appended = shared
                .events
                .append_idempotent(scope, event, data, key)
                .await?;
            if appended.duplicate {
                // The first call stored it (its response may have been lost): same answer,
                // nothing stored or announced again.
                return Ok(appended.id);
            }
            appended.id
        }
    };
    shared.metrics.published.increment(1);
    shared
        .metrics
        .publish_seconds
        .record(start.elapsed().as_secs_f64());
    Ok(id)
}

/// An idempotency key (header or batch field): 1-128 visible ASCII characters.
pub(crate) fn idempotency_key(text: &str) -> Result<IdempotencyKey, ApiError> {
    IdempotencyKey::parse(text)
        .map_err(|e| ApiError::bad_request(codes::INVALID_IDEMPOTENCY_KEY, e.to_string()))
}

/// Compares keys in constant time, and without revealing the expected key's length: both
/// sides are hashed to 32 bytes first.
fn same_key(expected: &[u8], given: &[u8]) -> bool {
    let (expected, given) = (Sha256::digest(expected), Sha256::digest(given));
    expected.ct_eq(&given).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison() {
        assert!(same_key(b"abc", b"abc"));
        assert!(!same_key(b"abc", b"abd"));
        assert!(!same_key(b"abc", b"ab"));
        assert!(!same_key(b"abc", b""));
    }
}
