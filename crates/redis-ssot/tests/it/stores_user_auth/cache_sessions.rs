//! UserCache and Sessions: basics and lifecycle.

use super::*;

pub(super) async fn cache_basics(manager: &RedisManager) {
    let cache = UserCache::new(manager.clone());
    let alice = fresh_user("alice");
    assert_eq!(cache.get(&alice, "profile").await.unwrap(), None);
    assert!(!cache.exists(&alice, "profile").await.unwrap());
    assert_eq!(cache.ttl(&alice, "profile").await.unwrap(), None);

    cache.set(&alice, "profile", "v1", MINUTE).await.unwrap();
    assert_eq!(
        cache.get(&alice, "profile").await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert!(cache.exists(&alice, "profile").await.unwrap());
    let ttl = cache.ttl(&alice, "profile").await.unwrap().unwrap();
    assert!(ttl > Duration::from_secs(55) && ttl <= MINUTE, "{ttl:?}");

    cache
        .set_json(&alice, "prefs:v1", &json!({"theme": "dark"}), MINUTE)
        .await
        .unwrap();
    let prefs: Option<Value> = cache.get_json(&alice, "prefs:v1").await.unwrap();
    assert_eq!(prefs, Some(json!({"theme": "dark"})));

    // Entries expire on their own.
    cache
        .set(&alice, "short", "x", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!cache.exists(&alice, "short").await.unwrap());

    assert!(cache.delete(&alice, "profile").await.unwrap());
    assert!(!cache.delete(&alice, "profile").await.unwrap());

    // clear() removes every entry (more than one script batch), and only entries.
    for i in 0..300 {
        cache
            .set(&alice, &format!("item:{i}"), i.to_string(), MINUTE)
            .await
            .unwrap();
    }
    assert_eq!(cache.clear(&alice).await.unwrap(), 301); // 300 items + prefs
    assert_eq!(cache.get(&alice, "item:7").await.unwrap(), None);
    assert_eq!(cache.clear(&alice).await.unwrap(), 0);

    // Names and TTLs are checked before anything reaches Redis.
    for bad in ["", "*", "a b", "{x}", "é"] {
        let err = cache.set(&alice, bad, "x", MINUTE).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err}");
    }
    let err = cache
        .set(&alice, "k", "x", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Sessions

pub(super) async fn sessions_lifecycle(manager: &RedisManager) {
    let sessions = Sessions::new(manager.clone(), Duration::from_secs(5)).unwrap();
    let bob = fresh_user("bob");
    let meta = BTreeMap::from([("agent".to_owned(), "test".to_owned())]);
    let first = sessions.create(&bob, meta.clone()).await.unwrap();
    assert_eq!(first.id.len(), 32);
    assert_eq!(first.user, *bob.user());
    assert_eq!(first.meta, meta);
    assert_eq!(first.created, first.last_seen);
    assert_eq!(
        sessions.get(&bob, &first.id).await.unwrap(),
        Some(first.clone())
    );

    // touch() moves last_seen and restarts the idle time.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = sessions.expires_in(&bob, &first.id).await.unwrap().unwrap();
    assert!(before <= Duration::from_millis(4400), "{before:?}");
    let touched = sessions.touch(&bob, &first.id).await.unwrap().unwrap();
    assert!(touched.last_seen > first.last_seen);
    assert_eq!(touched.created, first.created);
    let after = sessions.expires_in(&bob, &first.id).await.unwrap().unwrap();
    assert!(after > before, "{after:?} after touch, {before:?} before");

    let second = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let third = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let ids = session_ids(&sessions, &bob).await;
    let expected = BTreeSet::from([first.id.clone(), second.id.clone(), third.id.clone()]);
    assert_eq!(ids, expected);

    assert!(sessions.revoke(&bob, &second.id).await.unwrap());
    assert!(!sessions.revoke(&bob, &second.id).await.unwrap());
    assert_eq!(sessions.get(&bob, &second.id).await.unwrap(), None);
    assert_eq!(sessions.touch(&bob, &second.id).await.unwrap(), None);
    assert_eq!(sessions.list(&bob).await.unwrap().len(), 2);

    assert_eq!(sessions.revoke_all(&bob).await.unwrap(), 2);
    assert!(sessions.list(&bob).await.unwrap().is_empty());
    assert_eq!(sessions.get(&bob, &first.id).await.unwrap(), None);

    // An untouched session expires and drops out of the list.
    let idle = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let short = Sessions::new(manager.clone(), Duration::from_millis(100)).unwrap();
    let brief = short.create(&bob, BTreeMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        session_ids(&sessions, &bob).await,
        BTreeSet::from([idle.id.clone()])
    );
    assert_eq!(sessions.get(&bob, &brief.id).await.unwrap(), None);
    sessions.revoke_all(&bob).await.unwrap();

    let err = sessions.get(&bob, "../x y").await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(Sessions::new(manager.clone(), Duration::ZERO).is_err());
}

pub(super) async fn session_ids(sessions: &Sessions, user: &UserScope) -> BTreeSet<String> {
    let listed = sessions.list(user).await.unwrap();
    listed.into_iter().map(|s| s.id).collect()
}
