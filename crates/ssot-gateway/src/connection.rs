//! One WebSocket: subscribe, replay, then live — exactly once and in order per socket.
//!
//! ## Behavior
//! - Subscribes to the user's live events first, then replays from the resume id, then
//!   delivers live events; every event is sent only if its id is above the last one sent,
//!   so overlaps between replay and live never show twice.
//! - Without a resume id, delivery starts at the user's newest event at connect time.
//! - When Redis goes away the socket stays open and gets `status: degraded`; when it comes
//!   back (or the subscription reports a gap), the socket catches up from the stream first
//!   and then gets `status: ok`.
//! - One task reads and writes; frames are buffered and flushed together before each wait.
//!   A client that does not take a write or flush within `slow_consumer_timeout` is closed
//!   with 4000 (reconnect and resume).
//! - Written over any `Sink`/`Stream` of messages so it can be driven without a network.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::future::BoxFuture;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use redis_ssot::stores::events::{Event, EventId, EventSubscription, LiveEvent, LiveFrame};
use redis_ssot::stores::jobs::NewJob;
use redis_ssot::stores::tokens::{Claims, TokenError};
use redis_ssot::{Error, UserScope};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::protocol::{self, ClientFrame, CloseCode, codes};
use crate::state::{GatewayMetrics, Shared, SocketSlot};

/// Events read from the stream per replay round trip.
const REPLAY_PAGE: usize = 256;
/// How often a socket that could not catch up retries while Redis is reachable again.
const CATCH_UP_RETRY: Duration = Duration::from_millis(500);
/// How long a close frame may take to send.
const CLOSE_BUDGET: Duration = Duration::from_secs(1);
/// How long a slow consumer's socket is kept for its close frame: a client that starts
/// reading again within this time still learns the reconnect code (4000).
const SLOW_CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// Who is connected, established at the handshake.
pub(crate) struct Session {
    pub(crate) scope: UserScope,
    pub(crate) claims: Claims,
    /// The raw token, to check its revocation again after missed notifications.
    pub(crate) token: String,
    pub(crate) after: Option<EventId>,
    pub(crate) slot: SocketSlot,
}

/// How the socket loop ended.
enum End {
    /// Close with this code.
    Close(CloseCode),
    /// The client closed with this code (1005 when it gave none).
    ClientClosed(u16),
    /// The connection broke without a closing handshake: counted as 1006 (abnormal).
    Dropped,
}

/// What a connection that ends without a close frame counts as (RFC 6455 §7.1.5).
const ABNORMAL_CLOSURE: u16 = 1006;
/// What a client close without a code counts as (RFC 6455 §7.1.5).
const NO_STATUS: u16 = 1005;

/// Serves one upgraded socket until it ends.
pub(crate) async fn serve<S, E>(socket: S, session: Session, shared: Arc<Shared>)
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    shared.metrics.connections.increment(1.0);
    let mut conn = Conn {
        shared: Arc::clone(&shared),
        scope: session.scope,
        claims: session.claims,
        token: session.token,
        socket,
        unflushed: false,
        delivered: session.after,
        floor: None,
        needs_catch_up: session.after.is_some(),
        told_ok: None,
        limited_in_a_row: 0,
    };
    match conn.run().await {
        End::Close(code) => {
            GatewayMetrics::closed(code.code());
            // Whatever is buffered goes first; a slow consumer gets longer to take it.
            let budget = if code == CloseCode::SlowConsumer {
                SLOW_CLOSE_BUDGET
            } else {
                CLOSE_BUDGET
            };
            let _ = tokio::time::timeout(budget, conn.socket.send(close_message(code))).await;
        }
        End::ClientClosed(code) => {
            GatewayMetrics::closed(code);
            // The closing handshake: answered with the client's code.
            let _ = tokio::time::timeout(CLOSE_BUDGET, conn.socket.close()).await;
        }
        End::Dropped => {
            GatewayMetrics::closed(ABNORMAL_CLOSURE);
            let _ = tokio::time::timeout(CLOSE_BUDGET, conn.socket.close()).await;
        }
    }
    shared.metrics.connections.decrement(1.0);
    drop(session.slot);
}

