//! Every stable error code, in one catalogue: the `code` of `{"type":"error"}` frames and of
//! HTTP error bodies `{"error":{"code","message"}}`. `docs/protocol.md` documents each one;
//! a test below keeps both in step.

// WebSocket error frames (the socket stays open).

/// The frame is not JSON.
pub const INVALID_JSON: &str = "invalid_json";
/// JSON, but not a valid frame of its type.
pub const INVALID_FRAME: &str = "invalid_frame";
/// `type` is not one the server knows.
pub const UNKNOWN_TYPE: &str = "unknown_type";
/// An event id that is not `<ms>-<seq>` (in a `resume` frame or `?after=`).
pub const INVALID_EVENT_ID: &str = "invalid_event_id";
/// Inbound rate exceeded; `retry_after_ms` says when to send again.
pub const RATE_LIMITED: &str = "rate_limited";
/// Events after the resume id were trimmed by retention; delivery goes on from the oldest
/// retained event.
pub const HISTORY_TRUNCATED: &str = "history_truncated";
/// Redis is unavailable; retry after `retry_after_ms` (frames), `Retry-After` (HTTP 503).
pub const REDIS_UNAVAILABLE: &str = "redis_unavailable";
/// A chat message above the text limit.
pub const MESSAGE_TOO_LONG: &str = "message_too_long";
/// A message id that is not 1-256 characters of `[A-Za-z0-9_.:/@-]`.
pub const INVALID_MESSAGE_ID: &str = "invalid_message_id";
/// The agent queue holds its most jobs (`agent-queue-max-len`); the message was not stored,
/// retry after `retry_after_ms`.
pub const QUEUE_FULL: &str = "queue_full";
/// The user has `agent-queue-max-per-user` jobs queued or running; the message was not
/// stored, retry after `retry_after_ms`.
pub const USER_QUEUE_FULL: &str = "user_queue_full";

// HTTP: the WebSocket handshake.

/// No token anywhere.
pub const TOKEN_MISSING: &str = "token_missing";
/// Not a JWT, or its parts do not decode.
pub const TOKEN_MALFORMED: &str = "token_malformed";
/// `alg: none`, HS/RS confusion, or another algorithm than the configured one.
pub const TOKEN_ALGORITHM: &str = "token_algorithm";
/// The signature does not verify.
pub const TOKEN_SIGNATURE: &str = "token_signature";
/// `exp` has passed.
pub const TOKEN_EXPIRED: &str = "token_expired";
/// `nbf` is in the future.
pub const TOKEN_NOT_YET_VALID: &str = "token_not_yet_valid";
/// `aud` does not match.
pub const TOKEN_AUDIENCE: &str = "token_audience";
/// `iss` does not match.
pub const TOKEN_ISSUER: &str = "token_issuer";
/// A required claim is missing or unusable.
pub const TOKEN_CLAIMS: &str = "token_claims";
/// The token's `jti` was revoked.
pub const TOKEN_REVOKED: &str = "token_revoked";
/// `exp` further from `iat` or from now than `tokens.max-lifetime-secs`.
pub const TOKEN_LIFETIME: &str = "token_lifetime";
/// A token refusal of a kind this gateway version does not name yet.
pub const TOKEN_INVALID: &str = "token_invalid";
/// `Origin` not allowed.
pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
/// The process holds `max-connections` sockets.
pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
/// The user holds `max-sockets-per-user` sockets (HTTP 429).
pub const TOO_MANY_USER_SOCKETS: &str = "too_many_user_sockets";
/// The query string does not parse.
pub const INVALID_QUERY: &str = "invalid_query";

// HTTP: the publish API.

/// A user id that cannot be used.
pub const INVALID_USER_ID: &str = "invalid_user_id";
/// A body that is not `{"event":..,"data":..}`.
pub const INVALID_BODY: &str = "invalid_body";
/// A value the store refused (an event name, for one).
pub const INVALID_INPUT: &str = "invalid_input";
/// Missing or wrong service key.
pub const SERVICE_KEY: &str = "service_key";
/// No service key configured: publishing is off.
pub const PUBLISH_DISABLED: &str = "publish_disabled";
/// A body or `data` above the limit.
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// The body did not arrive within `body-timeout-ms`.
pub const BODY_TIMEOUT: &str = "body_timeout";
/// Stored on the master but not acknowledged by `min-replicas-acked` replicas within
/// `wait-timeout-ms` (HTTP 503 + `Retry-After`): it may survive a failover or not.
pub const NOT_REPLICATED: &str = "not_replicated";
/// An `Idempotency-Key` header that is not 1-128 visible ASCII characters.
pub const INVALID_IDEMPOTENCY_KEY: &str = "invalid_idempotency_key";
/// An `Idempotency-Key` used before with a different event (HTTP 409); nothing stored.
pub const IDEMPOTENCY_CONFLICT: &str = "idempotency_conflict";
/// A batch with more than `max-batch-items` items (HTTP 400); nothing stored.
pub const BATCH_TOO_LARGE: &str = "batch_too_large";
/// A job id that is not `<ms>-<seq>` (HTTP 400).
pub const INVALID_JOB_ID: &str = "invalid_job_id";
/// No such job of this user, or its state expired (HTTP 404).
pub const JOB_NOT_FOUND: &str = "job_not_found";

