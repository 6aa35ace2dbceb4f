//! Local subscriptions over the manager's one subscriber connection.
//!
//! ## Behavior
//! - Every local [`Subscription`] of a channel shares one Redis `SUBSCRIBE`; the first local
//!   subscriber subscribes, the last one to drop unsubscribes.
//! - `subscribe` returns once Redis confirmed the subscription (when the connection is up),
//!   so a caller may then read history without a window where messages fall between.
//! - After the subscriber connection comes back, every channel is subscribed again and each
//!   subscription receives [`SubscriptionEvent::Gap`] after the confirmation: messages
//!   published while it was down are lost to Pub/Sub and must be read from durable storage.
//! - A subscription that does not keep up loses messages and also gets a `Gap`, instead of
//!   growing memory without bound.
//! - Sharded channels (per-user event channels, [`crate::RedisManager::subscribe_sharded`])
//!   use `SSUBSCRIBE` on a Cluster: the cluster client holds one subscriber connection per
//!   master and subscribes each channel on the master owning its slot. When a slot moves
//!   (resharding, failover), Redis sends `sunsubscribe`: the channel is subscribed again,
//!   now on its new owner, and its subscriptions get a `Gap` once that is confirmed. On one
//!   server they are ordinary channels.
//! - On a Cluster, one node's disconnection takes the subscriber link down: it reconnects
//!   as a fresh cluster connection, subscribes every channel again and gives every
//!   subscription a `Gap`. (Left to the cluster client, which repairs the node in place, the
//!   sharded subscriptions of every master were seen to stop delivering after a few node
//!   faults under traffic, without a `Gap`: `bench/chaos`, issue 12.) The stale-channel
//!   recovery below stays for `sunsubscribe` (a moved slot).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use crate::domains::slot_of_key;
use crate::error::Result;
use crate::link::{Conn, Link, OnConnect};

/// Messages buffered per subscription before it counts as lagging.
const SUBSCRIPTION_BUFFER: usize = 1024;
/// Rounds of resubscribing channels after a node fault or a slot move, and the base of the
/// pause before each (growing linearly: about 10 s in all, beyond a Cluster failover).
const RECOVER_ATTEMPTS: u32 = 12;
const RECOVER_PAUSE: std::time::Duration = std::time::Duration::from_millis(150);

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// A message published on the channel, shared (not copied) by every local subscription.
    Message(Bytes),
    /// Messages may have been missed (reconnect or lag); catch up from durable storage.
    Gap,
}

struct Local {
    id: u64,
    tx: mpsc::Sender<SubscriptionEvent>,
    lagged: Arc<AtomicBool>,
}

/// The local subscriptions of one channel.
#[derive(Default)]
struct Channel {
    /// `SSUBSCRIBE`d (a Cluster's per-user channel) rather than `SUBSCRIBE`d.
    sharded: bool,
    /// Its subscription on Redis may have lapsed: the next confirmation brings a `Gap`.
    stale: bool,
    locals: Vec<Local>,
}

/// Routes pushes of the subscriber connection to local subscriptions.
#[derive(Default)]
pub(crate) struct Dispatcher {
    channels: Mutex<HashMap<String, Channel>>,
    next_id: AtomicU64,
    /// Serialises SUBSCRIBE / UNSUBSCRIBE so an unsubscribe never overtakes a newer subscribe.
    control: tokio::sync::Mutex<()>,
    /// A task resubscribes stale channels.
    recovering: AtomicBool,
}