fn close_message(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: Utf8Bytes::from_static(code.reason()),
    }))
}

/// One socket's state. Reading and writing happen in this one task: a second task and a
/// queue per socket cost more memory than an idle socket should, and a wake-up per event.
struct Conn<S> {
    shared: Arc<Shared>,
    scope: UserScope,
    claims: Claims,
    token: String,
    socket: S,
    /// Frames written to the socket's buffer but not flushed yet.
    unflushed: bool,
    /// The newest event id sent to (or acknowledged by) the client.
    delivered: Option<EventId>,
    /// Where delivery starts when nothing was sent yet: the newest event at connect time.
    floor: Option<EventId>,
    needs_catch_up: bool,
    /// The last status told to the client.
    told_ok: Option<bool>,
    limited_in_a_row: u32,
}

impl<S, E> Conn<S>
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    async fn run(&mut self) -> End {
        let shared = Arc::clone(&self.shared);
        let mut shutdown = shared.shutdown.clone();
        let mut redis_ok = shared.redis_ok.clone();
        let revocations = shared.tokens.revocations();
        let expiry = expiry_instant(self.claims.exp);
        if *shutdown.borrow_and_update() {
            return End::Close(CloseCode::Restart);
        }

        // Subscribe before reading history, so nothing falls in between.
        let mut live: Option<EventSubscription> = None;
        match shared.events.subscribe(&self.scope).await {
            Ok(sub) => live = Some(sub),
            Err(err) => tracing::warn!(cause = %err, "subscribe failed; retrying on recovery"),
        }
        if live.is_some() && self.delivered.is_none() {
            self.fix_floor().await;
        }
        let ok_now = *redis_ok.borrow_and_update();
        if let Err(end) = self.resync(ok_now).await {
            return end;
        }

        // The process-wide signals are awaited by futures armed once and re-armed only when
        // they fire: re-creating them on every wake-up would take their shared waiter locks
        // twice per event per socket.
        let expiry = tokio::time::sleep_until(expiry);
        let shutdown = next_change(shutdown);
        let status = next_change(redis_ok);
        let revocation = next_revocation(revocations);
        tokio::pin!(expiry, shutdown, status, revocation);
        loop {
            // Everything written since the last wait goes out in one flush.
            if let Err(end) = self.flush().await {
                return end;
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return End::Close(CloseCode::Restart),
                () = &mut expiry => return End::Close(CloseCode::TokenExpired),
                (revoked, rx) = &mut revocation => {
                    revocation.set(next_revocation(rx));
                    match revoked {
                        Ok(jti) if self.claims.jti.as_deref() == Some(jti.as_str()) => {
                            return End::Close(CloseCode::TokenRevoked);
                        }
                        Ok(_) => {}
                        // Missed some: check ours against Redis.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if self.revoked().await { return End::Close(CloseCode::TokenRevoked) }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
                    }
                }
                (changed, mut rx) = &mut status => {
                    if changed.is_err() { return End::Close(CloseCode::Restart) }
                    let ok = *rx.borrow_and_update();
                    status.set(next_change(rx));
                    if ok {
                        // Revocations announced while we were cut off were missed.
                        if self.revoked().await { return End::Close(CloseCode::TokenRevoked) }
                        if live.is_none() {
                            live = shared.events.subscribe(&self.scope).await.ok();
                        }
                        self.needs_catch_up = true;
                    }
                    if let Err(end) = self.resync(ok).await { return end }
                }
                event = next_live(&mut live) => {
                    match event {
                        Some(LiveEvent::Event(event)) if self.needs_catch_up => {
                            // Older events may be missing: read them (this one included)
                            // from the stream first; if that fails, the next catch-up will.
                            let _ = event;
                            let ok = match self.catch_up().await {
                                Ok(ok) => ok,
                                Err(end) => return end,
                            };
                            if let Err(end) = self.tell_status(ok && *shared.redis_ok.borrow()).await { return end }
                        }
                        Some(LiveEvent::Event(frame)) => {
                            if let Err(end) = self.deliver_live(&frame).await { return end }
                            // Take what else is already there before flushing.
                            while !self.needs_catch_up {
                                let Some(sub) = live.as_mut() else { break };
                                match sub.try_recv() {
                                    Some(LiveEvent::Event(frame)) => {
                                        if let Err(end) = self.deliver_live(&frame).await { return end }
                                    }
                                    Some(LiveEvent::Gap) => self.needs_catch_up = true,
                                    None => break,
                                }
                            }
                        }
                        Some(LiveEvent::Gap) => {
                            self.needs_catch_up = true;
                            let redis_ok = *shared.redis_ok.borrow();
                            if let Err(end) = self.resync(redis_ok).await { return end }
                        }
                        None => return End::Close(CloseCode::Restart),
                    }
                }
                // In a block: only built into a timer when the branch is enabled and polled.
                () = async { tokio::time::sleep(CATCH_UP_RETRY).await }, if self.needs_catch_up || live.is_none() => {
                    if live.is_none() {
                        live = shared.events.subscribe(&self.scope).await.ok();
                    }
                    let redis_ok = *shared.redis_ok.borrow() && live.is_some();
                    if let Err(end) = self.resync(redis_ok).await { return end }
                }
                inbound = self.socket.next() => {
                    match inbound {
                        Some(Ok(message)) => {
                            if let Err(end) = self.inbound(message).await { return end }
                        }
                        Some(Err(err)) if is_oversize(&err) => return End::Close(CloseCode::TooBig),
                        Some(Err(_)) | None => return End::Dropped,
                    }
                }
            }
        }
    }

    /// True when the token is now known to be revoked.
    fn revoked(&self) -> BoxFuture<'static, bool> {
        let (shared, token) = (Arc::clone(&self.shared), self.token.clone());
        Box::pin(async move {
            matches!(
                shared.tokens.verify(&token).await,
                Err(Error::Token(TokenError::Revoked))
            )
        })
    }

    /// Starts delivery at the newest stored event, if Redis answers.
    fn fix_floor(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.fix_floor_now())
    }

    async fn fix_floor_now(&mut self) {
        if self.floor.is_none()
            && self.delivered.is_none()
            && let Ok(tail) = self.shared.events.last_id(&self.scope).await
        {
            self.floor = Some(tail);
        }
    }

    /// Catches up when `redis_ok` (Redis is usable), then tells the client whether it is
    /// caught up (`ok`) or not (`degraded`).
    fn resync(&mut self, redis_ok: bool) -> BoxFuture<'_, Result<(), End>> {
        Box::pin(async move {
            let ok = redis_ok && self.catch_up().await?;
            self.tell_status(ok).await
        })
    }

    /// Replays everything after the last delivered event. `Ok(false)` when Redis failed (the
    /// next catch-up retries); `Err` when the client failed: one that does not take the
    /// replay in time is a slow consumer like any other, closed with 4000 to resume later.
    ///
    /// Boxed, like the other rare paths ([`Conn::inbound`], [`Conn::revoked`]): an async fn's
    /// state is as large as its largest await, and an idle socket should not carry the
    /// space of a replay or a script call it is not running.
    fn catch_up(&mut self) -> BoxFuture<'_, Result<bool, End>> {
        Box::pin(self.catch_up_now())
    }

    async fn catch_up_now(&mut self) -> Result<bool, End> {
        if !self.needs_catch_up {
            return Ok(true);
        }
        let Some(mut cursor) = self.delivered.or(self.floor) else {
            // Nothing delivered and no floor yet: start from the newest event now.
            self.fix_floor().await;
            self.needs_catch_up = self.floor.is_none();
            return Ok(!self.needs_catch_up);
        };
        let mut told_truncated = false;
        loop {
            let page = match self
                .shared
                .events
                .replay_after(&self.scope, cursor, REPLAY_PAGE)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    tracing::debug!(cause = %err, "replay failed; will retry");
                    return Ok(false);
                }
            };
            if page.truncated && !told_truncated {
                told_truncated = true;
                let frame = protocol::error_frame(
                    codes::HISTORY_TRUNCATED,
                    &format!(
                        "events after {cursor} were trimmed by retention; continuing from the oldest retained event"
                    ),
                    None,
                );
                self.send(frame.into()).await?;
            }
            let full = page.events.len() == REPLAY_PAGE;
            for event in &page.events {
                cursor = event.id;
                self.shared.metrics.replayed.increment(1);
                self.deliver(event).await?;
            }
            if !full {
                self.needs_catch_up = false;
                return Ok(true);
            }
        }
    }

    /// Sends a replayed event unless the client already has it.
    async fn deliver(&mut self, event: &Event) -> Result<(), End> {
        if self.has(event.id) {
            return Ok(());
        }
        self.send(event.to_json().into()).await?;
        self.delivered = Some(event.id);
        self.shared.metrics.delivered.increment(1);
        Ok(())
    }

    /// Sends a live event unless the client already has it. The frame is the announced
    /// JSON itself, shared with the user's other sockets: no decoding, no copy.
    async fn deliver_live(&mut self, frame: &LiveFrame) -> Result<(), End> {
        if self.has(frame.id()) {
            return Ok(());
        }
        let Ok(text) = Utf8Bytes::try_from(frame.json().clone()) else {
            // Not what `append` publishes: read it from the stream instead.
            self.needs_catch_up = true;
            return Ok(());
        };
        self.send(text).await?;
        self.delivered = Some(frame.id());
        self.shared.metrics.delivered.increment(1);
        Ok(())
    }

    fn has(&self, id: EventId) -> bool {
        self.delivered.is_some_and(|last| id <= last)
    }

    async fn tell_status(&mut self, ok: bool) -> Result<(), End> {
        if self.told_ok != Some(ok) {
            self.send(protocol::status_frame(ok).into()).await?;
            self.told_ok = Some(ok);
        }
        Ok(())
    }

    /// Writes a frame into the socket's buffer (written out when it fills, or at the next
    /// flush). A client that does not take it within `slow_consumer_timeout` is slow.
    async fn send(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let budget = self.shared.config.slow_consumer_timeout;
        match tokio::time::timeout(budget, self.socket.feed(Message::Text(text))).await {
            Ok(Ok(())) => {
                self.unflushed = true;
                Ok(())
            }
            Ok(Err(_)) => Err(End::Dropped),
            Err(_) => Err(End::Close(CloseCode::SlowConsumer)),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        if !self.unflushed {
            return Ok(());
        }
        let budget = self.shared.config.slow_consumer_timeout;
        match tokio::time::timeout(budget, self.socket.flush()).await {
            Ok(Ok(())) => {
                self.unflushed = false;
                Ok(())
            }
            Ok(Err(_)) => Err(End::Dropped),
            Err(_) => Err(End::Close(CloseCode::SlowConsumer)),
        }
    }

    fn inbound(&mut self, message: Message) -> BoxFuture<'_, Result<(), End>> {
        Box::pin(self.inbound_now(message))
    }

    async fn inbound_now(&mut self, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return Err(End::Close(CloseCode::Unsupported)),
            Message::Close(frame) => {
                return Err(End::ClientClosed(frame.map_or(NO_STATUS, |f| f.code)));
            }
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        if !self.admit().await? {
            return Ok(());
        }
        match protocol::parse_client_frame(text.as_str()) {
            Ok(ClientFrame::Ping) => {
                self.send(Utf8Bytes::from_static(protocol::PONG_FRAME))
                    .await
            }
            Ok(ClientFrame::Resume { after }) => match after.parse::<EventId>() {
                Ok(after) => {
                    self.delivered = Some(after);
                    self.needs_catch_up = true;
                    let redis_ok = *self.shared.redis_ok.borrow();
                    self.resync(redis_ok).await
                }
                Err(err) => {
                    let frame =
                        protocol::error_frame(codes::INVALID_EVENT_ID, &err.to_string(), None);
                    self.send(frame.into()).await
                }
            },
            Ok(ClientFrame::Message { id, text }) => self.message(id, text).await,
            Err(err) => {
                let frame = protocol::error_frame(err.code, &err.message, None);
                self.send(frame.into()).await
            }
        }
    }

    /// A chat message: checked, rate limited, stored as an agent job, acknowledged.
    async fn message(&mut self, id: String, text: String) -> Result<(), End> {
        if let Err(err) = redis_ssot::keys::check_name("message id", &id) {
            let frame = protocol::error_frame(codes::INVALID_MESSAGE_ID, &err.to_string(), None);
            return self.send(frame.into()).await;
        }
        let max = self.shared.config.max_text_bytes;
        if text.len() > max {
            let frame = protocol::error_frame(
                codes::MESSAGE_TOO_LONG,
                &format!("text is {} bytes; the limit is {max}", text.len()),
                None,
            );
            return self.send(frame.into()).await;
        }
        let shared = Arc::clone(&self.shared);
        let stored = async {
            let decision = shared
                .limiter
                .check(&self.scope, &shared.message_limit)
                .await?;
            if !decision.allowed {
                return Ok(Err(decision.retry_after));
            }
            let job = NewJob {
                user: self.scope.user().clone(),
                kind: "chat".to_owned(),
                payload: serde_json::json!({ "message_id": id, "text": text }),
                idempotency_key: Some(id.clone()),
            };
            shared.jobs.enqueue(job).await.map(Ok)
        };
        let frame = match stored.await {
            Ok(Ok(enqueued)) => protocol::ack_frame(&id, &enqueued.id),
            Ok(Err(retry_after)) => protocol::error_frame(
                codes::RATE_LIMITED,
                "too many messages; slow down",
                Some(retry_after.as_millis() as u64),
            ),
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
        self.send(frame.into()).await
    }

    /// Inbound rate limit per user. Fails open while Redis is unavailable: a Redis blink
    /// must not cut users off.
    async fn admit(&mut self) -> Result<bool, End> {
        let decision = self
            .shared
            .limiter
            .check(&self.scope, &self.shared.inbound_limit)
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
                self.send(frame.into()).await?;
                Ok(false)
            }
            _ => {
                self.limited_in_a_row = 0;
                Ok(true)
            }
        }
    }
}

