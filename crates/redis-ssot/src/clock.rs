//! Wall-clock time as Unix time, for timestamps that leave the process (events, tokens,
//! schedules). Durations inside the process use `Instant`; times inside Redis scripts use the
//! server's `TIME` (see the stores' Lua prelude).
//!
//! A clock set before 1970 reads as the epoch itself rather than failing: these values are
//! stamps and deadlines, never a reason to stop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero if the clock is set before it).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds since the Unix epoch (JWT `exp`/`iat` are in this unit).
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// The `SystemTime` of a Unix timestamp in milliseconds (as stored by Redis scripts).
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_agree_and_round_trip() {
        let ms = unix_ms();
        let secs = unix_secs();
        // 2020-01-01: any sane clock of a machine running these tests is past it.
        assert!(secs > 1_577_836_800, "{secs}");
        assert!(
            ms / 1000 <= secs + 1 && secs <= ms / 1000 + 1,
            "{ms} {secs}"
        );
        let t = from_unix_ms(ms);
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(ms)
        );
    }
}