impl Dispatcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers pushes until the sender side is gone.
    pub(crate) async fn run(
        self: Arc<Self>,
        link: Arc<Link>,
        mut rx: mpsc::UnboundedReceiver<PushInfo>,
    ) {
        while let Some(push) = rx.recv().await {
            let kind = push.kind;
            if kind == PushKind::Disconnection {
                // Only a cluster link forwards these: one node went away, and what it
                // delivered may be lost. Its channels are subscribed again (on the node or on
                // the replica that replaces it); the node is not named, so every channel is.
                for channel in self.lock().values_mut() {
                    channel.stale = true;
                }
                Arc::clone(&self).recover(&link);
                continue;
            }
            let mut data = push.data.into_iter();
            let Some(name) = data.next() else { continue };
            let Some(name) = as_bytes(&name).and_then(|n| std::str::from_utf8(n).ok()) else {
                continue;
            };
            match kind {
                PushKind::Message | PushKind::SMessage => {
                    let Some(payload) = data.next().and_then(into_bytes) else {
                        continue;
                    };
                    if let Some(channel) = self.lock().get(name) {
                        for local in &channel.locals {
                            offer(local, SubscriptionEvent::Message(payload.clone()));
                        }
                    }
                }
                PushKind::Subscribe | PushKind::SSubscribe => {
                    if let Some(channel) = self.lock().get_mut(name)
                        && std::mem::take(&mut channel.stale)
                    {
                        for local in &channel.locals {
                            offer(local, SubscriptionEvent::Gap);
                        }
                    }
                }
                PushKind::SUnsubscribe => {
                    // Still wanted here, so Redis dropped it: its slot moved. Follow it.
                    if let Some(channel) = self.lock().get_mut(name) {
                        channel.stale = true;
                    }
                    Arc::clone(&self).recover(&link);
                }
                _ => {}
            }
        }
    }

    /// Starts subscribing the stale channels again, unless that already runs.
    fn recover(self: Arc<Self>, link: &Arc<Link>) {
        if !self.recovering.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.resubscribe_stale(Arc::clone(link)));
        }
    }

    /// Subscribes every stale channel again until each is confirmed (the confirmation brings
    /// its `Gap`), retrying while the cluster client learns where the slots went.
    async fn resubscribe_stale(self: Arc<Self>, link: Arc<Link>) {
        for attempt in 0..RECOVER_ATTEMPTS {
            tokio::time::sleep(RECOVER_PAUSE * (attempt + 1)).await;
            let _control = self.control.lock().await;
            let (sharded, classic) = self.partition(|channel| channel.stale);
            if sharded.is_empty() && classic.is_empty() {
                self.recovering.store(false, Ordering::Release);
                return;
            }
            let Ok((_, mut conn)) = link.get() else {
                continue; // the reconnect hook resubscribes everything
            };
            if let Err(err) = subscribe_all(&mut conn, sharded, classic).await {
                tracing::debug!(cause = %err, attempt, "resubscribing after a node fault failed");
            }
        }
        self.recovering.store(false, Ordering::Release);
        tracing::warn!("could not resubscribe every channel; their subscriptions get a gap");
        for channel in self.lock().values_mut().filter(|c| c.stale) {
            for local in &channel.locals {
                offer(local, SubscriptionEvent::Gap);
            }
        }
    }

    /// The names of the channels that `pick` selects: (sharded, classic).
    fn partition(&self, pick: impl Fn(&Channel) -> bool) -> (Vec<String>, Vec<String>) {
        let (sharded, classic): (Vec<_>, Vec<_>) = self
            .lock()
            .iter()
            .filter(|(_, channel)| pick(channel))
            .map(|(name, channel)| (name.clone(), channel.sharded))
            .partition(|(_, sharded)| *sharded);
        let names = |list: Vec<(String, bool)>| list.into_iter().map(|(name, _)| name).collect();
        (names(sharded), names(classic))
    }

    /// The subscriber role's hook: resubscribe everything, then tell everyone about the gap.
    pub(crate) fn on_connect(self: &Arc<Self>) -> OnConnect {
        let this = Arc::clone(self);
        Arc::new(move |mut conn: Conn| {
            let this = Arc::clone(&this);
            Box::pin(async move {
                let _control = this.control.lock().await;
                let (sharded, classic) = this.partition(|_| true);
                subscribe_all(&mut conn, sharded, classic).await?;
                for channel in this.lock().values_mut() {
                    channel.stale = false;
                    for local in &channel.locals {
                        offer(local, SubscriptionEvent::Gap);
                    }
                }
                Ok(())
            })
        })
    }

    /// Subscribes `channel`, with `SSUBSCRIBE` when `sharded` (only on a Cluster).
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        link: &Arc<Link>,
        channel: &str,
        sharded: bool,
    ) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _control = self.control.lock().await;
        let first = {
            let mut locals = self.lock();
            let entry = locals.entry(channel.to_owned()).or_default();
            entry.sharded = sharded;
            entry.locals.push(Local {
                id,
                tx,
                lagged: Arc::clone(&lagged),
            });
            entry.locals.len() == 1
        };
        let subscription = Subscription {
            rx,
            lagged,
            guard: Guard {
                dispatcher: Arc::clone(self),
                link: Arc::clone(link),
                channel: channel.to_owned(),
                id,
            },
        };
        if first {
            // Down: the reconnect hook subscribes it and sends the Gap.
            let channels = [channel.to_owned()];
            if let Ok((epoch, mut conn)) = link.get()
                && let Err(err) = match sharded {
                    true => conn.ssubscribe(&channels).await,
                    false => conn.subscribe(&channels).await,
                }
            {
                link.observe_error(epoch, &err);
                return Err(err.into());
            }
        }
        Ok(subscription)
    }

    fn remove(self: &Arc<Self>, link: &Arc<Link>, channel: &str, id: u64) {
        let sharded = {
            let mut locals = self.lock();
            let Some(entry) = locals.get_mut(channel) else {
                return;
            };
            entry.locals.retain(|l| l.id != id);
            if !entry.locals.is_empty() {
                return;
            }
            let sharded = entry.sharded;
            locals.remove(channel);
            sharded
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = Arc::clone(self);
        let link = Arc::clone(link);
        let channel = channel.to_owned();
        handle.spawn(async move {
            let _control = this.control.lock().await;
            if this.lock().contains_key(&channel) {
                return; // subscribed again meanwhile
            }
            let channels = [channel];
            if let Ok((epoch, mut conn)) = link.get()
                && let Err(err) = match sharded {
                    true => conn.sunsubscribe(&channels).await,
                    false => conn.unsubscribe(&channels).await,
                }
            {
                link.observe_error(epoch, &err);
            }
        });
    }

    /// Channels with at least one local subscriber.
    pub(crate) fn channel_count(&self) -> usize {
        self.lock().len()
    }
}

