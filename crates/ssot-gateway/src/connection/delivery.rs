//! Event delivery of one socket: what the client has, what it still needs, and how it gets
//! it (replay from the stream, live events, status frames).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::future::BoxFuture;
use redis_ssot::UserScope;
use redis_ssot::stores::events::{
    Event, EventId, EventSubscription, EventsConfig, LiveEvent, LiveFrame, Replay,
};
use tokio::sync::Semaphore;

use super::signals::next_live;
use super::{End, Socket, Transport};
use crate::protocol::{self, CloseCode, codes};
use crate::state::{Budget, GatewayMetrics, Shared};

/// Events read from the stream per replay round trip.
const REPLAY_PAGE: usize = 256;
/// How often a socket that could not catch up retries while Redis is reachable again.
pub(super) const CATCH_UP_RETRY: Duration = Duration::from_millis(500);

/// Bytes a stored entry may take besides its data (id, field names, event name), with
/// room to spare.
const ENTRY_OVERHEAD: usize = 1024;

/// True when more events may follow `page`: it is full by count, or so close to the byte
/// budget of a page (see [`redis_ssot::stores::events::EventsConfig::replay_page_bytes`])
/// that the next entry may have been left out for its size. A page well under both limits
/// is the end of the stream.
fn may_continue(page: &[Event], events: &EventsConfig) -> bool {
    if page.is_empty() {
        return false;
    }
    let bytes: usize = page
        .iter()
        .map(|e| e.data.get().len() + e.name.len() + ENTRY_OVERHEAD)
        .sum();
    let largest_next = events.max_data_bytes + ENTRY_OVERHEAD;
    page.len() >= REPLAY_PAGE || bytes + largest_next > events.replay_page_bytes
}

/// Where the live events come from, and whether they can be sent as they arrive.
enum Feed {
    /// Not subscribed (the subscribe call failed): no live events arrive. Retried every
    /// [`CATCH_UP_RETRY`]; once subscribed, the socket is [`Feed::Behind`].
    Unsubscribed,
    /// Subscribed, but events before the next live one may be missing (a resume, a gap, a
    /// Redis outage): the stream is read first.
    Behind(EventSubscription),
    /// Subscribed and caught up: live events go out as they arrive.
    Live(EventSubscription),
}

/// Which events the client has.
#[derive(Clone, Copy)]
enum Position {
    /// Nothing sent, and the start is not known yet (Redis did not answer at connect).
    Unanchored,
    /// Nothing sent; delivery starts after this id, the newest event at connect time.
    Floor(EventId),
    /// The newest event id sent to (or acknowledged by) the client.
    Delivered(EventId),
}

/// The last status frame sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Told {
    Nothing,
    Ok,
    Degraded,
}

/// Delivery to one socket: subscribe, replay, then live — exactly once and in order.
///
/// ## Behavior
/// - An event is sent only if its id is above the last one sent, so overlaps between replay
///   and live never show twice.
/// - Without a resume id, delivery starts at the user's newest event at connect time.
/// - While [`Feed::Behind`] or [`Feed::Unsubscribed`], a live event (or a retry tick) makes
///   the socket read the stream from its position; `status: ok` is sent once it is caught
///   up, `degraded` while Redis fails.
pub(super) struct Delivery {
    shared: Arc<Shared>,
    scope: UserScope,
    feed: Feed,
    position: Position,
    told: Told,
    /// Replay slots of this socket's user (see [`Delivery::replay_page`]).
    user_replays: Arc<Semaphore>,
    /// How far behind the socket is; see [`Backlog`].
    backlog: Backlog,
}

/// Bytes sent to a socket since it last had nothing left to send: what it is behind by.
///
/// ## Behavior
/// - Counts event frames sent while the socket was live (or catching up after it was
///   live); a replay the client asked for (connect or `resume`) is history, not lag.
/// - Back to zero each time the socket has sent everything there is (its live queue is
///   empty, or a catch-up reached the end of the stream).
/// - Above `max-queued-bytes`, the socket is a slow consumer: it reads, but slower than
///   its events come, so it is closed with 4000 and resumes after reconnecting instead of
///   holding its backlog in the gateway (its live queue) for ever.
#[derive(Default)]
struct Backlog {
    /// False during a requested replay.
    counting: bool,
    bytes: usize,
}

