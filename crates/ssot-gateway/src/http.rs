//! HTTP routes: the WebSocket handshake, the publish API, health, metrics, the OpenAPI
//! document, the status page and the chat page.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use redis_ssot::UserScope;
use redis_ssot::stores::events::EventId;
use redis_ssot::stores::tokens::TokenError;
use serde::Deserialize;

use crate::connection::{self, Session};
use crate::error::ApiError;
use crate::protocol::codes;
use crate::state::{Budget, Full, GatewayMetrics, Shared};
use crate::{jobs, presence, publish};

/// The subprotocol a browser client offers besides `bearer.<token>`; selected when offered.
pub const SUBPROTOCOL: &str = "ssot.v1";
const BEARER_PROTOCOL_PREFIX: &str = "bearer.";
/// Frames are written to the socket once this much is buffered (or on flush); the buffer is
/// allocated as frames are written, so idle sockets do not pay for it.
const WRITE_BATCH_BYTES: usize = 8 * 1024;
/// Bytes of an event frame besides its data: `{"type":"event","id":..,"event":..,"data":}`.
const FRAME_OVERHEAD: usize = 1024;
const STATUS_PAGE: &str = include_str!("../assets/status.html");
/// The chat page `ssot demo` opens: a plain client of `/v1/ws`, no build step.
const CHAT_PAGE: &str = include_str!("../assets/chat.html");
const JS_CLIENT: &str = include_str!("../../../clients/js/ssot-client.js");
/// OpenAPI 3.1 of these routes, kept by hand; `tests/it/openapi.rs` checks it against
/// `router` and `protocol::codes`.
const OPENAPI: &str = include_str!("../assets/openapi.json");

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/demo", get(chat_page))
        .route("/client.js", get(js_client))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/openapi.json", get(openapi))
        .route("/v1/ws", get(websocket))
        .route("/v1/users/{id}/events", post(publish::publish))
        .route("/v1/events:batch", post(publish::batch))
        .route("/v1/users/{id}/jobs", post(jobs::enqueue))
        .route("/v1/users/{id}/jobs/{job}", get(jobs::state))
        .route("/v1/users/{id}/presence", get(presence::presence))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// `?token=` and `?after=`; nothing else of the query is read, and it is never logged.
#[derive(Default, Deserialize)]
struct WsQuery {
    token: Option<String>,
    after: Option<String>,
}

/// Where the token came from; `?token=` is accepted but never logged.
fn find_token(headers: &HeaderMap, query: &WsQuery) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = auth.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else { continue };
        for proto in value.split(',').map(str::trim) {
            if let Some(token) = proto.strip_prefix(BEARER_PROTOCOL_PREFIX) {
                return Some(token.to_owned());
            }
        }
    }
    query.token.clone()
}

/// Browsers always send `Origin`; other clients may not. Allowed: `*`, an origin of the
/// list with the same scheme, host and port (default ports filled in, hosts compared
/// without case), or with an empty list the gateway's own address: `http`, its listen IP
/// (or `localhost` on a loopback address) and port. `Host` is not trusted: a client
/// chooses it.
fn origin_allowed(headers: &HeaderMap, allowed: &[String], own: SocketAddr) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if allowed.iter().any(|a| a == "*") {
        return true;
    }
    let Some(origin) = origin.to_str().ok().and_then(OriginKey::parse) else {
        return false; // `null` (a sandboxed page) or garbage
    };
    if !allowed.is_empty() {
        return allowed
            .iter()
            .any(|a| OriginKey::parse(a).is_some_and(|a| a == origin));
    }
    let own_host = match own.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    origin.scheme == "http"
        && origin.port == own.port()
        && (origin.host == own_host || (own.ip().is_loopback() && origin.host == "localhost"))
}

/// What two origins must share to be the same: scheme, host and port.
#[derive(Debug, PartialEq, Eq)]
struct OriginKey {
    scheme: String,
    host: String,
    port: u16,
}

