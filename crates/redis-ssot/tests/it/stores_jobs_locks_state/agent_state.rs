//! AgentState: compare-and-set under contention, isolation between users.

use super::*;

/// 100 tasks each add 1 by get + compare-and-set, retrying on conflict: no update is lost,
/// and every put that did not succeed was reported as a conflict.
pub(super) async fn agent_state_cas(manager: &RedisManager) {
    let state = AgentState::new(manager.clone());
    let user = scope("cas-user");
    assert_eq!(state.put(&user, "run-1", 0, &0u64).await.unwrap(), 1);
    let conflicts = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (state, user, conflicts) = (state.clone(), user.clone(), Arc::clone(&conflicts));
            tokio::spawn(async move {
                let mut attempts = 0u64;
                loop {
                    attempts += 1;
                    let Versioned { version, value } =
                        state.get::<u64>(&user, "run-1").await.unwrap().unwrap();
                    match state.put(&user, "run-1", version, &(value + 1)).await {
                        Ok(new_version) => {
                            assert_eq!(new_version, version + 1);
                            return (new_version, attempts);
                        }
                        Err(Error::Conflict { expected, current }) => {
                            assert_eq!(expected, version);
                            assert!(current > expected, "{current} <= {expected}");
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    let mut attempts = 0;
    for task in tasks {
        let (version, tries) = task.await.unwrap();
        assert!(versions.insert(version), "version {version} written twice");
        attempts += tries;
    }
    let failed_puts = attempts - 100;
    assert_eq!(versions, (2..=101).collect());
    let end = state.get::<u64>(&user, "run-1").await.unwrap().unwrap();
    assert_eq!(
        end,
        Versioned {
            version: 101,
            value: 100
        }
    );
    assert_eq!(conflicts.load(Ordering::Relaxed), failed_puts);
    eprintln!("cas: 100 increments, {failed_puts} conflicts");
    // Create-only: expected 0 on an existing run conflicts with the stored version.
    let err = state.put(&user, "run-1", 0, &7u64).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 0,
                current: 101
            }
        ),
        "{err}"
    );
    assert!(state.delete(&user, "run-1").await.unwrap());
    assert_eq!(state.get::<u64>(&user, "run-1").await.unwrap(), None);
}

/// One user's run state is neither readable, writable nor deletable through another's scope.
pub(super) async fn agent_state_isolation(manager: &RedisManager, deployment: &Deployment) {
    let state = AgentState::new(manager.clone()).with_ttl(Duration::from_secs(60));
    let (alice, bob) = (scope("iso-alice"), scope("iso-alice.b"));
    state
        .put(&alice, "run", 0, &json!({"secret": "alice"}))
        .await
        .unwrap();
    assert_eq!(
        state.get::<serde_json::Value>(&bob, "run").await.unwrap(),
        None
    );
    assert!(!state.delete(&bob, "run").await.unwrap());
    // Bob's first write creates his own state (version 1), it does not conflict with Alice's.
    assert_eq!(
        state
            .put(&bob, "run", 0, &json!({"secret": "bob"}))
            .await
            .unwrap(),
        1
    );
    for hostile in ["*", "run*", "{u:iso-alice}:agent:run", "run x", ""] {
        let err = state
            .get::<serde_json::Value>(&bob, hostile)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{hostile:?}: {err}");
    }
    // A path-like name is only a name, under Bob's prefix; one naming another user's hash
    // tag is refused outright.
    assert!(!state.delete(&bob, "../run").await.unwrap());
    let err = state.delete(&bob, "../../{u:iso-alice}").await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let got = state
        .get::<serde_json::Value>(&alice, "run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!({"secret": "alice"}));
    assert_eq!(got.version, 1);
    let keys = deployment.keys("ssot:{u:iso-*");
    let expected: BTreeSet<String> = [
        "ssot:{u:iso-alice}:agent:run",
        "ssot:{u:iso-alice.b}:agent:run",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, expected);
    assert!(state.delete(&bob, "run").await.unwrap());
    let keys = deployment.keys("ssot:{u:iso-*");
    assert_eq!(keys, ["ssot:{u:iso-alice}:agent:run".to_owned()].into());
    // The TTL was set and refreshed by the write.
    let ttl: i64 = manager
        .query(redis_ssot::redis::cmd("PTTL").arg("ssot:{u:iso-alice}:agent:run"))
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
}
