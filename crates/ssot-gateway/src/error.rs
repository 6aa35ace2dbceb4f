//! The one HTTP error type: details are logged, clients get a stable code and message.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redis_ssot::Error;
use redis_ssot::stores::tokens::TokenError;

use crate::protocol::codes;

/// An error answered over HTTP.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    /// The connection is closed after this answer (its request was not read to the end).
    close: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            close: false,
        }
    }

    /// 408: the request body did not arrive within `budget`. The rest of the body may still
    /// come, so the connection cannot be reused.
    pub(crate) fn body_timeout(budget: Duration) -> Self {
        ApiError {
            close: true,
            ..ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::BODY_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms",
                    budget.as_millis()
                ),
            )
        }
    }

    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body, `{"error":{"code","message"}}`; also one failed item of a batch.
    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// Stable code of a rejected token.
pub(crate) fn token_code(err: &TokenError) -> &'static str {
    match err {
        TokenError::Missing => codes::TOKEN_MISSING,
        TokenError::Malformed => codes::TOKEN_MALFORMED,
        // `alg: none` and HS/RS confusion are algorithm refusals to the client, as documented.
        TokenError::Algorithm | TokenError::Unsigned | TokenError::KeyConfusion => {
            codes::TOKEN_ALGORITHM
        }
        TokenError::BadSignature => codes::TOKEN_SIGNATURE,
        TokenError::Expired => codes::TOKEN_EXPIRED,
        TokenError::NotYetValid => codes::TOKEN_NOT_YET_VALID,
        TokenError::WrongAudience => codes::TOKEN_AUDIENCE,
        TokenError::WrongIssuer => codes::TOKEN_ISSUER,
        TokenError::Claim(_) => codes::TOKEN_CLAIMS,
        TokenError::Revoked => codes::TOKEN_REVOKED,
        TokenError::Lifetime => codes::TOKEN_LIFETIME,
        _ => codes::TOKEN_INVALID,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match &err {
            Error::Token(kind) => ApiError::unauthorized(token_code(kind), kind.to_string()),
            Error::Invalid { .. } => ApiError::bad_request(codes::INVALID_INPUT, err.to_string()),
            Error::IdempotencyConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                codes::IDEMPOTENCY_CONFLICT,
                err.to_string(),
            ),
            Error::QueueFull { .. } => ApiError {
                retry_after: err.retry_after(),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::QUEUE_FULL,
                    err.to_string(),
                )
            },
            Error::UserQueueFull { .. } => ApiError {
                retry_after: err.retry_after(),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::USER_QUEUE_FULL,
                    err.to_string(),
                )
            },
            // Stored on the master, but not on enough replicas in time (`min-replicas-acked`):
            // not acknowledged, and told apart from an outage so the caller knows the event
            // may exist and retries.
            Error::NotReplicated { .. } => {
                tracing::warn!(cause = %err, "publish not acknowledged by enough replicas");
                ApiError {
                    retry_after: err.retry_after(),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        codes::NOT_REPLICATED,
                        err.to_string(),
                    )
                }
            }
            _ if err.is_transient() => {
                tracing::warn!(cause = %err, "redis unavailable for a request");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: codes::REDIS_UNAVAILABLE,
                    message: "Redis is unavailable; retry later".to_owned(),
                    retry_after: Some(err.retry_after().unwrap_or(Duration::from_secs(1))),
                    close: false,
                }
            }
            _ => {
                tracing::error!(cause = %err, "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL,
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(self.body());
        let mut response = (self.status, body).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: a Retry-After of 0 would invite a hot loop.
            let secs = after.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
