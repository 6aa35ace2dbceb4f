//! Per-user ordered event log with live notification.
//!
//! ## Behavior
//! - One stream per user, `ssot:{u:<id>}:events`; its name is also the live channel.
//! - [`Events::append`] adds the event and publishes it in one script, so an event that was
//!   stored was also announced, and ids are assigned by Redis in order. On a Cluster the
//!   announcement is `SPUBLISH`ed and followed with `SSUBSCRIBE`, so it stays on the user's
//!   shard. With `min_replicas_acked` set, an append returns only after that many replicas
//!   acknowledged it (`WAIT`), else [`Error::NotReplicated`].
//! - [`Events::append_idempotent`] appends at most once per [`IdempotencyKey`] within a
//!   window (24 h by default): a retry of a publish whose response was lost returns the first
//!   id; the same key with other content is [`Error::IdempotencyConflict`]. The marker,
//!   `ssot:{u:<id>}:publish-once:<hex of the key>`, sits in the user's slot and is checked and
//!   written by the append script itself.
//! - Retention: at most `max_len` events (approximate trim) and no older than `max_age`;
//!   an idle stream expires after twice `max_age`.
//! - [`Events::replay_after`] returns the events after an id, in order, and says whether the
//!   id is older than what is retained (events may have been trimmed in between) instead of
//!   leaving a silent gap.
//! - [`Events::subscribe`] follows live events over the manager's shared subscriber
//!   connection; after a reconnect or lag it yields [`LiveEvent::Gap`] so the caller replays.
//! - The live notification is the event's JSON object ([`Event::to_json`]), built once by
//!   the append script and shared, not copied, between the subscriptions of a process: a
//!   gateway forwards it to every socket of the user as it is. A notification in any other
//!   form (an older writer during a rolling upgrade) is a [`LiveEvent::Gap`], so readers
//!   replay from the stream instead of missing it.

mod id;
mod live;

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::keys::{UserScope, check_name, family};
use crate::manager::RedisManager;
use crate::stores::lua::lua;

/// Default number of events kept per user.
pub const DEFAULT_MAX_LEN: u64 = 10_000;
/// Default age after which events are trimmed.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default largest `data` payload.
pub const DEFAULT_MAX_DATA_BYTES: usize = 64 * 1024;
/// Default `WAIT` timeout of acknowledged appends.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default byte budget of one replay page.
pub const DEFAULT_REPLAY_PAGE_BYTES: usize = 256 * 1024;
/// Default time an idempotency key is remembered ([`Events::append_idempotent`]).
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub use self::id::EventId;
pub use self::live::{EventSubscription, LiveEvent, LiveFrame};

/// One stored event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its id, unique and ordered within the user's log.
    pub id: EventId,
    /// Its name (`agent_started`, `message`...).
    pub name: String,
    /// Its JSON payload, as stored.
    pub data: Box<RawValue>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.name == other.name && self.data.get() == other.data.get()
    }
}

/// The result of a replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Events after the requested id, in order (at most the requested count).
    pub events: Vec<Event>,
    /// True when events after the requested id may have been trimmed by retention.
    pub truncated: bool,
}

/// The start of every event's JSON object; the id follows, then `"`.
const JSON_PREFIX: &str = "{\"type\":\"event\",\"id\":\"";

impl Event {
    /// The event as one JSON object: `{"type":"event","id":"<id>","event":"<name>","data":<data>}`
    /// with `data` as stored. Live notifications carry exactly this text.
    pub fn to_json(&self) -> String {
        let name = json_string(&self.name);
        let data = self.data.get();
        let mut json = String::with_capacity(JSON_PREFIX.len() + 48 + name.len() + data.len());
        json.push_str(JSON_PREFIX);
        json.push_str(&self.id.to_string());
        json.push_str("\",\"event\":");
        json.push_str(&name);
        json.push_str(",\"data\":");
        json.push_str(data);
        json.push('}');
        json
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Settings of the event log.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Events kept per user (approximate).
    pub max_len: u64,
    /// Events older than this are trimmed.
    pub max_age: Duration,
    /// Largest `data` payload in bytes.
    pub max_data_bytes: usize,
    /// Byte budget of one replay page (ids, names and data of its entries): a page stops
    /// before the entry that would exceed it, and always holds at least one entry. Keeps one
    /// replay script short, so Redis's single thread is never held for long.
    pub replay_page_bytes: usize,
    /// Replicas that must acknowledge an append before it returns (`WAIT`); 0 (the
    /// default) returns once the master stored it. Opt-in durability across a failover:
    /// Redis replicates asynchronously, so without it an event acknowledged just before the
    /// master dies can be lost when its replica is promoted.
    pub min_replicas_acked: u32,
    /// How long an append waits for those acknowledgements before failing with
    /// [`Error::NotReplicated`].
    pub wait_timeout: Duration,
    /// How long [`Events::append_idempotent`] remembers a key: a repeat within it returns the
    /// first append's id and adds nothing.
    pub idempotency_window: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_len: DEFAULT_MAX_LEN,
            max_age: DEFAULT_MAX_AGE,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
            replay_page_bytes: DEFAULT_REPLAY_PAGE_BYTES,
            min_replicas_acked: 0,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
        }
    }
}

