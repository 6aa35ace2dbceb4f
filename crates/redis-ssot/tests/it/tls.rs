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
