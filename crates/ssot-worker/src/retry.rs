//! Waiting out Redis trouble: exponential backoff with jitter, and retries up to a deadline.

use std::future::Future;
use std::time::Duration;

use redis_ssot::backoff::{Backoff, Jitter};
use tokio::time::Instant;

/// First pause after a failure.
const MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// The worker's backoff: equal jitter (see [`Jitter::Equal`]: a pause never comes out near
/// zero, so a worker does not hammer a Redis that just failed), from 50 ms to 5 s.
pub(crate) fn backoff() -> Backoff {
    Backoff::new(MIN_DELAY, MAX_DELAY, Jitter::Equal)
}

/// Runs `op` until it succeeds, fails for good, or the next pause would pass `deadline`.
/// Only transient errors (Redis down, slow, busy) are retried; every operation passed here is
/// idempotent (or checked by the caller, like compare-and-set).
pub(crate) async fn until<T, F, Fut>(deadline: Instant, mut op: F) -> redis_ssot::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis_ssot::Result<T>>,
{
    let mut backoff = backoff();
    loop {
        match op().await {
            Err(err) if err.is_transient() => {
                let pause = backoff.pause_at_least(err.retry_after());
                if Instant::now() + pause >= deadline {
                    return Err(err);
                }
                tracing::debug!(cause = %err, ?pause, "redis call failed; retrying");
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_pauses_are_equal_jitter_from_50_ms_to_5_s() {
        let mut backoff = backoff();
        for ceiling in [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000] {
            let ceiling = Duration::from_millis(ceiling);
            let pause = backoff.pause();
            assert!(
                pause >= ceiling / 2 && pause <= ceiling,
                "{pause:?} outside {:?}..={ceiling:?}",
                ceiling / 2
            );
        }
        // A longer hint wins, up to the longest pause.
        assert_eq!(
            backoff.pause_at_least(Some(Duration::from_secs(60))),
            MAX_DELAY
        );
        backoff.reset();
        assert!(backoff.pause() <= MIN_DELAY);
    }
}
