//! The manager against a real server: connection budget, faults, recovery, cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis_ssot::redis::{self, Value};
use redis_ssot::{BreakerState, Error, RedisManager, SubscriptionEvent};
use ssot_testkit::{ClientInfo, FaultProxy, RedisCluster, RedisServer};

use crate::support::{alive_tasks, connect, eventually, fast_config};

mod faults;

pub(super) fn set(key: &str, value: &str) -> redis::Cmd {
    redis::cmd("SET").arg(key).arg(value).clone()
}

pub(super) fn get(key: &str) -> redis::Cmd {
    redis::cmd("GET").arg(key).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_share_one_instance() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let other = manager.clone();
    assert_eq!(manager.instance_id(), other.instance_id());
    let from_task = tokio::spawn({
        let m = manager.clone();
        async move { m.instance_id().to_owned() }
    })
    .await
    .unwrap();
    assert_eq!(from_task, manager.instance_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)]
async fn global_manager_and_deprecated_aliases_are_one_instance() {
    ssot_testkit::own_process!(global_manager_and_deprecated_aliases_are_one_instance);
    let server = RedisServer::start();
    let global = redis_ssot::init(fast_config(&server.url())).unwrap();
    assert_eq!(redis_ssot::manager().instance_id(), global.instance_id());
    assert_eq!(
        redis_ssot::compat::auth_manager().instance_id(),
        global.instance_id()
    );
    assert_eq!(
        redis_ssot::compat::auth_manager().instance_id(),
        global.instance_id()
    );
    assert_eq!(
        redis_ssot::compat::cache_manager().instance_id(),
        global.instance_id()
    );
    // Same settings again: same instance; different settings: a clear error.
    assert_eq!(
        redis_ssot::init(fast_config(&server.url()))
            .unwrap()
            .instance_id(),
        global.instance_id()
    );
    let err = redis_ssot::init(redis_ssot::RedisConfig::for_url("redis://127.0.0.1:1").unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(global.wait_ready(Duration::from_secs(2)).await);
    let pong: String = redis_ssot::manager()
        .query(&redis::cmd("PING"))
        .await
        .unwrap();
    assert_eq!(pong, "PONG");
}

/// 10 components × 1,000 concurrent tasks: the server sees only the manager's named
/// connections, sampled every 10 ms while the load runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_components_thousand_tasks_use_only_named_connections() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let sampler = ClientSampler::start(&server);
    let mut joins = Vec::new();
    for component in 0..10 {
        let m = manager.clone();
        joins.push(tokio::spawn(async move {
            // Each component holds a subscription and runs a blocking read, like real ones do.
            let _sub = m
                .subscribe(&format!("component:{component}"))
                .await
                .unwrap();
            let blocking = {
                let m = m.clone();
                tokio::spawn(async move {
                    let stream = format!("stream:{component}");
                    let read = redis::cmd("XREAD")
                        .arg("BLOCK")
                        .arg(50)
                        .arg("STREAMS")
                        .arg(&stream)
                        .arg("$")
                        .clone();
                    // Ten readers share a pool of two: one that finds it busy for a whole
                    // command timeout is told to come back (as a real component would).
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        match m
                            .query_blocking::<Value>(&read, Duration::from_millis(50))
                            .await
                        {
                            Ok(_) => break,
                            Err(Error::Unavailable { retry_after, .. })
                                if Instant::now() < deadline =>
                            {
                                tokio::time::sleep(retry_after).await
                            }
                            Err(err) => panic!("blocking read failed: {err}"),
                        }
                    }
                })
            };
            let mut tasks = Vec::new();
            for task in 0..1000 {
                let m = m.clone();
                tasks.push(tokio::spawn(async move {
                    let key = format!("c{component}:t{task}");
                    m.query::<()>(&set(&key, "v")).await.unwrap();
                    let got: String = m.query(&get(&key)).await.unwrap();
                    assert_eq!(got, "v");
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            blocking.await.unwrap();
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    let seen = sampler.stop();
    assert!(
        seen.samples >= 5,
        "only {} samples during the load",
        seen.samples
    );
    let most = |role: &str| seen.most.get(role).copied().unwrap_or(0);
    // One command connection, one subscriber, the blocking pool filled to its size of 2 by
    // ten concurrent readers; never one more at any sample.
    assert_eq!(most("ssot:test:command"), 1, "{seen:#?}");
    assert_eq!(most("ssot:test:subscriber"), 1, "{seen:#?}");
    assert_eq!(most("ssot:test:blocking"), 2, "{seen:#?}");
    assert!(
        seen.most_ours <= 4,
        "at most 1 + 1 + pool size connections: {seen:#?}"
    );
    assert!(
        seen.foreign.is_empty(),
        "connections not owned by the manager: {seen:#?}"
    );
}

/// The most connections of each name the server listed at any one sample, and any client
/// that is not the manager's.
#[derive(Debug, Default)]
pub(super) struct ClientsSeen {
    samples: usize,
    most: HashMap<String, usize>,
    most_ours: usize,
    foreign: Vec<ClientInfo>,
}

/// Samples `CLIENT LIST` every 10 ms on a thread of its own until stopped.
pub(super) struct ClientSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Vec<ClientInfo>>>,
}

impl ClientSampler {
    fn start(server: &RedisServer) -> ClientSampler {
        let mut lister = server.client_lister();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut samples = Vec::new();
                // One last sample after the stop, so the end state is seen too.
                let mut last = false;
                while !last {
                    last = stop.load(Ordering::Relaxed);
                    samples.push(lister.list());
                    std::thread::sleep(Duration::from_millis(10));
                }
                samples
            }
        });
        ClientSampler { stop, thread }
    }

    /// A connection is caught between its connect and its `CLIENT SETNAME` now and then:
    /// it counts under the name it has in any sample.
    fn stop(self) -> ClientsSeen {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap();
        let names: HashMap<u64, String> = samples
            .iter()
            .flatten()
            .filter(|c| c.name.starts_with("ssot:test:"))
            .map(|c| (c.id, c.name.clone()))
            .collect();
        let mut seen = ClientsSeen {
            samples: samples.len(),
            ..ClientsSeen::default()
        };
        for sample in samples {
            let mut counts = HashMap::<&str, usize>::new();
            for client in sample {
                match names.get(&client.id) {
                    Some(name) => *counts.entry(name).or_default() += 1,
                    None => seen.foreign.push(client),
                }
            }
            seen.most_ours = seen.most_ours.max(counts.values().sum());
            for (name, n) in counts {
                let most = seen.most.entry(name.to_owned()).or_default();
                *most = (*most).max(n);
            }
        }
        seen
    }
}

/// A `BLPOP` on the blocking pool, woken by an `RPUSH` on the command connection.
pub(super) async fn blocking_pop_woken_by_push(
    manager: &RedisManager,
    list: &str,
) -> redis_ssot::Result<Value> {
    let reader = {
        let (m, list) = (manager.clone(), list.to_owned());
        tokio::spawn(async move {
            m.query_blocking::<Value>(redis::cmd("BLPOP").arg(list).arg(2), Duration::from_secs(2))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    manager
        .query::<()>(redis::cmd("RPUSH").arg(list).arg("job"))
        .await
        .unwrap();
    reader.await.unwrap()
}

/// A `BLPOP` reply as `(list, value)`; `None` for anything else (a timeout's nil).
pub(super) fn popped_job(reply: &Value) -> Option<(&str, &str)> {
    fn text(v: &Value) -> Option<&str> {
        match v {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
    match reply {
        Value::Array(pair) if pair.len() == 2 => Some((text(&pair[0])?, text(&pair[1])?)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_when_last_local_subscriber_drops() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let a = manager.subscribe("c").await.unwrap();
    let mut b = manager.subscribe("c").await.unwrap();
    assert_eq!(
        manager.publish("c", "1").await.unwrap(),
        1,
        "one Redis subscription shared"
    );
    drop(a);
    assert_eq!(
        b.recv().await,
        Some(SubscriptionEvent::Message(Bytes::from_static(b"1")))
    );
    drop(b);
    eventually(Duration::from_secs(2), "unsubscribed", || {
        let m = manager.clone();
        async move { m.publish("c", "2").await.unwrap() == 0 }
    })
    .await;
    assert_eq!(manager.subscribed_channels(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_pipelines_and_blocking_commands() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let script = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let n: i64 = manager
        .run_script(script.key("counter").arg(5))
        .await
        .unwrap();
    assert_eq!(n, 5);
    server.cli(&["SCRIPT", "FLUSH"]);
    let n: i64 = manager
        .run_script(script.key("counter").arg(2))
        .await
        .unwrap();
    assert_eq!(n, 7, "reloads the script after NOSCRIPT");
    let (a, b): (i64, i64) = manager
        .pipeline(redis::pipe().atomic().incr("x", 1).incr("x", 1))
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    // A script error is the caller's problem: not transient, breaker untouched.
    let bad = redis::Script::new("return redis.call('NOPE')");
    let err = manager
        .run_script::<()>(&bad.prepare_invoke())
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(manager.breaker_state(), BreakerState::Closed);
    // A blocking read is woken by a write on the command connection.
    let popped = blocking_pop_woken_by_push(&manager, "queue").await.unwrap();
    assert_eq!(popped_job(&popped), Some(("queue", "job")), "{popped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_manager_stops_its_tasks_and_connections() {
    let server = RedisServer::start();
    let before = alive_tasks();
    let manager = connect(&server.url()).await;
    let _: Value = manager
        .query_blocking(
            redis::cmd("BLPOP").arg("none").arg("0.05"),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    assert!(alive_tasks() > before);
    drop(manager);
    eventually(Duration::from_secs(3), "tasks stopped", || async move {
        alive_tasks() <= before
    })
    .await;
    eventually(Duration::from_secs(3), "connections closed", || {
        let server = &server;
        let done = !server
            .client_list()
            .iter()
            .any(|c| c.name.starts_with("ssot:"));
        async move { done }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_basic_suite() {
    let cluster = RedisCluster::start();
    let manager = RedisManager::connect(fast_config(&cluster.cluster_url()))
        .await
        .unwrap();
    assert!(manager.config().is_cluster());
    // Keys spread over every slot range still work through one API.
    for i in 0..200 {
        manager
            .query::<()>(&set(&format!("key:{i}"), &i.to_string()))
            .await
            .unwrap();
    }
    for i in 0..200 {
        let v: String = manager.query(&get(&format!("key:{i}"))).await.unwrap();
        assert_eq!(v, i.to_string());
    }
    // Per-user keys share a slot through their hash tag: scripts and transactions over them work.
    let script = redis::Script::new(
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])",
    );
    let n: i64 = manager
        .run_script(
            script
                .key("ssot:{u:alice}:a")
                .key("ssot:{u:alice}:b")
                .arg("x"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (a, b): (i64, i64) = manager
        .pipeline(
            redis::pipe()
                .atomic()
                .incr("ssot:{u:bob}:x", 1)
                .incr("ssot:{u:bob}:y", 1),
        )
        .await
        .unwrap();
    assert_eq!((a, b), (1, 1));
    // Pub/Sub across the cluster.
    let mut sub = manager.subscribe("cluster-news").await.unwrap();
    manager.publish("cluster-news", "hello").await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(2), sub.recv())
        .await
        .unwrap();
    assert_eq!(
        msg,
        Some(SubscriptionEvent::Message(Bytes::from_static(b"hello")))
    );
    // Blocking commands: the pop returns the pushed value (a timed-out BLPOP would be nil).
    let popped = blocking_pop_woken_by_push(&manager, "{q}:jobs")
        .await
        .unwrap();
    assert_eq!(popped_job(&popped), Some(("{q}:jobs", "job")), "{popped:?}");
    // Every node sees the manager's named connections.
    for node in cluster.nodes() {
        let names: Vec<String> = node.client_list().into_iter().map(|c| c.name).collect();
        assert!(names.iter().any(|n| n == "ssot:test:command"), "{names:?}");
    }
}
