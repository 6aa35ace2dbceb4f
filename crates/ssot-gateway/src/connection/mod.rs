//! One WebSocket: subscribe, replay, then live — exactly once and in order per socket.
//!
//! # Layout
//! - this file: [`serve`], the socket loop ([`Conn::step`]) and the client side of the
//!   wire ([`Socket`]: buffered writes, one flush per wait).
//! - `delivery`: what the client has and what it still needs: replay, live, status.
//! - `inbound`: frames from the client (`resume`, `ping`, chat `message`) and their limit.
//! - `signals`: process-wide wake-ups: shutdown, token expiry, revocations, Redis status.
//!
//! ## Behavior
//! - Subscribes to the user's live events first, then replays from the resume id, then
//!   delivers live events (see `delivery`).
//! - When Redis goes away the socket stays open and gets `status: degraded`; when it comes
//!   back (or the subscription reports a gap), the socket catches up from the stream first
//!   and then gets `status: ok`. On a Cluster "Redis" is the master that owns the user's
//!   slot: a failed master degrades only the sockets of its users.
//! - One task reads and writes; frames are buffered and flushed together before each wait.
//!   A client that does not take a write or flush within `slow_consumer_timeout` is closed
//!   with 4000 (reconnect and resume).
//! - Written over any `Sink`/`Stream` of messages so it can be driven without a network.

mod delivery;
mod inbound;
mod signals;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::future::BoxFuture;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use redis_ssot::stores::events::{EventId, LiveEvent};
use redis_ssot::stores::tokens::{Claims, TokenError};
use redis_ssot::{Error, UserScope};

use self::delivery::{CATCH_UP_RETRY, Delivery};
use self::signals::{Signal, Signals, is_oversize};
use crate::protocol::CloseCode;
use crate::state::{GatewayMetrics, Shared, SocketSlot};

/// How long a close frame may take to send.
const CLOSE_BUDGET: Duration = Duration::from_secs(1);
/// How long a slow consumer's socket is kept for its close frame: a client that starts
/// reading again within this time still learns the reconnect code (4000).
const SLOW_CLOSE_BUDGET: Duration = Duration::from_secs(5);
/// What a connection that ends without a close frame counts as (RFC 6455 §7.1.5).
const ABNORMAL_CLOSURE: u16 = 1006;
/// What a client close without a code counts as (RFC 6455 §7.1.5).
const NO_STATUS: u16 = 1005;

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

/// A WebSocket as the loop sees it: any `Sink`/`Stream` of messages (a real socket, or a
/// channel pair in a unit test).
trait Transport:
    Sink<Message, Error = Self::Failure>
    + Stream<Item = Result<Message, Self::Failure>>
    + Send
    + Unpin
    + 'static
{
    /// Why a read or write failed.
    type Failure: std::fmt::Display + Send + 'static;
}

impl<T, E> Transport for T
where
    T: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    type Failure = E;
}

/// Serves one upgraded socket until it ends.
pub(crate) async fn serve<S, E>(socket: S, session: Session, shared: Arc<Shared>)
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    shared.metrics.connections.increment(1.0);
    let mut conn = Conn {
        delivery: Delivery::new(
            Arc::clone(&shared),
            session.scope,
            session.after,
            session.slot.user_replays(),
        ),
        socket: Socket {
            inner: socket,
            unflushed: false,
            budget: shared.config.slow_consumer_timeout,
        },
        shared: Arc::clone(&shared),
        claims: session.claims,
        token: session.token,
        redis_ok: false,
        limited_in_a_row: 0,
        last_heard: Instant::now(),
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
            let frame = close_message(code);
            let _ = tokio::time::timeout(budget, conn.socket.inner.send(frame)).await;
        }
        End::ClientClosed(code) => {
            GatewayMetrics::closed(code);
            // The closing handshake: answered with the client's code.
            let _ = tokio::time::timeout(CLOSE_BUDGET, conn.socket.inner.close()).await;
        }
        End::Dropped => {
            GatewayMetrics::closed(ABNORMAL_CLOSURE);
            let _ = tokio::time::timeout(CLOSE_BUDGET, conn.socket.inner.close()).await;
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
    claims: Claims,
    token: String,
    socket: Socket<S>,
    delivery: Delivery,
    /// Whether Redis was usable for this user (their shard on a Cluster) when last looked
    /// at: a change elsewhere that leaves it as it was does not disturb the socket.
    redis_ok: bool,
    /// Inbound frames refused in a row by the rate limit.
    limited_in_a_row: u32,
    /// When the client last sent anything (a pong included).
    last_heard: Instant,
}

/// What woke the loop.
enum Wake<E> {
    Signal(Signal),
    Live(Option<LiveEvent>),
    Retry,
    Inbound(Option<Result<Message, E>>),
}

