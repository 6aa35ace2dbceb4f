//! Isolation between users as a property test, checked by listing the server's keys.

use super::*;

pub(super) const HOSTILE: &[&str] = &[
    "a:b",
    "*",
    "a*",
    "{x}",
    "}{",
    "",
    "a b",
    "é",
    "用户",
    "a\0b",
    "a?",
    "[a]",
    "a\\b",
    "ssot:{u:a}",
    "a}:cache:x",
    "\n",
];

/// User ids: mostly valid ones that prefix each other (`a`, `ab`, `a.`, `..`), the hostile
/// list, arbitrary unicode, and a 10 KB id.
pub(super) fn user_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[ab.@_-]{1,3}",
        1 => Just("..".to_owned()),
        3 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        1 => any::<String>(),
        1 => Just("a".repeat(10 * 1024)),
    ]
}

pub(super) fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'))
}

/// A key's type and content, read through the manager (which routes it in a cluster).
pub(super) async fn fingerprint(manager: &RedisManager, key: &str) -> String {
    let kind: String = manager.query(redis::cmd("TYPE").arg(key)).await.unwrap();
    let content = match kind.as_str() {
        "string" => format!(
            "{:?}",
            manager.query::<Vec<u8>>(redis::cmd("GET").arg(key)).await
        ),
        "hash" => format!(
            "{:?}",
            manager
                .query::<BTreeMap<String, String>>(redis::cmd("HGETALL").arg(key))
                .await
        ),
        "set" => format!(
            "{:?}",
            manager
                .query::<BTreeSet<String>>(redis::cmd("SMEMBERS").arg(key))
                .await
        ),
        "zset" => format!(
            "{:?}",
            manager
                .query::<Vec<(String, f64)>>(
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                )
                .await
        ),
        other => other.to_owned(),
    };
    format!("{kind}:{content}")
}

pub(super) async fn fingerprints(
    manager: &RedisManager,
    keys: &BTreeSet<String>,
    prefix: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        out.insert(key.clone(), fingerprint(manager, key).await);
    }
    out
}

pub(super) fn expect_invalid<T: std::fmt::Debug>(result: redis_ssot::Result<T>, what: &str) {
    match result {
        Err(Error::Invalid { .. }) => {}
        other => panic!("{what}: expected Error::Invalid, got {other:?}"),
    }
}

