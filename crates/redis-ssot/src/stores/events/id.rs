//! Event ids: the stream entry id `<ms>-<seq>`, parsed strictly.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The id of an event: the stream entry id `<ms>-<seq>`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl EventId {
    /// The id before every event.
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };

    /// The smallest id after this one.
    pub(super) fn next(self) -> EventId {
        match self.seq.checked_add(1) {
            Some(seq) => EventId { ms: self.ms, seq },
            None => EventId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EventId {
    type Err = Error;

    /// Strict: two decimal numbers joined by `-`, nothing else, and an id that another
    /// can follow (`u64::MAX-u64::MAX` cannot be a replay start: Redis refuses it).
    fn from_str(s: &str) -> Result<EventId> {
        let bad = || {
            Error::invalid(
                "event id",
                format!("expected <ms>-<seq>, got {:?}", truncate(s)),
            )
        };
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        let id = EventId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        };
        if id.ms == u64::MAX && id.seq == u64::MAX {
            return Err(Error::invalid(
                "event id",
                "out of range: no event can follow it",
            ));
        }
        Ok(id)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_strictly() {
        assert_eq!(
            "12-3".parse::<EventId>().unwrap(),
            EventId { ms: 12, seq: 3 }
        );
        for bad in [
            "",
            "12",
            "12-",
            "-3",
            "a-b",
            "1-2-3",
            "1 -2",
            "+",
            "$",
            "ssot:{u:x}:1-2",
            &"9".repeat(30),
            "18446744073709551616-0",
            "18446744073709551615-18446744073709551615",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
        assert!(EventId { ms: 1, seq: 9 } < EventId { ms: 2, seq: 0 });
        let last_ms = "18446744073709551615-0".parse::<EventId>().unwrap();
        assert_eq!(
            last_ms.next(),
            EventId {
                ms: u64::MAX,
                seq: 1
            }
        );
    }
}
