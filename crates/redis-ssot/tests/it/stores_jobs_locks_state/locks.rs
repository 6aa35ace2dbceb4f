//! Locks: exclusion and fencing, expired and foreign holders, `with_lock`.

use super::*;

/// Four contenders: never two holders at once; tokens strictly increase in acquisition order.
pub(super) async fn lock_exclusion_and_fencing(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let holders = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let contenders: Vec<_> = (0..4)
        .map(|i| {
            let (locks, holders, tokens) =
                (locks.clone(), Arc::clone(&holders), Arc::clone(&tokens));
            tokio::spawn(async move {
                let holder = format!("contender-{i}");
                let mut held = 0;
                while held < 10 {
                    let Some(lease) = locks
                        .acquire("exclusive", &holder, Duration::from_secs(5))
                        .await
                        .unwrap()
                    else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    tokens.lock().unwrap().push(lease.token);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1, "two holders");
                    locks.release(lease).await.unwrap();
                    held += 1;
                }
            })
        })
        .collect();
    for contender in contenders {
        contender.await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 40);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

/// An expired holder cannot renew or release, nor free the next holder's lock; a holder that
/// is not the one in Redis cannot release.
pub(super) async fn lock_expired_and_foreign_holders(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let mut old = locks
        .acquire("expiring", "worker-a", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert!(
        locks
            .acquire("expiring", "worker-b", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lost = locks
        .renew(&mut old, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&lost, Error::LockLost { name } if name == "expiring"),
        "{lost}"
    );
    assert!(matches!(
        locks.release(old.clone()).await,
        Err(Error::LockLost { .. })
    ));

    let mut new = locks
        .acquire("expiring", "worker-b", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free after expiry");
    assert!(new.token > old.token);
    // The old holder, even with the new holder's name or token, cannot touch the new lease.
    let impostors = [
        old.clone(),
        Lease {
            holder: "worker-b".into(),
            ..old.clone()
        },
        Lease {
            holder: "worker-a".into(),
            ..new.clone()
        },
    ];
    for mut impostor in impostors {
        assert!(matches!(
            locks.renew(&mut impostor, Duration::from_secs(5)).await,
            Err(Error::LockLost { .. })
        ));
        assert!(matches!(
            locks.release(impostor).await,
            Err(Error::LockLost { .. })
        ));
    }
    locks.renew(&mut new, Duration::from_secs(5)).await.unwrap();
    locks.release(new.clone()).await.unwrap();
    assert!(matches!(
        locks.release(new).await,
        Err(Error::LockLost { .. })
    ));
    let err = locks
        .acquire("bad name", "x", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

/// `with_lock` holds the lock while the work runs, renews it past its lease, releases it
/// after, and cancels the work when the lock is taken over.
pub(super) async fn lock_with_lock(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let lease = Duration::from_millis(300);
    let outcome = locks
        .with_lock("guarded", "runner", lease, |token| {
            let locks = locks.clone();
            async move {
                // Outlives the lease: only renewal keeps it.
                tokio::time::sleep(Duration::from_millis(700)).await;
                let other = locks.acquire("guarded", "other", lease).await.unwrap();
                assert!(other.is_none(), "lock free while work runs");
                token
            }
        })
        .await
        .unwrap();
    assert!(outcome.is_some());
    let after = locks
        .acquire("guarded", "other", lease)
        .await
        .unwrap()
        .unwrap();
    assert!(after.token > outcome.unwrap());
    // Held elsewhere: the work does not run.
    let skipped = locks
        .with_lock("guarded", "runner", lease, |_| async {
            panic!("ran without the lock")
        })
        .await
        .unwrap();
    assert_eq!(skipped, None::<()>);
    locks.release(after).await.unwrap();

    // Taken over (the lease key replaced under it): the work is cancelled with LockLost.
    let started = Instant::now();
    let result = locks
        .with_lock("guarded", "runner", lease, |_| {
            let manager = manager.clone();
            async move {
                let _: () = manager
                    .query(
                        redis_ssot::redis::cmd("SET")
                            .arg("ssot:{lock:guarded}")
                            .arg("1:thief"),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        })
        .await;
    assert!(matches!(result, Err(Error::LockLost { .. })), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