/// For pairs of distinct ids: hostile ids are rejected; every operation through user A's
/// scope leaves user B's keys exactly as they were, and creates or deletes only A's keys.
pub(super) async fn isolation_property(manager: &RedisManager, deployment: &Deployment) {
    let handle = tokio::runtime::Handle::current();
    let case = AtomicU64::new(0);
    let both_valid = AtomicU64::new(0);
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(ProptestConfig {
            cases: 64,
            max_shrink_iters: 32,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let pairs = (user_id(), user_id()).prop_filter("distinct", |(a, b)| a != b);
        runner
            .run(&pairs, |(a, b)| {
                let n = case.fetch_add(1, Ordering::Relaxed);
                if handle.block_on(isolation_case(manager, deployment, &a, &b, n)) {
                    both_valid.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .unwrap();
    });
    let (cases, both_valid) = (case.into_inner(), both_valid.into_inner());
    eprintln!("isolation: {cases} cases, {both_valid} with two valid ids");
    // Two valid ids are the cases where isolation is checked in full: a useful share, not
    // one case in the run (the strategy makes about two in five).
    assert!(
        both_valid * 4 >= cases,
        "only {both_valid} of {cases} cases had two valid ids"
    );
}

/// One case; returns whether both ids were valid (so the isolation checks ran in full).
pub(super) async fn isolation_case(
    manager: &RedisManager,
    deployment: &Deployment,
    a_raw: &str,
    b_raw: &str,
    n: u64,
) -> bool {
    let cache = UserCache::new(manager.clone());
    let sessions = Sessions::new(manager.clone(), MINUTE).unwrap();
    let limiter = RateLimiter::new(manager.clone());
    // A fresh limit name per case, so earlier cases' counts do not matter.
    let limit = Limit::new(&format!("msgs-{n}"), 10, Duration::from_secs(3600));
    let agents = AgentState::new(manager.clone());
    let events = Events::new(manager.clone());
    // The job queue is shared by every user (its keys carry the queue's hash tag); what
    // must not leak is the per-user idempotency of enqueueing.
    let jobs = Jobs::new(manager.clone(), "iso").unwrap();
    let queue_prefix = "ssot:{jobs:iso}:";
    let event = |text: &str| serde_json::value::RawValue::from_string(format!("{text:?}")).unwrap();
    let job = |user: &UserScope| NewJob {
        user: user.user().clone(),
        kind: "chat".into(),
        payload: json!({"case": n}),
        idempotency_key: Some(format!("msg-{n}")),
    };

    let parse = |raw: &str| match UserScope::parse(raw) {
        Ok(scope) => {
            assert!(is_valid_id(raw), "{raw:?} accepted");
            Some(scope)
        }
        Err(err) => {
            assert!(!is_valid_id(raw), "{raw:?} rejected: {err}");
            assert!(matches!(err, Error::Invalid { .. }), "{raw:?}: {err}");
            None
        }
    };
    let (a, b) = (parse(a_raw), parse(b_raw));

    // The victim's data.
    let mut b_session = None;
    let mut b_job = None;
    if let Some(b) = &b {
        cache.set(b, "shared", "b-value", MINUTE).await.unwrap();
        cache.set(b, "only-b", "b", MINUTE).await.unwrap();
        b_session = Some(sessions.create(b, BTreeMap::new()).await.unwrap());
        assert!(limiter.check(b, &limit).await.unwrap().allowed);
        agents
            .put(b, "run-1", 0, &json!({"owner": "b"}))
            .await
            .unwrap();
        events
            .append(b, &format!("b-event-{n}"), &event("for b"))
            .await
            .unwrap();
        b_job = Some(jobs.enqueue(job(b)).await.unwrap().id);
    }
    let before = deployment.keys("*");
    let b_before = match &b {
        Some(b) => fingerprints(manager, &before, b.prefix()).await,
        None => BTreeMap::new(),
    };

    // Everything user A can do.
    if let Some(a) = &a {
        cache.set(a, "shared", "a-value", MINUTE).await.unwrap();
        assert_eq!(
            cache.get(a, "shared").await.unwrap(),
            Some(b"a-value".to_vec())
        );
        assert_eq!(cache.get(a, "only-b").await.unwrap(), None);
        assert!(!cache.exists(a, "only-b").await.unwrap());
        assert!(!cache.delete(a, "only-b").await.unwrap());
        assert!(cache.delete(a, "shared").await.unwrap());
        // B's raw id as a cache name: stays inside A's prefix, or is rejected.
        let named = cache.set(a, b_raw, "x", MINUTE).await;
        if is_valid_name(b_raw) {
            named.unwrap();
            assert!(cache.exists(a, b_raw).await.unwrap());
        } else {
            expect_invalid(named, "hostile cache name");
        }
        cache.set(a, "another", "y", MINUTE).await.unwrap();
        assert!(cache.clear(a).await.unwrap() >= 1);
        assert!(!cache.exists(a, "another").await.unwrap());

        let mine = sessions.create(a, BTreeMap::new()).await.unwrap();
        if let Some(theirs) = &b_session {
            assert_eq!(sessions.get(a, &theirs.id).await.unwrap(), None);
            assert_eq!(sessions.touch(a, &theirs.id).await.unwrap(), None);
            assert!(!sessions.revoke(a, &theirs.id).await.unwrap());
        }
        let listed = sessions.list(a).await.unwrap();
        assert_eq!(
            listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
            vec![&mine.id]
        );
        assert_eq!(sessions.revoke_all(a).await.unwrap(), 1);

        let d = limiter.check(a, &limit).await.unwrap();
        assert!(
            d.allowed && d.remaining == 9,
            "B's request counted for A: {d:?}"
        );

        // B's run of the same name is invisible: A starts its own at version 1.
        assert!(agents.get::<Value>(a, "run-1").await.unwrap().is_none());
        assert_eq!(
            agents
                .put(a, "run-1", 0, &json!({"owner": "a"}))
                .await
                .unwrap(),
            1
        );
        assert!(agents.delete(a, "run-1").await.unwrap());
        assert!(!agents.delete(a, "run-1").await.unwrap());

        // A's log holds A's events only (ids recur across cases, so earlier ones may be
        // there); A's append lands in A's log alone.
        let names = |log: Vec<redis_ssot::stores::events::Event>| -> Vec<String> {
            log.into_iter().map(|e| e.name).collect()
        };
        let a_before = names(
            events
                .replay_after(a, EventId::ZERO, 1000)
                .await
                .unwrap()
                .events,
        );
        assert!(
            !a_before.contains(&format!("b-event-{n}")),
            "B's event in A's log"
        );
        let mine = events
            .append(a, &format!("a-event-{n}"), &event("for a"))
            .await
            .unwrap();
        let replay = events
            .replay_after(a, EventId::ZERO, 1000)
            .await
            .unwrap()
            .events;
        assert_eq!(replay.last().map(|e| e.id), Some(mine));
        assert_eq!(replay.len(), a_before.len() + 1);

        // The same client message id as B's is a new job for A, not B's duplicate.
        let enqueued = jobs.enqueue(job(a)).await.unwrap();
        assert!(!enqueued.duplicate, "A's job taken for B's duplicate");
        assert_ne!(Some(&enqueued.id), b_job.as_ref());
        assert!(jobs.enqueue(job(a)).await.unwrap().duplicate);
    }

    let after = deployment.keys("*");
    for changed in before.symmetric_difference(&after) {
        let own = a.as_ref().is_some_and(|a| {
            changed.starts_with(a.prefix())
                || *changed == format!("{queue_prefix}idem:{}:msg-{n}", a.user().as_str())
                // The state of A's job, named after A.
                || changed.starts_with(&format!("{queue_prefix}status:{}:", a.user().as_str()))
                // Created by A's first job when no valid B enqueued before it.
                || *changed == format!("{queue_prefix}stream")
                || *changed == format!("{queue_prefix}users")
        });
        assert!(
            own,
            "{a_raw:?} changed a key outside its prefix: {changed:?}"
        );
    }
    if let Some(b) = &b {
        // B's idempotency marker still names B's job.
        let marker = format!("{queue_prefix}idem:{}:msg-{n}", b.user().as_str());
        assert!(after.contains(&marker), "{marker} missing");
        assert_eq!(
            manager
                .query::<Option<String>>(redis::cmd("GET").arg(&marker))
                .await
                .unwrap(),
            b_job
        );
    }
    if let Some(b) = &b {
        assert_eq!(
            fingerprints(manager, &after, b.prefix()).await,
            b_before,
            "{a_raw:?} changed keys of {b_raw:?}"
        );
        assert_eq!(
            cache.get(b, "shared").await.unwrap(),
            Some(b"b-value".to_vec())
        );
        assert_eq!(sessions.list(b).await.unwrap().len(), 1);
        let run = agents.get::<Value>(b, "run-1").await.unwrap().unwrap();
        assert_eq!((run.version, run.value), (1, json!({"owner": "b"})));
        let b_events: Vec<String> = events
            .replay_after(b, EventId::ZERO, 1000)
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(b_events.contains(&format!("b-event-{n}")));
        assert!(
            !b_events.contains(&format!("a-event-{n}")),
            "A's event in B's log"
        );
        cache.clear(b).await.unwrap();
        sessions.revoke_all(b).await.unwrap();
        agents.delete(b, "run-1").await.unwrap();
    }
    a.is_some() && b.is_some()
}

/// Whether a cache entry name is allowed, written from the documented rule (1-256
/// characters of `[A-Za-z0-9_.:/@-]`), not from the library's own check.
pub(super) fn is_valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/@-".contains(&b))
}

// ---------------------------------------------------------------------------------------
