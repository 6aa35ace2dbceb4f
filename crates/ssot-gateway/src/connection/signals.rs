//! What wakes a socket besides its own traffic: shutdown, its token's expiry, revocations
//! and Redis going away or coming back (anywhere: each socket then looks at its own shard). Plus the small pieces the loop reads with.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis_ssot::stores::events::{EventSubscription, LiveEvent};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Sleep};

/// One process-wide signal, as seen by one socket.
pub(super) enum Signal {
    /// The gateway is shutting down (or its shutdown or Redis watch is gone).
    Shutdown,
    /// The socket's token reached its `exp`.
    TokenExpired,
    /// A token id was revoked (anywhere).
    Revoked(String),
    /// Some revocations were not seen: the socket must check its own token.
    RevocationsMissed,
    /// Redis changed somewhere: the process-wide state, or (on a Cluster) some master's
    /// breaker. The socket checks its own failure domain.
    RedisChanged,
    /// Time to ping the client (and to see whether it went quiet).
    PingDue,
}

type Changed<T> = BoxFuture<'static, (Result<(), watch::error::RecvError>, watch::Receiver<T>)>;
type Revoked = BoxFuture<
    'static,
    (
        Result<String, broadcast::error::RecvError>,
        broadcast::Receiver<String>,
    ),
>;

/// The process-wide signals of one socket.
///
/// ## Behavior
/// - Each signal is a future armed once and re-armed only when it fires: re-creating them
///   on every wake-up would take their shared waiter locks twice per event per socket.
/// - [`Signals::next`] is cancel-safe: a signal that did not fire stays armed.
/// - Polled in a fixed order: shutdown, expiry, revocations (announced, then missed),
///   Redis status, ping.
pub(super) struct Signals {
    shutdown: Changed<bool>,
    ping: Pin<Box<Sleep>>,
    ping_interval: Duration,
    expiry: Pin<Box<Sleep>>,
    /// `None` once the revocation channel closed (no more announcements can come).
    revocation: Option<Revoked>,
    /// Gaps on the revocation channel; `None` once the verifier is gone.
    resync: Option<Changed<u64>>,
    status: Changed<u64>,
}

impl Signals {
    /// Arms the signals; changes already seen by the receivers do not fire again.
    pub(super) fn new(
        exp: u64,
        ping_interval: Duration,
        shutdown: watch::Receiver<bool>,
        redis_changes: watch::Receiver<u64>,
        revocations: broadcast::Receiver<String>,
        resyncs: watch::Receiver<u64>,
    ) -> Signals {
        Signals {
            shutdown: Box::pin(next_change(shutdown)),
            ping: Box::pin(tokio::time::sleep(ping_interval)),
            ping_interval,
            expiry: Box::pin(tokio::time::sleep_until(expiry_instant(exp))),
            revocation: Some(Box::pin(next_revocation(revocations))),
            resync: Some(Box::pin(next_change(resyncs))),
            status: Box::pin(next_change(redis_changes)),
        }
    }

    /// The next signal that fires.
    pub(super) fn next(&mut self) -> impl Future<Output = Signal> + Send + '_ {
        std::future::poll_fn(move |cx| {
            if self.shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Signal::Shutdown);
            }
            if self.expiry.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Signal::TokenExpired);
            }
            if let Some(revocation) = &mut self.revocation
                && let Poll::Ready((revoked, rx)) = revocation.as_mut().poll(cx)
            {
                match revoked {
                    Ok(jti) => {
                        self.revocation = Some(Box::pin(next_revocation(rx)));
                        return Poll::Ready(Signal::Revoked(jti));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.revocation = Some(Box::pin(next_revocation(rx)));
                        return Poll::Ready(Signal::RevocationsMissed);
                    }
                    Err(broadcast::error::RecvError::Closed) => self.revocation = None,
                }
            }
            if let Some(resync) = &mut self.resync
                && let Poll::Ready((changed, rx)) = resync.as_mut().poll(cx)
            {
                if changed.is_err() {
                    self.resync = None;
                } else {
                    self.resync = Some(Box::pin(next_change(rx)));
                    return Poll::Ready(Signal::RevocationsMissed);
                }
            }
            if let Poll::Ready((changed, mut rx)) = self.status.as_mut().poll(cx) {
                if changed.is_err() {
                    return Poll::Ready(Signal::Shutdown);
                }
                rx.borrow_and_update();
                self.status = Box::pin(next_change(rx));
                return Poll::Ready(Signal::RedisChanged);
            }
            if self.ping.as_mut().poll(cx).is_ready() {
                let next = Instant::now() + self.ping_interval;
                self.ping.as_mut().reset(next);
                return Poll::Ready(Signal::PingDue);
            }
            Poll::Pending
        })
    }
}

/// The next change of a watched value, handing the receiver back to be re-armed.
async fn next_change<T: Send + Sync>(
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

/// The next live event; never, while there is no subscription.
pub(super) async fn next_live(live: Option<&mut EventSubscription>) -> Option<LiveEvent> {
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
pub(super) fn is_oversize(err: &impl std::fmt::Display) -> bool {
    err.to_string().starts_with("Space limit exceeded")
}

/// The instant a token expiring at `exp` (Unix seconds) runs out.
fn expiry_instant(exp: u64) -> Instant {
    let now_unix = redis_ssot::clock::since_epoch().as_secs_f64();
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