/// The next change of a watched value, handing the receiver back to be re-armed.
async fn next_change<T>(
    mut rx: watch::Receiver<T>,
) -> (Result<(), watch::error::RecvError>, watch::Receiver<T>) {
    let changed = rx.changed().await;
    (changed, rx)
}

/// The next revoked token id, handing the receiver back to be re-armed.
async fn next_revocation(
    mut rx: broadcast::Receiver<String>,
) -> (
    Result<String, broadcast::error::RecvError>,
    broadcast::Receiver<String>,
) {
    let revoked = rx.recv().await;
    (revoked, rx)
}

async fn next_live(live: &mut Option<EventSubscription>) -> Option<LiveEvent> {
    match live {
        Some(sub) => sub.recv().await,
        None => std::future::pending().await,
    }
}

/// True when a read failed because the message was above `max-message-bytes`.
///
/// axum hands out tungstenite's errors boxed inside its own, and the gateway does not link
/// tungstenite itself, so the type cannot be downcast to: this matches the `Display` of
/// `tungstenite::Error::Capacity` ("Space limit exceeded: ..."), which covers both the
/// message and the frame limit. A tungstenite upgrade that rewords it fails
/// `capacity_errors_are_oversize` below and the bad-input tests (64 KiB + 1 must close 1009).
fn is_oversize(err: &impl std::fmt::Display) -> bool {
    err.to_string().starts_with("Space limit exceeded")
}

/// The instant a token expiring at `exp` (Unix seconds) runs out.
fn expiry_instant(exp: u64) -> Instant {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let left = (exp as f64 - now_unix).max(0.0);
    Instant::now() + Duration::from_secs_f64(left.min(10.0 * 365.0 * 86_400.0))
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    use super::is_oversize;

    /// The tungstenite linked here is the one axum uses (one version in Cargo.lock).
    #[test]
    fn capacity_errors_are_oversize() {
        let too_long = WsError::Capacity(CapacityError::MessageTooLong {
            size: 65_537,
            max_size: 65_536,
        });
        assert!(is_oversize(&axum::Error::new(too_long)));
        assert!(!is_oversize(&axum::Error::new(WsError::ConnectionClosed)));
        assert!(!is_oversize(&axum::Error::new(std::io::Error::other(
            "message too long"
        ))));
    }
}