/// Subscribes `classic` channels, then `sharded` ones one slot at a time (an `SSUBSCRIBE`
/// naming channels of several slots is a CROSSSLOT error); fails with the last error.
async fn subscribe_all(
    conn: &mut Conn,
    sharded: Vec<String>,
    classic: Vec<String>,
) -> redis::RedisResult<()> {
    if !classic.is_empty() {
        conn.subscribe(&classic).await?;
    }
    let mut by_slot: HashMap<u16, Vec<String>> = HashMap::new();
    for name in sharded {
        by_slot
            .entry(slot_of_key(name.as_bytes()))
            .or_default()
            .push(name);
    }
    // Every slot gets its chance: one unreachable master must not hold the others back.
    let mut outcome = Ok(());
    for group in by_slot.into_values() {
        if let Err(err) = conn.ssubscribe(&group).await {
            outcome = Err(err);
        }
    }
    outcome
}

fn offer(local: &Local, event: SubscriptionEvent) {
    if local.tx.try_send(event).is_err() {
        local.lagged.store(true, Ordering::Release);
    }
}

fn into_bytes(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

fn as_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

struct Guard {
    dispatcher: Arc<Dispatcher>,
    link: Arc<Link>,
    channel: String,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.dispatcher.remove(&self.link, &self.channel, self.id);
    }
}

/// One local subscription to a channel; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<SubscriptionEvent>,
    lagged: Arc<AtomicBool>,
    guard: Guard,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.guard.channel)
            .finish()
    }
}

impl Subscription {
    /// The next event; `None` once the manager is gone.
    pub async fn recv(&mut self) -> Option<SubscriptionEvent> {
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Some(SubscriptionEvent::Gap);
        }
        self.rx.recv().await
    }

    /// The next event if one is already buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<SubscriptionEvent> {
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Some(SubscriptionEvent::Gap);
        }
        self.rx.try_recv().ok()
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.guard.channel
    }
}
