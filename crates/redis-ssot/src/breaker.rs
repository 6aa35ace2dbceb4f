//! Circuit breaker with resilience4j semantics over a count-based sliding window.
//!
//! ## Behavior
//! - **Closed**: every call runs; its outcome (failed? slow?) enters a window of the last
//!   `window_size` outcomes. Once the window holds `minimum_calls`, the circuit opens when the
//!   failure rate or the slow-call rate reaches its threshold.
//! - **Open**: calls fail at once with [`Error::Unavailable`] carrying the time left; after
//!   `open_duration` the next call moves the circuit to half-open.
//! - **Half-open**: at most `half_open_calls` probes run; when they all reported, the circuit
//!   closes if their rates are below the thresholds and opens again otherwise. A reconnect
//!   moves an open circuit to half-open at once, since the link is known to be back.
//! - Only transient errors (connection, timeout, busy) count as failures; a script error or a
//!   wrong type is the caller's problem, not Redis's health.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::BreakerConfig;
use crate::error::Error;

/// How long callers are told to wait while all half-open probes are in flight.
const HALF_OPEN_BUSY_RETRY: Duration = Duration::from_millis(50);

/// The state of the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    /// Calls run.
    Closed,
    /// Calls fail at once.
    Open,
    /// A few probe calls run.
    HalfOpen,
}

impl BreakerState {
    /// Stable name for logs, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    failed: bool,
    slow: bool,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Bumped on every transition so outcomes of calls admitted earlier are ignored.
    generation: u64,
    window: VecDeque<Outcome>,
    /// Failed and slow outcomes in `window`, kept in step with it so that judging the window
    /// after every call costs O(1), not a scan of `window_size` outcomes.
    window_failed: usize,
    window_slow: usize,
    opened_at: Instant,
    probes_issued: usize,
    probes: Vec<Outcome>,
}

/// The circuit breaker of one failure domain.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    config: BreakerConfig,
    /// The failure domain in metrics (`domain` label); `None` for the process-wide breaker,
    /// whose series keep no label.
    domain: Option<Arc<str>>,
    inner: Mutex<Inner>,
    /// Mirrors of `inner.state == Closed` and `inner.generation`, so admitting a call while
    /// closed (the hot path) takes no lock.
    closed: AtomicBool,
    generation: AtomicU64,
    /// Mirror of "closed, and the window is full of fast successes". Recording one more fast
    /// success then changes no count (it replaces the oldest, also a fast success), so the
    /// hot path of a healthy manager skips the lock entirely.
    clean: AtomicBool,
    state_tx: watch::Sender<BreakerState>,
}

/// Admission to run one call; report its outcome with [`CircuitBreaker::record`].
#[derive(Debug)]
pub(crate) struct Permit {
    generation: u64,
    probe: bool,
}

impl CircuitBreaker {
    pub(crate) fn new(config: BreakerConfig, domain: Option<Arc<str>>) -> Self {
        let (state_tx, _) = watch::channel(BreakerState::Closed);
        CircuitBreaker {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                window: VecDeque::with_capacity(config.window_size),
                window_failed: 0,
                window_slow: 0,
                opened_at: Instant::now(),
                probes_issued: 0,
                probes: Vec::new(),
            }),
            config,
            domain,
            closed: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            clean: AtomicBool::new(false),
            state_tx,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        *self.state_tx.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<BreakerState> {
        self.state_tx.subscribe()
    }