// HTTP: any route.

/// No such route.
pub const NOT_FOUND: &str = "not_found";
/// The route exists, not with this method.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// A bug: details are in the log.
pub const INTERNAL: &str = "internal";

/// The whole catalogue.
pub const ALL: &[&str] = &[
    INVALID_JSON,
    INVALID_FRAME,
    UNKNOWN_TYPE,
    INVALID_EVENT_ID,
    RATE_LIMITED,
    HISTORY_TRUNCATED,
    REDIS_UNAVAILABLE,
    MESSAGE_TOO_LONG,
    INVALID_MESSAGE_ID,
    QUEUE_FULL,
    USER_QUEUE_FULL,
    TOKEN_MISSING,
    TOKEN_MALFORMED,
    TOKEN_ALGORITHM,
    TOKEN_SIGNATURE,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    TOKEN_AUDIENCE,
    TOKEN_ISSUER,
    TOKEN_CLAIMS,
    TOKEN_REVOKED,
    TOKEN_LIFETIME,
    TOKEN_INVALID,
    ORIGIN_NOT_ALLOWED,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_USER_SOCKETS,
    INVALID_QUERY,
    INVALID_USER_ID,
    INVALID_BODY,
    INVALID_INPUT,
    SERVICE_KEY,
    PUBLISH_DISABLED,
    PAYLOAD_TOO_LARGE,
    BODY_TIMEOUT,
    NOT_REPLICATED,
    INVALID_IDEMPOTENCY_KEY,
    IDEMPOTENCY_CONFLICT,
    BATCH_TOO_LARGE,
    INVALID_JOB_ID,
    JOB_NOT_FOUND,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    INTERNAL,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ALL;
    use crate::protocol::CloseCode;

    const DOC: &str = include_str!("../../../../docs/protocol.md");

    /// The codes in the doc's tables: backticked `snake_case` words in a column headed
    /// `code` or `body`, and numbers in a column headed `code`.
    fn documented() -> (BTreeSet<String>, BTreeSet<u16>) {
        let (mut names, mut numbers) = (BTreeSet::new(), BTreeSet::new());
        let mut columns: Vec<usize> = Vec::new();
        for line in DOC.lines() {
            let Some(row) = line.trim().strip_prefix('|') else {
                columns.clear();
                continue;
            };
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            if columns.is_empty() {
                columns = (0..cells.len())
                    .filter(|&i| matches!(cells[i], "code" | "body"))
                    .collect();
                if columns.is_empty() {
                    columns.push(usize::MAX); // a table without codes: skip its rows
                }
                continue;
            }
            for &i in &columns {
                let Some(cell) = cells.get(i) else { continue };
                if let Ok(n) = cell.parse::<u16>() {
                    numbers.insert(n);
                }
                for (n, word) in cell.split('`').enumerate() {
                    let snake = !word.is_empty()
                        && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                    if n % 2 == 1 && snake {
                        names.insert(word.to_owned());
                    }
                }
            }
        }
        (names, numbers)
    }

    #[test]
    fn every_code_is_documented_and_every_documented_code_exists() {
        let (names, numbers) = documented();
        let catalogue: BTreeSet<String> = ALL.iter().map(|c| c.to_string()).collect();
        assert_eq!(catalogue.len(), ALL.len(), "a code is listed twice");
        let missing: Vec<_> = catalogue.difference(&names).collect();
        assert!(missing.is_empty(), "not in docs/protocol.md: {missing:?}");
        let unknown: Vec<_> = names.difference(&catalogue).collect();
        assert!(
            unknown.is_empty(),
            "documented, not in the catalogue: {unknown:?}"
        );
        let close: BTreeSet<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(close, numbers, "close codes: the enum vs the doc's table");
    }
}
