//! A restart of a single server under every store: calls fail fast, then work again.

use super::*;

/// Every store keeps working through a Redis restart without being rebuilt: while the server
/// is down calls fail fast with a transient error, after the restart they work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_survive_a_restart() {
    let mut server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let state = AgentState::new(manager.clone());
    let locks = Locks::new(manager.clone());
    let queue = Jobs::new(manager.clone(), "restart").unwrap();
    let user = scope("restart-user");
    state.put(&user, "run", 0, &1).await.unwrap();
    let lease = locks
        .acquire("restart", "worker", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    queue
        .enqueue(new_job("restart-user", Some("before")))
        .await
        .unwrap();
    assert_eq!(
        queue
            .claim("worker", 10, Duration::from_millis(100))
            .await
            .unwrap()
            .len(),
        1
    );

    server.kill();
    // Ordinary calls wait at most the command timeout, blocking ones the connect timeout too.
    let config = manager.config();
    let budget = config.command_timeout + config.connect_timeout + Duration::from_millis(200);
    for _ in 0..10 {
        fails_fast("get", budget, state.get::<i32>(&user, "run")).await;
        fails_fast("put", budget, state.put(&user, "run", 1, &2)).await;
        let acquire = locks.acquire("restart-2", "w", Duration::from_secs(1));
        fails_fast("acquire", budget, acquire).await;
        fails_fast("release", budget, locks.release(lease.clone())).await;
        let enqueue = queue.enqueue(new_job("restart-user", None));
        fails_fast("enqueue", budget, enqueue).await;
        let claim = queue.claim("worker", 10, Duration::from_millis(100));
        fails_fast("claim", budget, claim).await;
        let reclaim = queue.reclaim("worker", Duration::ZERO, 10);
        fails_fast("reclaim", budget, reclaim).await;
    }

    server.restart();
    let within = Duration::from_secs(5);
    eventually(within, "agent state works again", || async {
        state.put(&user, "run", 0, &3).await.is_ok()
    })
    .await;
    assert_eq!(
        state.get::<i32>(&user, "run").await.unwrap().unwrap().value,
        3
    );
    eventually(within, "locks work again", || async {
        matches!(
            locks
                .acquire("restart", "worker", Duration::from_secs(5))
                .await,
            Ok(Some(_))
        )
    })
    .await;
    // The lease was lost with the data; the old holder learns it.
    assert!(matches!(
        locks.release(lease).await,
        Err(Error::LockLost { .. })
    ));
    eventually(within, "jobs enqueue again", || async {
        queue
            .enqueue(new_job("restart-user", Some("after")))
            .await
            .is_ok()
    })
    .await;
    // The consumer group was lost too: claim recreates it.
    let claimed = queue
        .claim("worker", 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].idempotency_key.as_deref(), Some("after"));
    assert!(queue.ack(&claimed[0]).await.unwrap());
    assert_eq!(
        queue.reclaim("worker", Duration::ZERO, 10).await.unwrap(),
        Default::default()
    );
}

/// Awaits `call`, which must fail with a transient error within `budget`.
pub(super) async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    budget: Duration,
    call: impl Future<Output = redis_ssot::Result<T>>,
) {
    let start = Instant::now();
    let result = call.await;
    let took = start.elapsed();
    match result {
        Ok(value) => panic!("{what} succeeded while Redis is down: {value:?}"),
        Err(err) => assert!(err.is_transient(), "{what}: {err}"),
    }
    assert!(took <= budget, "{what} took {took:?}, budget {budget:?}");
}