/// The per-user event log.
#[derive(Clone, Debug)]
pub struct Events {
    manager: RedisManager,
    config: EventsConfig,
}

/// A client-chosen key that makes an append happen at most once
/// ([`Events::append_idempotent`]): 1 to 128 visible ASCII characters (`!` to `~`), as in the
/// `Idempotency-Key` HTTP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted, in characters.
    pub const MAX_LEN: usize = 128;

    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<IdempotencyKey> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "idempotency key",
                format!("must be 1-{} characters, got {}", Self::MAX_LEN, raw.len()),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(Error::invalid(
                "idempotency key",
                format!("character {bad:?} not allowed; use visible ASCII (! to ~)"),
            ));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as a Redis key name: hex, so that no character of it (`{`, `}`, `*`) can
    /// change the key's hash slot or meaning. 128 characters give 256, the name limit.
    fn name(&self) -> String {
        self.0.bytes().map(|b| format!("{b:02x}")).collect()
    }
}

/// The result of [`Events::append_once`] and [`Events::append_idempotent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The event's id (the earlier one when it was a duplicate).
    pub id: EventId,
    /// True when this (group, sequence), or this idempotency key with the same event, had
    /// been appended before; nothing was added.
    pub duplicate: bool,
}

/// The append script (`lua/events_append.lua`): KEYS[1] stream (= channel), optional
/// KEYS[2] the marker of an append made once (per group and sequence, or per idempotency
/// key); returns {id, 0 | 1 repeat | 2 key used with another event}.
static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("events_append")));
/// The replay script (`lua/events_replay.lua`): a page bounded in count and bytes.
static REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("events_replay")));

type RawEntry = (String, Vec<(String, String)>);

impl Events {
    /// The event log with default retention.
    pub fn new(manager: RedisManager) -> Events {
        Events::with_config(manager, EventsConfig::default())
    }

    /// The event log with the given retention.
    pub fn with_config(manager: RedisManager, config: EventsConfig) -> Events {
        Events { manager, config }
    }

    /// Settings in force.
    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    /// Stores an event for the user and announces it; returns its id once stored.
    pub async fn append(&self, scope: &UserScope, name: &str, data: &RawValue) -> Result<EventId> {
        self.check_event(name, data)?;
        let (id, _duplicate) = self
            .write(&self.append_call(scope, None, name, data))
            .await?;
        id.parse()
    }

    /// Like [`Events::append`], but at most once per `(group, sequence)`: a producer that
    /// runs again after a crash (an agent job reclaimed by another worker) re-emits its
    /// events harmlessly, and the user sees each once. The marker lives as long as events do.
    pub async fn append_once(
        &self,
        scope: &UserScope,
        name: &str,
        data: &RawValue,
        group: &str,
        sequence: u64,
    ) -> Result<Appended> {
        self.check_event(name, data)?;
        let marker = scope.named_key(family::EVENTS_ONCE, group)?;
        let mut call = self.append_call(scope, Some(marker), name, data);
        call.arg("sequence").arg(sequence);
        let (id, duplicate) = self.write(&call).await?;
        Ok(Appended {
            id: id.parse()?,
            duplicate: duplicate == 1,
        })
    }

    /// Like [`Events::append`], but at most once per idempotency key within
    /// [`EventsConfig::idempotency_window`]: a publisher that retries after a timeout (the
    /// first call may have stored the event) gets the first id back and the user sees the
    /// event once. Check and append are one script, so concurrent retries store one event.
    /// The same key with another event name or data is [`Error::IdempotencyConflict`].
    pub async fn append_idempotent(
        &self,
        scope: &UserScope,
        name: &str,
        data: &RawValue,
        key: &IdempotencyKey,
    ) -> Result<Appended> {
        self.check_event(name, data)?;
        let marker = scope.named_key(family::PUBLISH_ONCE, &key.name())?;
        let mut call = self.append_call(scope, Some(marker), name, data);
        call.arg("key")
            .arg(self.config.idempotency_window.as_millis().max(1) as u64);
        let (id, outcome) = self.write(&call).await?;
        let id: EventId = id.parse()?;
        match outcome {
            2 => Err(Error::IdempotencyConflict {
                key: key.as_str().to_owned(),
                first: id.to_string(),
            }),
            _ => Ok(Appended {
                id,
                duplicate: outcome == 1,
            }),
        }
    }

