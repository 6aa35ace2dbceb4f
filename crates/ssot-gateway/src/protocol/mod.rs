//! The wire protocol: frames, error codes and close codes, documented in one place
//! (`docs/protocol.md` mirrors this file).
//!
//! Close codes fall in two ranges, like centrifuge's disconnect codes:
//! - **reconnect**: 1012 and 4000–4399 — the client reconnects with backoff and resumes with
//!   its last event id; nothing is lost.
//! - **terminal**: 1003, 1008, 1009 and 4400–4999 — reconnecting with the same token or the
//!   same behaviour fails again; the client must fix something first (new token, smaller
//!   frames, slower sending).
//!
//! 1011 (internal error) is never sent for anything foreseeable, Redis outages included.

use serde::Deserialize;

/// A WebSocket close code with its documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1003: a binary frame; the protocol is JSON text. Terminal.
    Unsupported,
    /// 1008: inbound rate abused (kept sending while rate limited). Terminal.
    Policy,
    /// 1009: an inbound message above the size limit. Terminal.
    TooBig,
    /// 1012: the server is restarting or shutting down. Reconnect.
    Restart,
    /// 4000: the client did not read fast enough; reconnect and resume. Reconnect.
    SlowConsumer,
    /// 4001: no replay slot free in time (the user's other sockets, or the whole process,
    /// are replaying); reconnect with backoff and resume. Reconnect.
    ReplayBusy,
    /// 4002: nothing heard from the client (not even a pong) for `idle-timeout-ms`. Reconnect.
    IdleTimeout,
    /// 4401: the token expired. Terminal for this token: get a new one.
    TokenExpired,
    /// 4403: the token was revoked. Terminal.
    TokenRevoked,
}

impl CloseCode {
    /// Every close code the gateway sends (each one documented in `docs/protocol.md`).
    pub const ALL: &[CloseCode] = &[
        CloseCode::Unsupported,
        CloseCode::Policy,
        CloseCode::TooBig,
        CloseCode::Restart,
        CloseCode::SlowConsumer,
        CloseCode::ReplayBusy,
        CloseCode::IdleTimeout,
        CloseCode::TokenExpired,
        CloseCode::TokenRevoked,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Unsupported => 1003,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Restart => 1012,
            CloseCode::SlowConsumer => 4000,
            CloseCode::ReplayBusy => 4001,
            CloseCode::IdleTimeout => 4002,
            CloseCode::TokenExpired => 4401,
            CloseCode::TokenRevoked => 4403,
        }
    }

    /// The close reason sent with the code.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Unsupported => "binary frames are not supported",
            CloseCode::Policy => "inbound rate limit abused",
            CloseCode::TooBig => "message too big",
            CloseCode::Restart => "server restart, reconnect",
            CloseCode::SlowConsumer => "slow consumer, reconnect and resume",
            CloseCode::ReplayBusy => "replay busy, reconnect later and resume",
            CloseCode::IdleTimeout => "idle timeout, reconnect and resume",
            CloseCode::TokenExpired => "token expired",
            CloseCode::TokenRevoked => "token revoked",
        }
    }

    /// True when the client should reconnect and resume.
    pub fn is_reconnect(self) -> bool {
        let code = self.code();
        code == 1012 || (4000..4400).contains(&code)
    }
}

pub mod codes;
#[cfg(test)]
mod fuzz_tests;

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ClientFrame {
    /// Resume after this event id.
    Resume {
        /// The last event id the client has.
        after: String,
    },
    /// Liveness check; answered with `{"type":"pong"}`. A struct variant, not a unit one:
    /// serde ignores unknown fields of internally tagged unit variants even under
    /// `deny_unknown_fields`, and `{"type":"ping","x":1}` must be refused like the others.
    Ping {},
    /// A chat message for the agent; answered with `{"type":"ack","ref":id,"job":..}` once
    /// the job is stored. The same `id` twice runs one job.
    Message {
        /// The client's message id (its idempotency key).
        id: String,
        /// The text.
        text: String,
    },
}

/// Why an inbound text frame was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// Parses one inbound text frame, telling invalid JSON, unknown types and bad fields apart.
pub(crate) fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| FrameError {
        code: codes::INVALID_JSON,
        message: format!("not JSON: {err}"),
    })?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| FrameError {
            code: codes::INVALID_FRAME,
            message: "a frame is a JSON object with a string \"type\"".to_owned(),
        })?;
    if !matches!(kind.as_str(), "resume" | "ping" | "message") {
        return Err(FrameError {
            code: codes::UNKNOWN_TYPE,
            message: format!(
                "unknown frame type {:?}",
                kind.chars().take(32).collect::<String>()
            ),
        });
    }
    serde_json::from_value(value).map_err(|err| FrameError {
        code: codes::INVALID_FRAME,
        message: format!("bad {kind} frame: {err}"),
    })
}

/// `{"type":"status","redis":"ok"|"degraded"}`.
pub(crate) fn status_frame(redis_ok: bool) -> String {
    let state = if redis_ok { "ok" } else { "degraded" };
    format!("{{\"type\":\"status\",\"redis\":\"{state}\"}}")
}

/// `{"type":"error","code":..,"message":..}` plus optional fields.
pub(crate) fn error_frame(code: &str, message: &str, retry_after_ms: Option<u64>) -> String {
    let mut frame = serde_json::json!({ "type": "error", "code": code, "message": message });
    if let Some(ms) = retry_after_ms {
        frame["retry_after_ms"] = ms.into();
    }
    frame.to_string()
}

/// `{"type":"ack","ref":<client message id>,"job":<job id>}`.
pub(crate) fn ack_frame(message_id: &str, job: &str) -> String {
    serde_json::json!({ "type": "ack", "ref": message_id, "job": job }).to_string()
}

/// `{"type":"pong"}`.
pub(crate) const PONG_FRAME: &str = "{\"type\":\"pong\"}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_classified() {
        assert!(matches!(
            parse_client_frame(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping {})
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"resume","after":"1-2"}"#),
            Ok(ClientFrame::Resume { .. })
        ));
        let code = |t: &str| parse_client_frame(t).unwrap_err().code;
        assert_eq!(code("{nope"), codes::INVALID_JSON);
        assert_eq!(code("[1]"), codes::INVALID_FRAME);
        assert_eq!(code(r#"{"type":7}"#), codes::INVALID_FRAME);
        assert_eq!(code(r#"{"type":"dance"}"#), codes::UNKNOWN_TYPE);
        assert_eq!(code(r#"{"type":"resume"}"#), codes::INVALID_FRAME);
    }

    #[test]
    fn close_code_ranges() {
        for c in [
            CloseCode::Restart,
            CloseCode::SlowConsumer,
            CloseCode::IdleTimeout,
        ] {
            assert!(c.is_reconnect(), "{c:?}");
        }
        for c in [
            CloseCode::Unsupported,
            CloseCode::Policy,
            CloseCode::TooBig,
            CloseCode::TokenExpired,
            CloseCode::TokenRevoked,
        ] {
            assert!(!c.is_reconnect(), "{c:?}");
            assert_ne!(c.code(), 1011);
        }
    }

    #[test]
    fn error_frames_escape() {
        let f = error_frame("x", "a \"quoted\" message", Some(5));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["message"], "a \"quoted\" message");
        assert_eq!(v["retry_after_ms"], 5);
    }
}
