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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::link::{Conn, Link, OnConnect};

/// Messages buffered per subscription before it counts as lagging.
const SUBSCRIPTION_BUFFER: usize = 1024;

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

/// Routes pushes of the subscriber connection to local subscriptions.
#[derive(Default)]
pub(crate) struct Dispatcher {
    channels: Mutex<HashMap<String, Vec<Local>>>,
    next_id: AtomicU64,
    /// Serialises SUBSCRIBE / UNSUBSCRIBE so an unsubscribe never overtakes a newer subscribe.
    control: tokio::sync::Mutex<()>,
}

impl Dispatcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Local>>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers pushes until the sender side is gone.
    pub(crate) async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<PushInfo>) {
        while let Some(push) = rx.recv().await {
            if push.kind != PushKind::Message {
                continue;
            }
            let mut data = push.data.into_iter();
            let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                continue;
            };
            let (Some(channel), Some(payload)) = (as_bytes(&channel), into_bytes(payload)) else {
                continue;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                continue;
            };
            let locals = self.lock();
            if let Some(list) = locals.get(channel) {
                for local in list {
                    offer(local, SubscriptionEvent::Message(payload.clone()));
                }
            }
        }
    }

    /// The subscriber role's hook: resubscribe everything, then tell everyone about the gap.
    pub(crate) fn on_connect(self: &Arc<Self>) -> OnConnect {
        let this = Arc::clone(self);
        Arc::new(move |mut conn: Conn| {
            let this = Arc::clone(&this);
            Box::pin(async move {
                let _control = this.control.lock().await;
                let channels: Vec<String> = this.lock().keys().cloned().collect();
                if !channels.is_empty() {
                    conn.subscribe(&channels).await?;
                }
                for list in this.lock().values() {
                    for local in list {
                        offer(local, SubscriptionEvent::Gap);
                    }
                }
                Ok(())
            })
        })
    }

    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        link: &Arc<Link>,
        channel: &str,
    ) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _control = self.control.lock().await;
        let first = {
            let mut locals = self.lock();
            let list = locals.entry(channel.to_owned()).or_default();
            list.push(Local {
                id,
                tx,
                lagged: Arc::clone(&lagged),
            });
            list.len() == 1
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
            if let Ok((epoch, mut conn)) = link.get()
                && let Err(err) = conn.subscribe(&[channel.to_owned()]).await
            {
                link.observe_error(epoch, &err);
                return Err(err.into());
            }
        }
        Ok(subscription)
    }

    fn remove(self: &Arc<Self>, link: &Arc<Link>, channel: &str, id: u64) {
        let now_empty = {
            let mut locals = self.lock();
            let Some(list) = locals.get_mut(channel) else {
                return;
            };
            list.retain(|l| l.id != id);
            if list.is_empty() {
                locals.remove(channel);
                true
            } else {
                false
            }
        };
        if !now_empty {
            return;
        }
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
            if let Ok((epoch, mut conn)) = link.get()
                && let Err(err) = conn.unsubscribe(&[channel]).await
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