impl OriginKey {
    fn parse(origin: &str) -> Option<OriginKey> {
        let url = url::Url::parse(origin).ok()?;
        let clean = url.path() == "/" && url.query().is_none() && url.username().is_empty();
        if !clean || !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(OriginKey {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

async fn websocket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match handshake(&shared, &headers, query).await {
        Err(err) => {
            shared.metrics.rejected_handshakes.increment(1);
            tracing::info!(
                status = err.status().as_u16(),
                "websocket handshake refused"
            );
            err.into_response()
        }
        Ok(session) => {
            let upgrade = match upgrade {
                Ok(u) => u,
                Err(rejection) => return rejection.into_response(),
            };
            let buffer = shared.config.socket_buffer_bytes;
            let offers_subprotocol = headers
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(',').map(str::trim))
                .any(|p| p == SUBPROTOCOL);
            let mut upgrade = upgrade
                .read_buffer_size(buffer)
                .write_buffer_size(WRITE_BATCH_BYTES)
                // A cap, not an allocation: writes wait until the buffer was written out, so
                // it holds at most one batch and one frame (replay pages are bounded in
                // bytes too). The cap only has to fit the largest event frame.
                .max_write_buffer_size(
                    WRITE_BATCH_BYTES + shared.config.events.max_data_bytes + FRAME_OVERHEAD,
                )
                .max_message_size(shared.config.max_message_bytes)
                .max_frame_size(shared.config.max_message_bytes);
            if offers_subprotocol {
                upgrade = upgrade.protocols([SUBPROTOCOL]);
            }
            let shared = Arc::clone(&shared);
            upgrade
                .on_failed_upgrade(|err| tracing::info!(cause = %err, "websocket upgrade failed"))
                .on_upgrade(move |socket| connection::serve(socket, session, shared))
        }
    }
}

async fn handshake(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
) -> Result<Session, ApiError> {
    if !origin_allowed(headers, &shared.config.allowed_origins, shared.local_addr) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ORIGIN_NOT_ALLOWED,
            "origin not allowed",
        ));
    }
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(codes::INVALID_QUERY, e.body_text()))?;
    let token = find_token(headers, &query).ok_or_else(|| {
        ApiError::unauthorized(codes::TOKEN_MISSING, TokenError::Missing.to_string())
    })?;
    let after = match &query.after {
        None => None,
        Some(raw) if raw.is_empty() => None,
        Some(raw) => Some(
            raw.parse::<EventId>()
                .map_err(|e| ApiError::bad_request(codes::INVALID_EVENT_ID, e.to_string()))?,
        ),
    };
    let claims = shared.tokens.verify(&token).await?;
    let budgets = &shared.config.budgets;
    let slot = shared
        .sockets
        .try_open(&claims.sub, shared.config.max_connections, budgets)
        .map_err(|full| match full {
            Full::Process => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::TOO_MANY_CONNECTIONS,
                "gateway is full",
            ),
            Full::User => {
                GatewayMetrics::refused(Budget::SocketsPerUser);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::TOO_MANY_USER_SOCKETS,
                    format!(
                        "this user already holds {} sockets",
                        budgets.sockets_per_user
                    ),
                )
            }
        })?;
    Ok(Session {
        scope: UserScope::new(claims.sub.clone()),
        claims,
        token,
        after,
        slot,
    })
}

/// 404 for any unknown path, with the documented JSON error body.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route")
}

/// 405 for a known path with another method, with the documented JSON error body.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "alive" }))
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let report = shared.manager.health();
    // Without the subscriber, live events and revocations do not arrive.
    let subscriber_up = shared.manager.subscriber_up();
    let ok = *shared.redis_ok.borrow() && subscriber_up;
    let body = axum::Json(serde_json::json!({
        "ready": ok,
        "redis": if report.reachable { "reachable" } else { "unreachable" },
        "breaker": report.breaker.as_str(),
        "subscriber": if subscriber_up { "up" } else { "down" },
    }));
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.prometheus {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics recorder not installed by this process",
        )
            .into_response(),
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let report = shared.manager.health();
    axum::Json(serde_json::json!({
        "instance": shared.manager.instance_id(),
        "redis": if *shared.redis_ok.borrow() { "ok" } else { "degraded" },
        "breaker": report.breaker.as_str(),
        "latency_ms": report.latency_ms,
        "reconnects": report.reconnects,
        "connections": shared.sockets.open(),
        "uptime_secs": shared.started.elapsed().as_secs(),
    }))
}

async fn status_page() -> Html<&'static str> {
    Html(STATUS_PAGE)
}

async fn chat_page() -> Html<&'static str> {
    Html(CHAT_PAGE)
}

async fn js_client() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS_CLIENT,
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_tokens() {
        let uri: axum::http::Uri = "/v1/ws?token=a.b%2Ec&after=1-2&x=y".parse().unwrap();
        let Query(q) = Query::<WsQuery>::try_from_uri(&uri).unwrap();
        assert_eq!(q.token.as_deref(), Some("a.b.c"));
        assert_eq!(q.after.as_deref(), Some("1-2"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            "ssot.v1, bearer.tok".parse().unwrap(),
        );
        assert_eq!(
            find_token(&headers, &WsQuery::default()).as_deref(),
            Some("tok")
        );
        headers.insert(header::AUTHORIZATION, "Bearer first".parse().unwrap());
        assert_eq!(
            find_token(&headers, &WsQuery::default()).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn origins() {
        let own: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let with = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, "evil.example".parse().unwrap());
            headers.insert(header::ORIGIN, origin.parse().unwrap());
            headers
        };
        assert!(
            origin_allowed(&HeaderMap::new(), &[], own),
            "non-browser clients send no Origin"
        );
        assert!(origin_allowed(&with("http://127.0.0.1:8080"), &[], own));
        assert!(origin_allowed(&with("http://localhost:8080"), &[], own));
        assert!(
            !origin_allowed(&with("http://evil.example"), &[], own),
            "Host is not trusted"
        );
        assert!(!origin_allowed(&with("https://127.0.0.1:8080"), &[], own));
        assert!(!origin_allowed(&with("http://127.0.0.1:8081"), &[], own));
        assert!(!origin_allowed(&with("null"), &[], own));
        let listed = ["https://app.example".to_owned()];
        assert!(origin_allowed(
            &with("https://APP.example:443"),
            &listed,
            own
        ));
        assert!(!origin_allowed(&with("http://app.example"), &listed, own));
        assert!(!origin_allowed(
            &with("https://app.example.evil"),
            &listed,
            own
        ));
        assert!(origin_allowed(
            &with("https://evil.example"),
            &["*".into()],
            own
        ));
    }
}
