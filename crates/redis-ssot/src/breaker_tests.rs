//! Unit tests of the circuit breaker (paused time).

use super::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        window_size: 10,
        minimum_calls: 4,
        failure_rate_threshold: 50.0,
        slow_call_duration: Duration::from_millis(100),
        slow_call_rate_threshold: 100.0,
        open_duration: Duration::from_secs(1),
        half_open_calls: 2,
    }
}

fn call(b: &CircuitBreaker, failed: bool, ms: u64) {
    let permit = b.acquire().expect("admitted");
    b.record(permit, failed, Duration::from_millis(ms));
}

#[tokio::test(start_paused = true)]
async fn opens_on_failure_rate_after_minimum_calls() {
    let b = CircuitBreaker::new(config(), None);
    call(&b, true, 1);
    call(&b, true, 1);
    call(&b, true, 1);
    assert_eq!(b.state(), BreakerState::Closed, "below minimum calls");
    call(&b, false, 1);
    assert_eq!(b.state(), BreakerState::Open, "3 of 4 failed");
    match b.acquire() {
        Err(Error::Unavailable { retry_after, .. }) => {
            assert!(retry_after <= Duration::from_secs(1))
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_that_slide_out_of_the_window_stop_counting() {
    let b = CircuitBreaker::new(config(), None);
    let calls = |failed: bool, n: usize| (0..n).for_each(|_| call(&b, failed, 1));
    calls(false, 6);
    calls(true, 4);
    calls(false, 10);
    calls(true, 4);
    assert_eq!(b.state(), BreakerState::Closed, "4 of the last 10 failed");
    call(&b, true, 1);
    assert_eq!(b.state(), BreakerState::Open, "5 of the last 10 failed");
}

#[tokio::test(start_paused = true)]
async fn a_clean_window_judges_like_one_that_recorded_every_call() {
    let b = CircuitBreaker::new(config(), None);
    let calls = |failed: bool, ms: u64, n: usize| (0..n).for_each(|_| call(&b, failed, ms));
    calls(false, 1, 10);
    assert!(
        b.clean.load(Ordering::Acquire),
        "ten fast successes fill the window"
    );
    calls(false, 1, 1_000);
    calls(true, 1, 4);
    assert!(!b.clean.load(Ordering::Acquire));
    assert_eq!(b.state(), BreakerState::Closed, "4 of the last 10 failed");
    call(&b, true, 1);
    assert_eq!(b.state(), BreakerState::Open, "5 of the last 10 failed");

    // Slow successes are recorded even into a clean window.
    let mut slow = config();
    slow.slow_call_rate_threshold = 50.0;
    let b = CircuitBreaker::new(slow, None);
    (0..10).for_each(|_| call(&b, false, 1));
    (0..4).for_each(|_| call(&b, false, 150));
    assert_eq!(b.state(), BreakerState::Closed, "4 of the last 10 slow");
    call(&b, false, 150);
    assert_eq!(b.state(), BreakerState::Open, "5 of the last 10 slow");
}

#[tokio::test(start_paused = true)]
async fn opens_on_slow_calls() {
    let b = CircuitBreaker::new(config(), None);
    for _ in 0..4 {
        call(&b, false, 150);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_limits_probes_then_closes() {
    let b = CircuitBreaker::new(config(), None);
    for _ in 0..4 {
        call(&b, true, 1);
    }
    tokio::time::advance(Duration::from_millis(1001)).await;
    let p1 = b.acquire().unwrap();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let p2 = b.acquire().unwrap();
    assert!(b.acquire().is_err(), "only two probes");
    b.record(p1, false, Duration::from_millis(1));
    b.record(p2, false, Duration::from_millis(1));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens() {
    let b = CircuitBreaker::new(config(), None);
    for _ in 0..4 {
        call(&b, true, 1);
    }
    tokio::time::advance(Duration::from_millis(1001)).await;
    call(&b, true, 1);
    call(&b, true, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn unprobed_calls_run_only_while_closed() {
    let b = CircuitBreaker::new(config(), None);
    assert!(b.acquire_unprobed().is_ok());
    for _ in 0..4 {
        call(&b, true, 1);
    }
    assert!(b.acquire_unprobed().is_err(), "open");
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert!(
        b.acquire_unprobed().is_err(),
        "never moves the circuit to half-open"
    );
    assert_eq!(b.state(), BreakerState::Open);
    let probe = b.acquire().unwrap();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.acquire_unprobed().is_err(), "half-open: only probes run");
    b.record(probe, false, Duration::from_millis(1));
    call(&b, false, 1);
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.acquire_unprobed().is_ok());
}

#[tokio::test(start_paused = true)]
async fn released_probe_frees_its_slot_and_stale_outcomes_are_ignored() {
    let b = CircuitBreaker::new(config(), None);
    let stale = b.acquire().unwrap();
    for _ in 0..4 {
        call(&b, true, 1);
    }
    b.record(stale, false, Duration::ZERO); // admitted while closed: ignored
    assert_eq!(b.state(), BreakerState::Open);
    b.on_reconnect();
    let p = b.acquire().unwrap();
    let _q = b.acquire().unwrap();
    b.release(p);
    assert!(b.acquire().is_ok(), "released slot reusable");
}
