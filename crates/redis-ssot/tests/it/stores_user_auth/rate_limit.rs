//! RateLimiter: exact decisions, alone and under contention.

use super::*;

pub(super) async fn rate_limit_decisions(manager: &RedisManager, deployment: &Deployment) {
    let limiter = RateLimiter::new(manager.clone());
    let carol = fresh_user("carol");
    let limit = Limit::new("msgs", 3, Duration::from_secs(6));
    for expected_remaining in [2, 1, 0] {
        let d = limiter.check(&carol, &limit).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert_eq!(d.retry_after, Duration::ZERO);
    }
    let denied = limiter.check(&carol, &limit).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert!(
        denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(2),
        "{denied:?}"
    );
    assert!(denied.reset_after <= Duration::from_secs(6), "{denied:?}");
    // One more request per emission interval (2 s here).
    tokio::time::sleep(denied.retry_after + Duration::from_millis(20)).await;
    assert!(limiter.check(&carol, &limit).await.unwrap().allowed);
    assert!(!limiter.check(&carol, &limit).await.unwrap().allowed);

    // Costs, bounded by the burst.
    let tools = Limit::new("tools", 10, MINUTE).with_burst(5);
    let d = limiter.check_n(&carol, &tools, 4).await.unwrap();
    assert!(d.allowed && d.remaining == 1, "{d:?}");
    let d = limiter.check_n(&carol, &tools, 2).await.unwrap();
    assert!(!d.allowed && d.remaining == 1, "{d:?}");
    for cost in [0, 6] {
        let err = limiter.check_n(&carol, &tools, cost).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }
    for bad in [
        Limit::new("zero", 0, MINUTE),
        Limit::new("nothing", 1, Duration::ZERO),
        Limit::new("bad name", 1, MINUTE),
    ] {
        let err = limiter.check(&carol, &bad).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err}");
    }

    // Global limits have their own key, outside every user's prefix.
    let ip = format!("10.0.0.{}", rand::random::<u8>());
    let global = Limit::new("connect", 2, MINUTE);
    assert!(limiter.check_global(&ip, &global).await.unwrap().allowed);
    assert!(limiter.check_global(&ip, &global).await.unwrap().allowed);
    assert!(!limiter.check_global(&ip, &global).await.unwrap().allowed);
    let keys = deployment.keys("*");
    assert!(
        keys.contains(&format!("ssot:rl:{{connect:{ip}}}")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{}rl:msgs", carol.prefix())),
        "{keys:?}"
    );
}

/// 64 tasks hammer a limit of 100 per minute (burst 100): exactly 100 pass, plus one per
/// emission interval (0.6 s) that elapsed between the first and the last call.
pub(super) async fn rate_limit_is_exact_under_contention(manager: &RedisManager) {
    const TASKS: usize = 64;
    const CALLS_PER_TASK: usize = 5;
    let limiter = RateLimiter::new(manager.clone());
    let user = fresh_user("hammer");
    let limit = Limit::new("chat", 100, MINUTE).with_burst(100);
    let gate = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let allowed = Arc::new(AtomicU64::new(0));
    let mut joins = Vec::new();
    for _ in 0..TASKS {
        let (limiter, user, limit) = (limiter.clone(), user.clone(), limit.clone());
        let (gate, allowed) = (Arc::clone(&gate), Arc::clone(&allowed));
        joins.push(tokio::spawn(async move {
            gate.wait().await;
            for _ in 0..CALLS_PER_TASK {
                if limiter.check(&user, &limit).await.unwrap().allowed {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    gate.wait().await;
    let start = Instant::now();
    for join in joins {
        join.await.unwrap();
    }
    let elapsed = start.elapsed();
    let interval = limit.emission_interval();
    assert_eq!(interval, Duration::from_millis(600));
    let extra = (elapsed.as_micros() / interval.as_micros()) as u64;
    eprintln!("{} calls in {elapsed:?}", TASKS * CALLS_PER_TASK);
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        100 + extra,
        "elapsed {elapsed:?}"
    );
}
