//! Frames from the client: `resume`, `ping` and chat `message`s, behind the per-user
//! inbound rate limit.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::future::BoxFuture;
use redis_ssot::stores::chat::ChatJob;
use redis_ssot::stores::events::EventId;
use redis_ssot::stores::jobs::NewJob;
use tokio::time::Instant;

use super::{Conn, End, NO_STATUS, Transport};
use crate::protocol::{self, ClientFrame, CloseCode, codes};
use crate::state::{Budget, GatewayMetrics};

impl<S: Transport> Conn<S> {
    /// Handles one inbound message. Boxed: rare next to outbound traffic, and its state
    /// (a script call) should not weigh on every idle socket.
    pub(super) fn inbound(&mut self, message: Message) -> BoxFuture<'_, Result<(), End>> {
        Box::pin(self.inbound_now(message))
    }

    async fn inbound_now(&mut self, message: Message) -> Result<(), End> {
        self.last_heard = Instant::now();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return Err(End::Close(CloseCode::Unsupported)),
            Message::Close(frame) => {
                return Err(End::ClientClosed(frame.map_or(NO_STATUS, |f| f.code)));
            }
            // Counted like any frame: a ping flood costs the server too (tungstenite
            // answers each ping with a pong).
            Message::Ping(_) | Message::Pong(_) => {
                self.admit().await?;
                return Ok(());
            }
        };
        if !self.admit().await? {
            return Ok(());
        }
        match protocol::parse_client_frame(text.as_str()) {
            Ok(ClientFrame::Ping {}) => {
                self.socket
                    .send(Utf8Bytes::from_static(protocol::PONG_FRAME))
                    .await
            }
            Ok(ClientFrame::Resume { after }) => match after.parse::<EventId>() {
                Ok(after) => {
                    self.delivery.resume_after(after);
                    let redis_ok = self.delivery.redis_ok();
                    self.delivery.resync(redis_ok, &mut self.socket).await
                }
                Err(err) => {
                    let frame =
                        protocol::error_frame(codes::INVALID_EVENT_ID, &err.to_string(), None);
                    self.socket.send(frame.into()).await
                }
            },
            Ok(ClientFrame::Message { id, text }) => self.message(id, text).await,
            Err(err) => {
                let frame = protocol::error_frame(err.code, &err.message, None);
                self.socket.send(frame.into()).await
            }
        }
    }

    /// A chat message: checked, rate limited, stored as an agent job, acknowledged.
    async fn message(&mut self, id: String, text: String) -> Result<(), End> {
        if let Err(err) = redis_ssot::keys::check_name("message id", &id) {
            let frame = protocol::error_frame(codes::INVALID_MESSAGE_ID, &err.to_string(), None);
            return self.socket.send(frame.into()).await;
        }
        let max = self.shared.config.max_text_bytes;
        if text.len() > max {
            let frame = protocol::error_frame(
                codes::MESSAGE_TOO_LONG,
                &format!("text is {} bytes; the limit is {max}", text.len()),
                None,
            );
            return self.socket.send(frame.into()).await;
        }
        let shared = Arc::clone(&self.shared);
        let scope = self.delivery.scope();
        let stored = async {
            let decision = shared.limiter.check(scope, &shared.message_limit).await?;
            if !decision.allowed {
                return Ok(Err(decision.retry_after));
            }
            let message = ChatJob {
                message_id: id.clone(),
                text,
            };
            let job = NewJob::chat(scope.user().clone(), message);
            shared.jobs.enqueue(job).await.map(Ok)
        };
        let frame = match stored.await {
            Ok(Ok(enqueued)) => protocol::ack_frame(&id, &enqueued.id),
            Ok(Err(retry_after)) => protocol::error_frame(
                codes::RATE_LIMITED,
                "too many messages; slow down",
                Some(retry_after.as_millis() as u64),
            ),
            Err(err @ redis_ssot::Error::QueueFull { .. }) => protocol::error_frame(
                codes::QUEUE_FULL,
                "the agent queue is full; retry later",
                err.retry_after().map(|d| d.as_millis() as u64),
            ),
            Err(err @ redis_ssot::Error::UserQueueFull { .. }) => {
                GatewayMetrics::refused(Budget::JobsPerUser);
                protocol::error_frame(
                    codes::USER_QUEUE_FULL,
                    "you have too many messages waiting for the agent; retry once they ran",
                    err.retry_after().map(|d| d.as_millis() as u64),
                )
            }
            Err(err) if err.is_transient() => protocol::error_frame(
                codes::REDIS_UNAVAILABLE,
                "messages cannot be stored right now; retry",
                Some(
                    err.retry_after()
                        .unwrap_or(Duration::from_secs(1))
                        .as_millis() as u64,
                ),
            ),
            Err(err) => protocol::error_frame(codes::INVALID_FRAME, &err.to_string(), None),
        };
        self.socket.send(frame.into()).await
    }

    /// Inbound rate limit per user. Fails open while Redis is unavailable: a Redis blink
    /// must not cut users off.
    async fn admit(&mut self) -> Result<bool, End> {
        let decision = self
            .shared
            .limiter
            .check(self.delivery.scope(), &self.shared.inbound_limit)
            .await;
        match decision {
            Ok(d) if !d.allowed => {
                self.limited_in_a_row += 1;
                if self.limited_in_a_row >= self.shared.config.abuse_threshold {
                    return Err(End::Close(CloseCode::Policy));
                }
                let frame = protocol::error_frame(
                    codes::RATE_LIMITED,
                    "too many frames; slow down",
                    Some(d.retry_after.as_millis() as u64),
                );
                self.socket.send(frame.into()).await?;
                Ok(false)
            }
            _ => {
                self.limited_in_a_row = 0;
                Ok(true)
            }
        }
    }
}