    /// Admits a call, or says at once when to come back.
    pub(crate) fn acquire(&self) -> Result<Permit, Error> {
        // A stale read only yields a permit whose outcome is ignored (its generation is gone
        // or the state is no longer closed).
        if self.closed.load(Ordering::Acquire) {
            return Ok(Permit {
                generation: self.generation.load(Ordering::Acquire),
                probe: false,
            });
        }
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(Permit {
                generation: inner.generation,
                probe: false,
            }),
            BreakerState::Open => {
                let elapsed = inner.opened_at.elapsed();
                if elapsed < self.config.open_duration {
                    return Err(Error::Unavailable {
                        retry_after: self.config.open_duration - elapsed,
                        reason: "circuit open",
                    });
                }
                self.transition(&mut inner, BreakerState::HalfOpen);
                self.issue_probe(&mut inner)
            }
            BreakerState::HalfOpen => self.issue_probe(&mut inner),
        }
    }

    /// Admits a call that may never serve as a half-open probe (a bulk read): it runs only
    /// while the circuit is closed, so recovery is judged by short calls alone.
    pub(crate) fn acquire_unprobed(&self) -> Result<Permit, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(Permit {
                generation: self.generation.load(Ordering::Acquire),
                probe: false,
            });
        }
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(Permit {
                generation: inner.generation,
                probe: false,
            }),
            BreakerState::Open => Err(Error::Unavailable {
                retry_after: self
                    .config
                    .open_duration
                    .saturating_sub(inner.opened_at.elapsed())
                    .max(HALF_OPEN_BUSY_RETRY),
                reason: "circuit open",
            }),
            BreakerState::HalfOpen => Err(Error::Unavailable {
                retry_after: HALF_OPEN_BUSY_RETRY,
                reason: "circuit half-open, probes in flight",
            }),
        }
    }

    /// Reports the outcome of a call admitted by `permit`.
    pub(crate) fn record(&self, permit: Permit, failed: bool, elapsed: Duration) {
        let outcome = Outcome {
            failed,
            slow: elapsed >= self.config.slow_call_duration,
        };
        if !outcome.failed
            && !outcome.slow
            && !permit.probe
            && self.clean.load(Ordering::Acquire)
            && permit.generation == self.generation.load(Ordering::Acquire)
        {
            return;
        }
        let mut inner = self.lock();
        if permit.generation != inner.generation {
            return;
        }
        match inner.state {
            BreakerState::Closed => {
                if inner.window.len() == self.config.window_size
                    && let Some(oldest) = inner.window.pop_front()
                {
                    inner.window_failed -= usize::from(oldest.failed);
                    inner.window_slow -= usize::from(oldest.slow);
                }
                inner.window.push_back(outcome);
                inner.window_failed += usize::from(outcome.failed);
                inner.window_slow += usize::from(outcome.slow);
                self.clean.store(
                    inner.window.len() == self.config.window_size
                        && inner.window_failed == 0
                        && inner.window_slow == 0,
                    Ordering::Release,
                );
                if inner.window.len() >= self.config.minimum_calls
                    && self.exceeds(inner.window.len(), inner.window_failed, inner.window_slow)
                {
                    self.transition(&mut inner, BreakerState::Open);
                }
            }
            BreakerState::HalfOpen if permit.probe => {
                inner.probes.push(outcome);
                if inner.probes.len() >= self.config.half_open_calls {
                    let failed = inner.probes.iter().filter(|o| o.failed).count();
                    let slow = inner.probes.iter().filter(|o| o.slow).count();
                    let next = if self.exceeds(inner.probes.len(), failed, slow) {
                        BreakerState::Open
                    } else {
                        BreakerState::Closed
                    };
                    self.transition(&mut inner, next);
                }
            }
            _ => {}
        }
    }

    /// Gives back a permit whose call never ran (cancelled before it reached Redis).
    pub(crate) fn release(&self, permit: Permit) {
        if !permit.probe {
            return;
        }
        let mut inner = self.lock();
        if permit.generation == inner.generation {
            inner.probes_issued = inner.probes_issued.saturating_sub(1);
        }
    }

    /// The link reconnected: an open circuit may probe at once.
    pub(crate) fn on_reconnect(&self) {
        let mut inner = self.lock();
        if inner.state == BreakerState::Open {
            self.transition(&mut inner, BreakerState::HalfOpen);
        }
    }

    fn issue_probe(&self, inner: &mut Inner) -> Result<Permit, Error> {
        if inner.probes_issued >= self.config.half_open_calls {
            return Err(Error::Unavailable {
                retry_after: HALF_OPEN_BUSY_RETRY,
                reason: "circuit half-open, probes in flight",
            });
        }
        inner.probes_issued += 1;
        Ok(Permit {
            generation: inner.generation,
            probe: true,
        })
    }

    /// True when `failed` or `slow` of `total` outcomes reaches its rate threshold.
    fn exceeds(&self, total: usize, failed: usize, slow: usize) -> bool {
        if total == 0 {
            return false;
        }
        let rate = |n: usize| n as f64 * 100.0 / total as f64;
        rate(failed) >= self.config.failure_rate_threshold
            || rate(slow) >= self.config.slow_call_rate_threshold
    }

    fn transition(&self, inner: &mut Inner, next: BreakerState) {
        let from = inner.state;
        inner.state = next;
        inner.generation += 1;
        self.generation.store(inner.generation, Ordering::Release);
        self.closed
            .store(next == BreakerState::Closed, Ordering::Release);
        inner.window.clear();
        inner.window_failed = 0;
        inner.window_slow = 0;
        self.clean.store(false, Ordering::Release);
        inner.probes.clear();
        inner.probes_issued = 0;
        if next == BreakerState::Open {
            inner.opened_at = Instant::now();
        }
        // Opening is the fault; half-open and closed are the recovery, logged at INFO.
        let domain = self.domain.as_deref();
        if next == BreakerState::Open {
            tracing::warn!(
                domain,
                from = from.as_str(),
                to = next.as_str(),
                "circuit breaker transition"
            );
        } else {
            tracing::info!(
                domain,
                from = from.as_str(),
                to = next.as_str(),
                "circuit breaker transition"
            );
        }
        match &self.domain {
            None => {
                metrics::counter!("ssot_breaker_transitions_total", "to" => next.as_str())
                    .increment(1);
                metrics::gauge!("ssot_breaker_state").set(next.gauge());
            }
            Some(domain) => {
                let label = domain.to_string();
                metrics::counter!("ssot_breaker_transitions_total", "to" => next.as_str(), "domain" => label.clone())
                    .increment(1);
                metrics::gauge!("ssot_breaker_state", "domain" => label).set(next.gauge());
            }
        }
        self.state_tx.send_replace(next);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters more than losing the breaker, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
