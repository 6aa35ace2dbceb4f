//! Exponential backoff with jitter: the one implementation behind the manager's reconnects
//! and the worker's retries.
//!
//! ## Behavior
//! - The ceiling starts at `min` and doubles after every pause, up to `max`.
//! - [`Jitter::Full`] draws a pause uniformly in `[1 ms, ceiling]`: retries of many clients
//!   spread the most (AWS "full jitter"). Used for reconnects, where a Redis restart must not
//!   see every connection of every process come back in the same millisecond.
//! - [`Jitter::Equal`] draws in `[ceiling / 2, ceiling]`: a pause never comes out near zero,
//!   so a retrying caller does not hammer a Redis that just failed, while the random half
//!   still spreads callers apart.
//! - A pause is never below 1 ms, so a refused connection cannot spin, and never above `max`.

use std::time::Duration;

use rand::Rng;

/// How a pause is drawn below the current ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[1 ms, ceiling]`.
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`.
    Equal,
}

/// Pauses between attempts; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: Jitter,
    ceiling: Duration,
}

impl Backoff {
    /// A backoff whose first pause is at most `min` and whose pauses never exceed `max`.
    pub fn new(min: Duration, max: Duration, jitter: Jitter) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            jitter,
            ceiling: min,
        }
    }

    /// True once a pause was taken since the last [`Backoff::reset`].
    pub fn failing(&self) -> bool {
        self.ceiling > self.min
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.ceiling = self.min;
    }

    /// The next pause; doubles the ceiling.
    pub fn pause(&mut self) -> Duration {
        self.pause_at_least(None)
    }

    /// The next pause, at least `hint` (an error's `retry_after`), at most `max`.
    pub fn pause_at_least(&mut self, hint: Option<Duration>) -> Duration {
        let ceiling = self.ceiling.as_millis().max(1) as u64;
        let floor = match self.jitter {
            Jitter::Full => 1,
            Jitter::Equal => (ceiling / 2).max(1),
        };
        let drawn = Duration::from_millis(rand::rng().random_range(floor..=ceiling));
        self.ceiling = self.ceiling.saturating_mul(2).min(self.max);
        drawn.max(hint.unwrap_or_default()).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn full_jitter_stays_under_a_doubling_capped_ceiling_and_spreads() {
        let mut backoff = Backoff::new(MS(50), MS(1000), Jitter::Full);
        for ceiling in [50, 100, 200, 400, 800, 1000, 1000] {
            let pause = backoff.pause();
            assert!(
                pause >= MS(1) && pause <= MS(ceiling),
                "{pause:?} > {ceiling}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff.pause()).collect();
        assert!(spread.len() > 10, "full jitter spreads pauses");
        assert!(backoff.failing());
        backoff.reset();
        assert!(!backoff.failing());
        assert!(backoff.pause() <= MS(50));
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half_and_honours_hints() {
        let mut backoff = Backoff::new(MS(50), MS(5000), Jitter::Equal);
        for ceiling in [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000] {
            let pause = backoff.pause();
            assert!(
                pause >= MS(ceiling) / 2 && pause <= MS(ceiling),
                "{pause:?} outside [{}, {ceiling}] ms",
                ceiling / 2
            );
        }
        backoff.reset();
        assert_eq!(backoff.pause_at_least(Some(MS(900))), MS(900));
        assert_eq!(backoff.pause_at_least(Some(MS(60_000))), MS(5000));
    }
}