impl<S: Transport> Conn<S> {
    async fn run(&mut self) -> End {
        let mut shutdown = self.shared.shutdown.clone();
        let mut redis_changes = self.shared.redis_changes.clone();
        let revocations = self.shared.tokens.revocations();
        let resyncs = self.shared.tokens.resyncs();
        if *shutdown.borrow_and_update() {
            return End::Close(CloseCode::Restart);
        }
        self.delivery.start().await;
        redis_changes.borrow_and_update();
        self.redis_ok = self.delivery.redis_ok();
        if let Err(end) = self.delivery.resync(self.redis_ok, &mut self.socket).await {
            return end;
        }
        let ping_interval = self.shared.config.budgets.ping_interval;
        let mut signals = Signals::new(
            self.claims.exp,
            ping_interval,
            shutdown,
            redis_changes,
            revocations,
            resyncs,
        );
        loop {
            if let Err(end) = self.step(&mut signals).await {
                return end;
            }
        }
    }

    /// One turn of the loop: write out, wait for the first thing that happens, act on it.
    async fn step(&mut self, signals: &mut Signals) -> Result<(), End> {
        // 1. Write: everything written since the last wait goes out in one flush.
        self.socket.flush().await?;

        // 2. Read: whatever comes first. Biased: ending the socket wins over traffic, and
        //    outbound events over inbound frames.
        let wake = tokio::select! {
            biased;
            signal = signals.next() => Wake::Signal(signal),
            event = self.delivery.next_live() => Wake::Live(event),
            // In a block: only built into a timer when the branch is enabled and polled.
            () = async { tokio::time::sleep(CATCH_UP_RETRY).await }, if self.delivery.retries() => {
                Wake::Retry
            }
            inbound = self.socket.inner.next() => Wake::Inbound(inbound),
        };

        // 3. Decide and act; `Err` ends the socket with its close code.
        match wake {
            Wake::Signal(signal) => self.on_signal(signal).await,
            Wake::Live(event) => self.delivery.live(event, &mut self.socket).await,
            Wake::Retry => {
                self.delivery.subscribe().await;
                let redis_ok = self.delivery.redis_ok() && self.delivery.is_subscribed();
                self.delivery.resync(redis_ok, &mut self.socket).await
            }
            Wake::Inbound(Some(Ok(message))) => self.inbound(message).await,
            Wake::Inbound(Some(Err(err))) if is_oversize(&err) => {
                Err(End::Close(CloseCode::TooBig))
            }
            Wake::Inbound(Some(Err(_)) | None) => Err(End::Dropped),
        }
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), End> {
        match signal {
            Signal::Shutdown => Err(End::Close(CloseCode::Restart)),
            Signal::TokenExpired => Err(End::Close(CloseCode::TokenExpired)),
            Signal::Revoked(jti) if self.claims.jti.as_deref() == Some(jti.as_str()) => {
                Err(End::Close(CloseCode::TokenRevoked))
            }
            Signal::Revoked(_) => Ok(()),
            // Missed some (this socket lagged, or the subscriber connection came back):
            // check ours against Redis.
            Signal::RevocationsMissed => self.check_revoked().await,
            Signal::RedisChanged => {
                let ok = self.delivery.redis_ok();
                // On a Cluster, another master's trouble (or recovery) is not this socket's.
                // On one server every change is a transition of this socket's Redis, even
                // when it went and came back before the socket looked.
                if ok == self.redis_ok && self.shared.manager.config().is_cluster() {
                    return Ok(());
                }
                self.redis_ok = ok;
                if ok {
                    // Revocations announced while we were cut off were missed.
                    self.check_revoked().await?;
                    self.delivery.subscribe().await;
                    self.delivery.fall_behind();
                }
                self.delivery.resync(ok, &mut self.socket).await
            }
            // A peer that vanished (no FIN, no pong) would hold its slot for ever.
            Signal::PingDue
                if self.last_heard.elapsed() >= self.shared.config.budgets.idle_timeout =>
            {
                Err(End::Close(CloseCode::IdleTimeout))
            }
            Signal::PingDue => self.socket.write(Message::Ping(Default::default())).await,
        }
    }

    /// Ends the socket when its token is now known to be revoked.
    async fn check_revoked(&mut self) -> Result<(), End> {
        if self.revoked().await {
            return Err(End::Close(CloseCode::TokenRevoked));
        }
        Ok(())
    }

    /// True when the token is now known to be revoked. Boxed: rare.
    fn revoked(&self) -> BoxFuture<'static, bool> {
        let (shared, token) = (Arc::clone(&self.shared), self.token.clone());
        Box::pin(async move {
            matches!(
                shared.tokens.verify(&token).await,
                Err(Error::Token(TokenError::Revoked))
            )
        })
    }
}

/// The client side of the wire: writes are buffered and flushed together.
struct Socket<S> {
    inner: S,
    /// Frames written to the socket's buffer but not flushed yet.
    unflushed: bool,
    /// How long a write or flush may wait for the client before it counts as slow.
    budget: Duration,
}

impl<S: Transport> Socket<S> {
    /// Writes a frame into the socket's buffer (written out when it fills, or at the next
    /// flush). A client that does not take it within the budget is a slow consumer.
    async fn send(&mut self, text: Utf8Bytes) -> Result<(), End> {
        self.write(Message::Text(text)).await
    }

    async fn write(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.budget, self.inner.feed(message)).await {
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
        match tokio::time::timeout(self.budget, self.inner.flush()).await {
            Ok(Ok(())) => {
                self.unflushed = false;
                Ok(())
            }
            Ok(Err(_)) => Err(End::Dropped),
            Err(_) => Err(End::Close(CloseCode::SlowConsumer)),
        }
    }
}
