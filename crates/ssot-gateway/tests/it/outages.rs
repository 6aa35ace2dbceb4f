//! Redis outages under publish load: no socket closed, nothing acknowledged lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssot_testkit::{FaultProxy, RedisServer};

use crate::delivery::parse_id;
use crate::support::*;

enum Fault {
    /// SIGKILL, then restart on the same port with AOF (appendfsync always).
    Kill,
    /// SIGSTOP for this long, then SIGCONT.
    Stop(Duration),
    /// Proxy blackhole for this long, then pass.
    Blackhole(Duration),
}

const USERS: usize = 10;
const SOCKETS: usize = 40;

async fn survive(fault: Fault) {
    let mut server = RedisServer::builder().aof(true).start();
    let proxy = FaultProxy::start(server.addr());
    let url = match fault {
        Fault::Blackhole(_) => proxy.url(),
        _ => server.url(),
    };
    let gateways = [
        TestGateway::start(manager(&url).await).await,
        TestGateway::start(manager(&url).await).await,
    ];
    let users: Vec<String> = (0..USERS).map(|u| format!("o{u}")).collect();

    // Sockets record everything they see.
    let mut sockets = Vec::new();
    for s in 0..SOCKETS {
        let user = users[s % USERS].clone();
        let mut ws = connect(&gateways[s % 2].ws_url(), &token(&user, 600), None)
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Received::default()));
        let sink = Arc::clone(&seen);
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                record(msg, &mut sink.lock().unwrap());
            }
            let mut r = sink.lock().unwrap();
            if r.close.is_none() {
                r.close = Some(1006);
            }
        });
        sockets.push((user, seen, reader));
    }
    wait_for("sockets say ok", Duration::from_secs(5), || {
        sockets.iter().all(|(_, seen, _)| {
            seen.lock().unwrap().statuses.last().map(String::as_str) == Some("ok")
        })
    })
    .await;

    // Publish load through both gateways until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut publishers = Vec::new();
    for p in 0..2 {
        let addr = gateways[p].addr;
        let users = users.clone();
        let stop = Arc::clone(&stop);
        publishers.push(tokio::spawn(async move {
            let mut publisher = Publisher::new(addr);
            let mut acked: Vec<(String, String)> = Vec::new();
            let mut refused = 0u32;
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let user = &users[(n * 3 + p) % USERS];
                n += 1;
                match publisher
                    .publish(
                        user,
                        "load",
                        serde_json::json!({"user": user, "p": p, "n": n}),
                    )
                    .await
                {
                    Ok(id) => acked.push((user.clone(), id)),
                    Err(answer) => {
                        assert!(
                            answer.status == 503 || answer.status == 0,
                            "only 503 (or a dropped request) while Redis is down: {answer:?}"
                        );
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The fault.
    match fault {
        Fault::Kill => {
            server.kill();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            wait_for("sockets degraded", Duration::from_secs(3), || {
                all_saw(&sockets, "degraded")
            })
            .await;
            server.restart();
        }
        Fault::Stop(pause) => {
            server.pause();
            wait_for("sockets degraded", Duration::from_secs(3), || {
                all_saw(&sockets, "degraded")
            })
            .await;
            tokio::time::sleep(pause).await;
            server.resume();
        }
        Fault::Blackhole(hold) => {
            proxy.blackhole();
            wait_for("sockets degraded", Duration::from_secs(3), || {
                all_saw(&sockets, "degraded")
            })
            .await;
            tokio::time::sleep(hold).await;
            proxy.pass();
        }
    }
    let healed = Instant::now();
    wait_for("every socket back to ok", Duration::from_secs(5), || {
        sockets.iter().all(|(_, seen, _)| {
            seen.lock().unwrap().statuses.last().map(String::as_str) == Some("ok")
        })
    })
    .await;
    eprintln!(
        "sockets back to ok {:?} after the fault healed",
        healed.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    let mut refused_total = 0;
    for p in publishers {
        let (acked, refused) = p.await.unwrap();
        refused_total += refused;
        for (user, id) in acked {
            expected.entry(user).or_default().push(id);
        }
    }
    assert!(refused_total > 0, "the fault was felt by publishers");
    let acked_total: usize = expected.values().map(Vec::len).sum();
    eprintln!("{acked_total} events acknowledged, {refused_total} refused");

    // Caught up: every acknowledged event of its user on every socket, once, in order.
    wait_for(
        "all acknowledged events delivered",
        Duration::from_secs(2),
        || {
            sockets.iter().all(|(user, seen, _)| {
                let got: HashSet<String> = seen
                    .lock()
                    .unwrap()
                    .events
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect();
                expected
                    .get(user)
                    .is_none_or(|ids| ids.iter().all(|id| got.contains(id)))
            })
        },
    )
    .await;
    for (user, seen, _) in &sockets {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.close, None, "socket of {user} was closed");
        assert!(
            seen.statuses.iter().any(|s| s == "degraded"),
            "socket of {user} was told degraded"
        );
        let ids: Vec<(u64, u64)> = seen.events.iter().map(|(id, _)| parse_id(id)).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "socket of {user}: in order, no duplicates"
        );
        for (_, data) in &seen.events {
            assert_eq!(
                data["user"],
                user.as_str(),
                "socket of {user} saw another user's event"
            );
        }
    }
}

/// A socket's user, what it saw, and its reader task.
type Socket = (String, Arc<Mutex<Received>>, tokio::task::JoinHandle<()>);

fn all_saw(sockets: &[Socket], status: &str) -> bool {
    sockets
        .iter()
        .all(|(_, seen, _)| seen.lock().unwrap().statuses.iter().any(|s| s == status))
}

async fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() {
    survive(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_10s_under_load() {
    survive(Fault::Stop(Duration::from_secs(10))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_blackholed_under_load() {
    survive(Fault::Blackhole(Duration::from_secs(3))).await;
}
