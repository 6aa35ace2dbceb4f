//! Every user/auth store fails fast while Redis is down and works again after.

use super::*;

/// Runs a call that must fail; returns how long it took and its error.
pub(super) async fn fails_fast<T: std::fmt::Debug>(
    call: impl Future<Output = redis_ssot::Result<T>>,
) -> (Duration, Error) {
    let start = Instant::now();
    let result = call.await;
    (start.elapsed(), result.unwrap_err())
}

/// Every store fails fast while Redis is down and works again after it is back, without
/// being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_auth_stores_survive_a_restart() {
    let mut server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let cache = UserCache::new(manager.clone());
    let sessions = Sessions::new(manager.clone(), MINUTE).unwrap();
    let limiter = RateLimiter::new(manager.clone());
    let tokens = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let strict = Tokens::new(manager.clone(), hs_config().strict(true))
        .await
        .unwrap();
    let ivan = scope("ivan");
    let limit = Limit::new("msgs", 1000, MINUTE);
    let token = hs(&good_claims("ivan"));
    let revoked_token = hs(&good_claims("ivan"));
    let revoked = tokens.verify(&revoked_token).await.unwrap();
    tokens
        .revoke(revoked.jti.as_deref().unwrap(), revoked.exp)
        .await
        .unwrap();
    cache.set(&ivan, "k", "v", MINUTE).await.unwrap();
    sessions.create(&ivan, BTreeMap::new()).await.unwrap();
    limiter.check(&ivan, &limit).await.unwrap();
    tokens.verify(&token).await.unwrap();
    strict.verify(&token).await.unwrap();

    server.kill();
    let budget = manager.config().command_timeout + Duration::from_millis(200);
    for round in 0..3 {
        let checks = [
            ("cache get", fails_fast(cache.get(&ivan, "k")).await),
            (
                "cache set",
                fails_fast(cache.set(&ivan, "k", "v", MINUTE)).await,
            ),
            (
                "sessions",
                fails_fast(sessions.create(&ivan, BTreeMap::new())).await,
            ),
            ("rate limit", fails_fast(limiter.check(&ivan, &limit)).await),
            (
                "revoke",
                fails_fast(tokens.revoke("some-jti", unix_now() + 60)).await,
            ),
            ("strict verify", fails_fast(strict.verify(&token)).await),
        ];
        for (what, (took, err)) in checks {
            assert!(err.is_transient(), "round {round}, {what}: {err}");
            assert!(took <= budget, "round {round}, {what} took {took:?}");
        }
        // Best effort: a good token still passes, a locally known revocation still holds.
        assert!(tokens.verify(&token).await.is_ok());
        rejects(&tokens, &revoked_token, TokenError::Revoked).await;
    }

    server.restart();
    eventually(Duration::from_secs(5), "cache works again", || {
        let (cache, ivan) = (cache.clone(), ivan.clone());
        async move { cache.set(&ivan, "k", "v2", MINUTE).await.is_ok() }
    })
    .await;
    assert_eq!(cache.get(&ivan, "k").await.unwrap(), Some(b"v2".to_vec()));
    let session = sessions.create(&ivan, BTreeMap::new()).await.unwrap();
    assert_eq!(sessions.list(&ivan).await.unwrap(), vec![session]);
    assert!(limiter.check(&ivan, &limit).await.unwrap().allowed);
    strict.verify(&token).await.unwrap();

    // Revocations flow again once the subscriber is back.
    eventually(Duration::from_secs(5), "subscriber back", || {
        let m = manager.clone();
        async move { m.health().subscriber_up }
    })
    .await;
    let mut announced = strict.revocations();
    let claims = tokens.verify(&token).await.unwrap();
    tokens
        .revoke(claims.jti.as_deref().unwrap(), claims.exp)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), announced.recv())
        .await
        .expect("revocation announced after the restart")
        .unwrap();
    assert_eq!(Some(got.as_str()), claims.jti.as_deref());
    rejects(&strict, &token, TokenError::Revoked).await;
}
