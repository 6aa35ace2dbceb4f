//! Waiting out Redis trouble: exponential backoff with jitter, and retries up to a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// First pause after a failure.
const MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff with equal jitter (each pause is drawn between half and all of a
/// ceiling that doubles per failure), honouring the error's `retry_after` hint. Equal rather
/// than full jitter: a pause never comes out near zero, so a worker does not hammer a Redis
/// that just failed, while the random half still spreads the workers' retries apart.
#[derive(Debug)]
pub(crate) struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { ceiling: MIN_DELAY }
    }

    pub(crate) fn reset(&mut self) {
        self.ceiling = MIN_DELAY;
    }

    /// The next pause after a failure with `hint` (the error's `retry_after`).
    pub(crate) fn next(&mut self, hint: Option<Duration>) -> Duration {
        let jittered = self.ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        self.ceiling = (self.ceiling * 2).min(MAX_DELAY);
        jittered.max(hint.unwrap_or_default()).min(MAX_DELAY)
    }
}

/// Runs `op` until it succeeds, fails for good, or the next pause would pass `deadline`.
/// Only transient errors (Redis down, slow, busy) are retried; every operation passed here is
/// idempotent (or checked by the caller, like compare-and-set).
pub(crate) async fn until<T, F, Fut>(deadline: Instant, mut op: F) -> redis_ssot::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis_ssot::Result<T>>,
{
    let mut backoff = Backoff::new();
    loop {
        match op().await {
            Err(err) if err.is_transient() => {
                let pause = backoff.next(err.retry_after());
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
    fn pauses_are_equal_jitter_of_a_doubling_ceiling() {
        let mut backoff = Backoff::new();
        for ceiling in [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000] {
            let ceiling = Duration::from_millis(ceiling);
            let pause = backoff.next(None);
            assert!(
                pause >= ceiling / 2 && pause <= ceiling,
                "{pause:?} outside {:?}..={ceiling:?}",
                ceiling / 2
            );
        }
        // A longer hint wins, up to the longest pause.
        assert_eq!(backoff.next(Some(Duration::from_secs(60))), MAX_DELAY);
        backoff.reset();
        assert!(backoff.next(None) <= MIN_DELAY);
    }
}
