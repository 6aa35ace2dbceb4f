//! `rediss://`: the manager over TLS against a real TLS-enabled redis-server.

use std::time::Duration;

use redis_ssot::redis;
use redis_ssot::{Error, RedisConfig, RedisManager, SubscriptionEvent, TlsOptions};
use ssot_testkit::RedisServer;

use crate::support::{eventually, fast_options};

fn tls_config(server: &RedisServer, ca_file: Option<std::path::PathBuf>) -> RedisConfig {
    let mut options = fast_options(&server.tls_url());
    options.tls = Some(TlsOptions {
        ca_file,
        ..TlsOptions::default()
    });
    options.resolve().expect("TLS settings resolve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_subscriptions_run_over_tls_and_survive_a_restart() {
    let mut server = RedisServer::builder().tls(true).start();
    let tls_port = server.tls_url().rsplit(':').next().unwrap().to_owned();
    let manager = RedisManager::connect(tls_config(&server, Some(server.tls_ca_file())))
        .await
        .expect("connects over TLS");

    let _: () = manager
        .query(redis::cmd("SET").arg("k").arg("over tls"))
        .await
        .unwrap();
    let got: String = manager.query(redis::cmd("GET").arg("k")).await.unwrap();
    assert_eq!(got, "over tls");
    // Every connection of the manager is on the TLS port, none on the plain one.
    let named: Vec<_> = server
        .client_list()
        .into_iter()
        .filter(|c| c.name.starts_with("ssot:test:"))
        .collect();
    assert!(!named.is_empty());
    for client in &named {
        let laddr = client.fields.get("laddr").cloned().unwrap_or_default();
        assert!(
            laddr.ends_with(&format!(":{tls_port}")),
            "{} on {laddr}",
            client.name
        );
    }

    let mut sub = manager.subscribe("news").await.unwrap();
    let _: u64 = manager.publish("news", "one").await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(2), sub.recv()).await,
        Ok(Some(SubscriptionEvent::Message(m))) if m.as_ref() == b"one"
    ));

    server.restart();
    eventually(
        Duration::from_secs(3),
        "TLS command connection back",
        || async { manager.query::<String>(&redis::cmd("PING")).await.is_ok() },
    )
    .await;
    // The shared subscriber reconnected over TLS and resubscribed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    'published: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message within 3 s of the restart"
        );
        let _: u64 = manager.publish("news", "two").await.unwrap_or(0);
        loop {
            match tokio::time::timeout(Duration::from_millis(100), sub.recv()).await {
                Ok(Some(SubscriptionEvent::Message(m))) if m.as_ref() == b"two" => break 'published,
                Ok(Some(_)) => continue,
                _ => continue 'published,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_is_refused_and_named() {
    let server = RedisServer::builder().tls(true).start();
    // No ca-file: the system's trust store, which does not know the kit's throwaway CA.
    let manager = RedisManager::new(tls_config(&server, None)).unwrap();
    assert!(!manager.wait_ready(Duration::from_millis(800)).await);
    let err = manager
        .query::<String>(&redis::cmd("PING"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let mut health = manager.watch_health();
    let reason = tokio::time::timeout(
        Duration::from_secs(3),
        health.wait_for(|h| h.last_error.is_some()),
    )
    .await
    .expect("a health report")
    .unwrap()
    .last_error
    .clone()
    .unwrap();
    assert!(
        reason.to_lowercase().contains("certificate"),
        "the reason names the certificate: {reason}"
    );
}

#[test]
fn tls_settings_are_checked_with_the_key_named() {
    let not_pem = std::env::temp_dir().join(format!("ssot-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let not_pem = not_pem.display().to_string();
    let key = |toml: &str| match redis_ssot::RedisOptions::from_toml(toml).unwrap().resolve() {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected a config error for {toml:?}, got {other:?}"),
    };
    // Unreadable.
    assert_eq!(
        key("url = \"rediss://h:1\"\n[tls]\nca-file = \"/nonexistent/ca.pem\""),
        "redis.tls.ca-file"
    );
    // Not PEM.
    assert_eq!(
        key(&format!(
            "url = \"rediss://h:1\"\n[tls]\nca-file = \"{not_pem}\""
        )),
        "redis.tls.ca-file"
    );
    // Certificates without a rediss:// URL.
    assert_eq!(
        key(&format!(
            "url = \"redis://h:1\"\n[tls]\nca-file = \"{not_pem}\""
        )),
        "redis.tls.ca-file"
    );
    // A client certificate without its key.
    assert_eq!(
        key(&format!(
            "url = \"rediss://h:1\"\n[tls]\ncert-file = \"{not_pem}\""
        )),
        "redis.tls.key-file"
    );
    assert_eq!(key("url = \"rediss://h:1, redis://h:2\""), "redis.url");
    assert_eq!(key("url = \"rediss://h:1/#insecure\""), "redis.url");
    let cluster = redis_ssot::RedisOptions::from_toml("url = \"rediss+cluster://a:1,b:2\"")
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(
        cluster.topology,
        redis_ssot::Topology::Cluster(vec!["rediss://a:1".into(), "rediss://b:2".into()])
    );
    assert!(cluster.tls.is_some());
    let _ = std::fs::remove_file(&not_pem);
}

/// Issue 10 section 6: a 3-master Cluster with a replica per master, TLS everywhere (clients,
/// bus, replication). Commands reach every shard over TLS, sharded and classic pub/sub
/// deliver, and after a master's SIGKILL the promoted replica, which got the user's log by
/// TLS replication, serves the user over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pubsub_and_a_failover_run_over_tls_on_a_cluster() {
    use redis_ssot::UserScope;
    use redis_ssot::stores::events::{Events, LiveEvent};
    use serde_json::value::RawValue;

    let cluster = tokio::task::spawn_blocking(|| ssot_testkit::RedisCluster::with_tls(3, 1))
        .await
        .unwrap();
    let mut options = fast_options(&cluster.tls_cluster_url());
    options.tls = Some(TlsOptions {
        ca_file: Some(cluster.tls_ca_file()),
        ..TlsOptions::default()
    });
    // Six TLS handshakes per connection: more than the fast 300 ms on a loaded machine.
    options.connect_timeout_ms = Some(2000);
    let manager = RedisManager::connect(options.resolve().unwrap())
        .await
        .expect("connects over TLS");

    // Commands on every shard.
    for n in 0..30 {
        let key = format!("{{u:tls-{n}}}:k");
        let _: () = manager
            .query(redis::cmd("SET").arg(&key).arg(n))
            .await
            .unwrap();
        let got: u32 = manager.query(redis::cmd("GET").arg(&key)).await.unwrap();
        assert_eq!(got, n);
    }
    // The manager's connections and the replication links are all on TLS ports.
    for master in cluster.masters() {
        let node = &cluster.nodes()[master];
        let tls_port = format!(":{}", node.tls_port().unwrap());
        let clients = node.client_list();
        let ours: Vec<_> = clients
            .iter()
            .filter(|c| c.name.starts_with("ssot:test:") || c.flags.contains('S'))
            .collect();
        assert!(ours.iter().any(|c| c.flags.contains('S')), "{clients:?}");
        assert!(
            ours.iter().any(|c| c.name == "ssot:test:command"),
            "{clients:?}"
        );
        for client in ours {
            let laddr = client.fields.get("laddr").cloned().unwrap_or_default();
            assert!(
                laddr.ends_with(&tls_port),
                "{} ({}) on {laddr}",
                client.name,
                client.flags
            );
        }
    }

    // Sharded pub/sub (a user's events) and classic pub/sub.
    let events = Events::new(manager.clone());
    let user = UserScope::parse("tls-user").unwrap();
    let victim = cluster.master_of_slot(cluster.key_slot(&format!("{{u:{}}}", user.user())));
    let mut live = events.subscribe(&user).await.unwrap();
    let mut news = manager.subscribe("news").await.unwrap();
    let data = RawValue::from_string("{\"n\":1}".to_owned()).unwrap();
    let first = events.append(&user, "tick", &data).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), live.recv()).await {
        Ok(Some(LiveEvent::Event(frame))) => assert_eq!(frame.id(), first),
        other => panic!("before the failover: {other:?}"),
    }
    let _: u64 = manager.publish("news", "one").await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(2), news.recv()).await,
        Ok(Some(SubscriptionEvent::Message(m))) if m.as_ref() == b"one"
    ));

    // The user's master dies; its replica, promoted, serves the user over TLS.
    let (cluster, promoted, _) = crate::failover::fail_over(cluster, victim).await;
    let second = crate::support::append_when_served(&events, &user, &data).await;
    let replay = events
        .replay_after(&user, redis_ssot::stores::events::EventId::ZERO, 10)
        .await
        .unwrap();
    let ids: Vec<_> = replay.events.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [first, second],
        "the log survived on the promoted replica"
    );
    // The live subscription follows the slot to the promoted node: new events arrive live
    // again (after a Gap that tells the reader to replay what it missed).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut gaps = 0;
    'live: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live event on the promoted node within 15 s ({gaps} gaps)"
        );
        let id = events.append(&user, "tick", &data).await.unwrap();
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(got) = tokio::time::timeout_at(until, live.recv()).await {
            match got {
                Some(LiveEvent::Event(frame)) if frame.id() == id => break 'live,
                Some(LiveEvent::Event(_)) => {}
                Some(LiveEvent::Gap) => gaps += 1,
                other => panic!("after the failover: {other:?}"),
            }
        }
    }
    let promoted_node = &cluster.nodes()[promoted];
    let tls_port = format!(":{}", promoted_node.tls_port().unwrap());
    let on_promoted: Vec<_> = promoted_node
        .client_list()
        .into_iter()
        .filter(|c| c.name.starts_with("ssot:test:"))
        .collect();
    assert!(!on_promoted.is_empty());
    for client in on_promoted {
        let laddr = client.fields.get("laddr").cloned().unwrap_or_default();
        assert!(laddr.ends_with(&tls_port), "{} on {laddr}", client.name);
    }
    drop(cluster);
}