    /// The append script's call for one event; `marker` is the KEYS[2] of an append made
    /// once, whose kind and arguments the caller adds.
    fn append_call(
        &self,
        scope: &UserScope,
        marker: Option<String>,
        name: &str,
        data: &RawValue,
    ) -> redis::ScriptInvocation<'static> {
        let mut call = APPEND.prepare_invoke();
        call.key(scope.key(family::EVENTS));
        if let Some(marker) = marker {
            call.key(marker);
        }
        call.arg(self.config.max_len)
            .arg(self.config.max_age.as_millis() as u64)
            .arg(name)
            .arg(data.get())
            .arg(json_string(name))
            .arg(self.publish_command());
        call
    }

    /// Runs the append script, acknowledged by `min_replicas_acked` replicas when set.
    async fn write(&self, invocation: &redis::ScriptInvocation<'_>) -> Result<(String, i64)> {
        match self.config.min_replicas_acked {
            0 => self.manager.run_script(invocation).await,
            replicas => {
                let timeout = self.config.wait_timeout;
                self.manager
                    .run_script_acked(invocation, replicas, timeout)
                    .await
            }
        }
    }

    /// `SPUBLISH` on a Cluster, so the notification stays on the shard that owns the user's
    /// slot instead of crossing the cluster bus to every node; `PUBLISH` on one server.
    fn publish_command(&self) -> &'static str {
        if self.manager.config().is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    fn check_event(&self, name: &str, data: &RawValue) -> Result<()> {
        check_name("event name", name)?;
        if data.get().len() > self.config.max_data_bytes {
            return Err(Error::invalid(
                "event data",
                format!(
                    "{} bytes exceeds the limit of {}",
                    data.get().len(),
                    self.config.max_data_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Events after `after` (exclusive), oldest first, at most `count` and at most
    /// [`EventsConfig::replay_page_bytes`] (always at least one event when there is one).
    ///
    /// Runs on the manager's bulk lane: a flood of replays queues in this process and never
    /// slows or opens the breaker of short calls (publishes, the health check).
    pub async fn replay_after(
        &self,
        scope: &UserScope,
        after: EventId,
        count: usize,
    ) -> Result<Replay> {
        let (exists, trimmed, first, _last, entries): (i64, i64, String, String, Vec<RawEntry>) =
            self.manager
                .run_script_bulk(
                    REPLAY
                        .key(scope.key(family::EVENTS))
                        .arg(after.to_string())
                        .arg(count.max(1))
                        .arg(self.config.replay_page_bytes),
                )
                .await?;
        let truncated = if exists == 0 {
            // The whole log expired: only an id from before the retention age can have lost events.
            after != EventId::ZERO
                && after.ms
                    < crate::clock::unix_ms().saturating_sub(self.config.max_age.as_millis() as u64)
        } else {
            // Trimmed entries all precede the first retained one. Conservative: an id exactly
            // equal to the last trimmed one is also reported, since it cannot be told apart.
            let first: EventId = first.parse()?;
            trimmed > 0 && after.next() < first
        };
        let events = entries
            .into_iter()
            .map(decode_entry)
            .collect::<Result<Vec<_>>>()?;
        Ok(Replay { events, truncated })
    }

    /// The id of the newest event ever appended (not trimmed away), or [`EventId::ZERO`].
    pub async fn last_id(&self, scope: &UserScope) -> Result<EventId> {
        let (_exists, _trimmed, _first, last, _entries): (i64, i64, String, String, Vec<RawEntry>) =
            self.manager
                .run_script(
                    REPLAY
                        .key(scope.key(family::EVENTS))
                        .arg("0-0")
                        .arg(0)
                        .arg(0),
                )
                .await?;
        last.parse()
    }

    /// Follows the user's live events. Subscribe before replaying, so nothing falls between.
    pub async fn subscribe(&self, scope: &UserScope) -> Result<EventSubscription> {
        Ok(EventSubscription {
            inner: self
                .manager
                .subscribe_sharded(&scope.key(family::EVENTS))
                .await?,
        })
    }
}

fn decode_entry((id, fields): RawEntry) -> Result<Event> {
    let mut name = None;
    let mut data = None;
    for (field, value) in fields {
        match field.as_str() {
            "e" => name = Some(value),
            "d" => data = Some(value),
            _ => {}
        }
    }
    let (Some(name), Some(data)) = (name, data) else {
        return Err(Error::invalid(
            "stored event",
            format!("entry {id} lacks e/d fields"),
        ));
    };
    Ok(Event {
        id: id.parse()?,
        name,
        data: RawValue::from_string(data)?,
    })
}