impl Delivery {
    pub(super) fn new(
        shared: Arc<Shared>,
        scope: UserScope,
        after: Option<EventId>,
        user_replays: Arc<Semaphore>,
    ) -> Delivery {
        Delivery {
            shared,
            scope,
            feed: Feed::Unsubscribed,
            position: after.map_or(Position::Unanchored, Position::Delivered),
            told: Told::Nothing,
            user_replays,
            backlog: Backlog::default(),
        }
    }

    pub(super) fn scope(&self) -> &UserScope {
        &self.scope
    }

    /// Subscribes before reading history, so nothing falls in between. A socket without a
    /// resume id starts at the newest event now, and so is caught up at once.
    pub(super) async fn start(&mut self) {
        self.subscribe().await;
        if let Feed::Behind(_) = self.feed
            && let Position::Unanchored = self.position
        {
            self.fix_floor().await;
            if let Position::Floor(_) = self.position {
                self.caught_up();
            }
        }
    }

    /// Subscribes when not subscribed; the socket is then behind.
    pub(super) fn subscribe(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !matches!(self.feed, Feed::Unsubscribed) {
                return;
            }
            match self.shared.events.subscribe(&self.scope).await {
                Ok(sub) => self.feed = Feed::Behind(sub),
                Err(err) => tracing::warn!(cause = %err, "subscribe failed; retrying on recovery"),
            }
        })
    }

    /// True while Redis is usable for this socket's user (their shard on a Cluster).
    pub(super) fn redis_ok(&self) -> bool {
        self.shared.redis_ok_for(&self.scope)
    }

    pub(super) fn is_subscribed(&self) -> bool {
        !matches!(self.feed, Feed::Unsubscribed)
    }

    /// True while the socket must retry on its own: not subscribed, or not caught up.
    pub(super) fn retries(&self) -> bool {
        !matches!(self.feed, Feed::Live(_))
    }

    /// Events may be missing: read the stream before the next live event.
    pub(super) fn fall_behind(&mut self) {
        self.feed = match std::mem::replace(&mut self.feed, Feed::Unsubscribed) {
            Feed::Live(sub) => Feed::Behind(sub),
            other => other,
        };
    }

    /// Counts `bytes` sent; `Err` once the socket is more than the budget behind.
    fn fall_back_by(&mut self, bytes: usize) -> Result<(), End> {
        if !self.backlog.counting {
            return Ok(());
        }
        self.backlog.bytes += bytes;
        if self.backlog.bytes > self.shared.config.budgets.queued_bytes {
            GatewayMetrics::refused(Budget::QueuedBytes);
            return Err(End::Close(CloseCode::SlowConsumer));
        }
        Ok(())
    }

    /// Everything there is was sent: nothing is behind, and from now on lag counts.
    fn all_sent(&mut self) {
        self.backlog = Backlog {
            counting: true,
            bytes: 0,
        };
    }

    /// Behind → live: the stream was read to its end.
    fn caught_up(&mut self) {
        self.feed = match std::mem::replace(&mut self.feed, Feed::Unsubscribed) {
            Feed::Behind(sub) => Feed::Live(sub),
            other => other,
        };
        if let Feed::Live(_) = self.feed {
            self.all_sent();
        }
    }

    /// The client says it has everything up to `after`.
    pub(super) fn resume_after(&mut self, after: EventId) {
        self.position = Position::Delivered(after);
        self.backlog.counting = false;
        self.fall_behind();
    }

    /// The next live event or gap; never while not subscribed.
    pub(super) async fn next_live(&mut self) -> Option<LiveEvent> {
        let sub = match &mut self.feed {
            Feed::Unsubscribed => None,
            Feed::Behind(sub) | Feed::Live(sub) => Some(sub),
        };
        next_live(sub).await
    }

    /// Handles what the live subscription yielded.
    pub(super) async fn live<S: Transport>(
        &mut self,
        event: Option<LiveEvent>,
        socket: &mut Socket<S>,
    ) -> Result<(), End> {
        match event {
            Some(LiveEvent::Event(_)) if self.retries() => {
                // Older events may be missing: read them (this one included) from the
                // stream first; if that fails, the next catch-up will.
                let ok = self.catch_up(socket).await?;
                let redis_ok = self.redis_ok();
                self.tell_status(ok && redis_ok, socket).await
            }
            Some(LiveEvent::Event(frame)) => {
                self.deliver_live(&frame, socket).await?;
                // Take what else is already there before flushing.
                while let Feed::Live(sub) = &mut self.feed {
                    match sub.try_recv() {
                        Some(LiveEvent::Event(frame)) => self.deliver_live(&frame, socket).await?,
                        Some(LiveEvent::Gap) => self.fall_behind(),
                        None => {
                            self.all_sent();
                            break;
                        }
                    }
                }
                Ok(())
            }
            Some(LiveEvent::Gap) => {
                self.fall_behind();
                let redis_ok = self.redis_ok();
                self.resync(redis_ok, socket).await
            }
            None => Err(End::Close(CloseCode::Restart)),
        }
    }

    /// Starts delivery at the newest stored event, if Redis answers.
    fn fix_floor(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Position::Unanchored = self.position
                && let Ok(tail) = self.shared.events.last_id(&self.scope).await
            {
                self.position = Position::Floor(tail);
            }
        })
    }

    /// Catches up when `redis_ok` (Redis is usable), then tells the client whether it is
    /// caught up (`ok`) or not (`degraded`).
    pub(super) fn resync<'a, S: Transport>(
        &'a mut self,
        redis_ok: bool,
        socket: &'a mut Socket<S>,
    ) -> BoxFuture<'a, Result<(), End>> {
        Box::pin(async move {
            let ok = redis_ok && self.catch_up(socket).await?;
            self.tell_status(ok, socket).await
        })
    }

    /// Replays everything after the client's position. `Ok(false)` when Redis failed (the
    /// next catch-up retries) or live events cannot arrive yet; `Err` when the client
    /// failed: one that does not take the replay in time is a slow consumer like any
    /// other, closed with 4000 to resume later.
    ///
    /// Boxed, like the other rare paths: an async fn's state is as large as its largest
    /// await, and an idle socket should not carry the space of a replay it is not running.
    fn catch_up<'a, S: Transport>(
        &'a mut self,
        socket: &'a mut Socket<S>,
    ) -> BoxFuture<'a, Result<bool, End>> {
        Box::pin(self.catch_up_now(socket))
    }

    async fn catch_up_now<S: Transport>(&mut self, socket: &mut Socket<S>) -> Result<bool, End> {
        if let Feed::Live(_) = self.feed {
            return Ok(true);
        }
        let mut cursor = match self.position {
            Position::Delivered(id) | Position::Floor(id) => id,
            Position::Unanchored => {
                // Nothing delivered and no floor yet: start from the newest event now.
                self.fix_floor().await;
                if let Position::Unanchored = self.position {
                    return Ok(false);
                }
                self.caught_up();
                return Ok(self.is_subscribed());
            }
        };
        let mut told_truncated = false;
        loop {
            let page = match self.replay_page(cursor).await? {
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
                socket.send(frame.into()).await?;
            }
            let more = may_continue(&page.events, &self.shared.config.events);
            // Each event is dropped once sent: a page is not held longer than needed.
            for event in page.events {
                cursor = event.id;
                self.shared.metrics.replayed.increment(1);
                self.deliver(event, socket).await?;
            }
            if !more {
                self.caught_up();
                return Ok(self.is_subscribed());
            }
        }
    }

    /// Reads one page after `cursor` once the user and the process have a replay slot free:
    /// one user's many sockets cannot run hundreds of page reads at once. The slots are
    /// held for the read only, not while the page is sent. A socket that waits longer than
    /// `replay-wait-ms` is closed with 4001: the client reconnects later and resumes.
    async fn replay_page(&self, cursor: EventId) -> Result<redis_ssot::Result<Replay>, End> {
        let slots = async {
            let user = Arc::clone(&self.user_replays).acquire_owned().await;
            let process = Arc::clone(&self.shared.replays).acquire_owned().await;
            (user, process)
        };
        let wait = self.shared.config.budgets.replay_wait;
        let _slots = match tokio::time::timeout(wait, slots).await {
            Ok((Ok(user), Ok(process))) => (user, process),
            // The semaphores are never closed while the gateway runs.
            Ok(_) => return Err(End::Close(CloseCode::Restart)),
            Err(_) => {
                GatewayMetrics::refused(Budget::Replays);
                return Err(End::Close(CloseCode::ReplayBusy));
            }
        };
        Ok(self
            .shared
            .events
            .replay_after(&self.scope, cursor, REPLAY_PAGE)
            .await)
    }

    /// Sends a replayed event unless the client already has it.
    async fn deliver<S: Transport>(
        &mut self,
        event: Event,
        socket: &mut Socket<S>,
    ) -> Result<(), End> {
        if self.has(event.id) {
            return Ok(());
        }
        let id = event.id;
        let json = event.to_json();
        drop(event);
        let bytes = json.len();
        socket.send(json.into()).await?;
        self.position = Position::Delivered(id);
        self.shared.metrics.delivered.increment(1);
        self.fall_back_by(bytes)
    }

    /// Sends a live event unless the client already has it. The frame is the announced
    /// JSON itself, shared with the user's other sockets: no decoding, no copy.
    async fn deliver_live<S: Transport>(
        &mut self,
        frame: &LiveFrame,
        socket: &mut Socket<S>,
    ) -> Result<(), End> {
        if self.has(frame.id()) {
            return Ok(());
        }
        let Ok(text) = Utf8Bytes::try_from(frame.json().clone()) else {
            // Not what `append` publishes: read it from the stream instead.
            self.fall_behind();
            return Ok(());
        };
        let bytes = text.len();
        socket.send(text).await?;
        self.position = Position::Delivered(frame.id());
        self.shared.metrics.delivered.increment(1);
        self.fall_back_by(bytes)
    }

    fn has(&self, id: EventId) -> bool {
        matches!(self.position, Position::Delivered(last) if id <= last)
    }

    /// Sends `status` when it differs from the last one told.
    pub(super) async fn tell_status<S: Transport>(
        &mut self,
        ok: bool,
        socket: &mut Socket<S>,
    ) -> Result<(), End> {
        let now = if ok { Told::Ok } else { Told::Degraded };
        if self.told != now {
            socket.send(protocol::status_frame(ok).into()).await?;
            self.told = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, data_bytes: usize) -> Event {
        let data = format!("\"{}\"", "x".repeat(data_bytes.saturating_sub(2)));
        Event {
            id: EventId { ms: 1, seq },
            name: "e".to_owned(),
            data: serde_json::value::RawValue::from_string(data).unwrap(),
        }
    }

    #[test]
    fn a_page_cut_by_bytes_is_not_the_end() {
        let events = EventsConfig::default();
        assert!(!may_continue(&[], &events));
        let small: Vec<Event> = (0..3).map(|n| event(n, 100)).collect();
        assert!(!may_continue(&small, &events), "well under both limits");
        let full: Vec<Event> = (0..REPLAY_PAGE as u64).map(|n| event(n, 10)).collect();
        assert!(may_continue(&full, &events), "full by count");
        // 60 KB events: the byte budget (256 KiB) cuts the page after a few.
        let big: Vec<Event> = (0..4).map(|n| event(n, 60 * 1024)).collect();
        assert!(may_continue(&big, &events), "cut by bytes");
    }
}
