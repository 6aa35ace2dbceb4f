//! Live notifications: the frames an append announces and the subscription that yields them.

use bytes::Bytes;
use serde_json::value::RawValue;

use super::{Event, EventId, JSON_PREFIX};
use crate::error::Result;
use crate::pubsub::{Subscription, SubscriptionEvent};

/// A live event as announced: its id and its JSON object ([`Event::to_json`]), shared with
/// every other subscription of the user in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFrame {
    id: EventId,
    json: Bytes,
}

impl LiveFrame {
    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The event's JSON object, as bytes (UTF-8 when written by [`Events::append`]).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// Decodes the whole event.
    pub fn event(&self) -> Result<Event> {
        #[derive(serde::Deserialize)]
        struct Wire {
            event: String,
            data: Box<RawValue>,
        }
        let wire: Wire = serde_json::from_slice(&self.json)?;
        Ok(Event {
            id: self.id,
            name: wire.event,
            data: wire.data,
        })
    }

    /// Reads the id from the frame's fixed prefix; `None` for anything else.
    fn parse(json: Bytes) -> Option<LiveFrame> {
        let rest = json.strip_prefix(JSON_PREFIX.as_bytes())?;
        let end = rest.iter().position(|&b| b == b'"')?;
        let id = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        if json.last() != Some(&b'}') {
            return None;
        }
        Some(LiveFrame { id, json })
    }
}

/// What a live subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A new event.
    Event(LiveFrame),
    /// Live events may have been missed; replay from the last seen id.
    Gap,
}

/// Live events of one user.
#[derive(Debug)]
pub struct EventSubscription {
    pub(super) inner: Subscription,
}

impl EventSubscription {
    /// The next live event or gap; `None` once the manager is gone.
    pub async fn recv(&mut self) -> Option<LiveEvent> {
        self.inner.recv().await.map(decode_live)
    }

    /// The next live event or gap if one is already buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<LiveEvent> {
        self.inner.try_recv().map(decode_live)
    }
}

/// Only `append` publishes on an event channel; anything undecodable is treated as a gap to
/// stay correct (the caller replays from the stream).
fn decode_live(event: SubscriptionEvent) -> LiveEvent {
    match event {
        SubscriptionEvent::Gap => LiveEvent::Gap,
        SubscriptionEvent::Message(payload) => {
            LiveFrame::parse(payload).map_or(LiveEvent::Gap, LiveEvent::Event)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_frames_are_the_events_json() {
        let event = Event {
            id: EventId { ms: 5, seq: 1 },
            name: "msg".to_owned(),
            data: RawValue::from_string("{\"a\":\"x\\ny\"}".to_owned()).unwrap(),
        };
        let json = event.to_json();
        assert_eq!(
            json,
            r#"{"type":"event","id":"5-1","event":"msg","data":{"a":"x\ny"}}"#
        );
        let frame = LiveFrame::parse(Bytes::from(json)).unwrap();
        assert_eq!(frame.id(), event.id);
        assert_eq!(frame.event().unwrap(), event);
        for bad in [
            &b"garbage"[..],
            b"5-1\nmsg\n{}",
            b"{\"type\":\"event\",\"id\":\"5-x\",\"event\":\"m\",\"data\":1}",
            b"{\"type\":\"event\",\"id\":\"5-1",
            b"{\"type\":\"event\",\"id\":\"5-1\",\"event\":\"m\",\"data\":1",
        ] {
            assert!(
                LiveFrame::parse(Bytes::from_static(bad)).is_none(),
                "{bad:?}"
            );
        }
    }
}
