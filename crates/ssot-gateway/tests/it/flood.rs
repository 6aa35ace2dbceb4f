//! The replay flood of issue 12 (finding 1) through the gateway: one user's stream holds
//! 10,000 events (1 in 6 of 8 KB) and 300 sockets of that user open with `?after=0-0`.
//! Another user's socket never sees `degraded`, every publish to them returns 200, and
//! their p99 stays under 50 ms. Once with the per-user caps raised so all 300 replay, once
//! with the defaults, where the flood is refused with the documented codes.
//!
//! The flooding sockets are raw TCP connections that upgrade and then read and discard
//! everything: the test process spends no time parsing frames, the gateway sends as fast
//! as it can.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis_ssot::stores::events::Events;
use redis_ssot::{BreakerState, RedisManager, UserScope};
use serde_json::value::RawValue;
use ssot_gateway::GatewayOptions;
use ssot_testkit::{RedisServer, flood};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support::{
    Publisher, Received, TestGateway, connect_ready, manager, raw_upgrade, read_events, token,
};

/// Events in the flooding user's stream.
const EVENTS: usize = 10_000;
/// Sockets the flooding user opens.
const FLOOD: usize = 300;
/// How long the other user publishes while the flood runs.
const MEASURED: Duration = Duration::from_secs(6);

/// How a flooding socket's handshake ended.
enum Opened {
    /// Upgraded: a task reads and discards until its runtime stops.
    Draining,
    /// Refused: the HTTP status and the error code of the body.
    Refused(u16, String),
}

/// Upgrades a raw connection for `token`, resuming after `0-0`, then reads and discards
/// everything the gateway sends, counting the bytes in `drained`.
async fn flood_socket(addr: SocketAddr, token: &str, drained: Arc<AtomicU64>) -> Opened {
    let upgraded = raw_upgrade(addr, token, "0-0").await;
    if upgraded.status != 101 {
        let body: serde_json::Value = serde_json::from_str(&upgraded.body).unwrap();
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Opened::Refused(upgraded.status, code);
    }
    let mut conn = upgraded.conn;
    tokio::spawn(async move {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = conn.read(&mut buffer).await {
            drained.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    Opened::Draining
}

/// Seeds `user`'s stream with the flood's [`EVENTS`] events, through the library.
async fn seed(manager: &RedisManager, user: &str) {
    let events = Events::new(manager.clone());
    let user = UserScope::parse(user).unwrap();
    flood::seed(EVENTS, move |n| {
        let (events, user) = (events.clone(), user.clone());
        async move {
            let data = RawValue::from_string(flood::event_data(n)).unwrap();
            match events.append(&user, "tool_executing", &data).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_transient() => Err(err.to_string()),
                Err(err) => panic!("seeding: {err}"),
            }
        }
    })
    .await;
}

/// What the flood's sockets got.
struct Flood {
    accepted: usize,
    /// `(status, code)` of each refused handshake.
    refused: Vec<(u16, String)>,
    drained: Arc<AtomicU64>,
    /// The runtime the flooding sockets run on.
    clients: Option<tokio::runtime::Runtime>,
}

/// Opens [`FLOOD`] sockets of `user`, all resuming after `0-0`. They run on a runtime of
/// their own, as if in another process: their reads do not queue behind the gateway's
/// tasks, nor the gateway's behind theirs.
async fn open_flood(addr: SocketAddr, user: &str) -> Flood {
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let drained = Arc::new(AtomicU64::new(0));
    let opening = clients.spawn({
        let (token, drained) = (token(user, 600), Arc::clone(&drained));
        async move {
            let mut opened = Vec::new();
            for _ in 0..FLOOD {
                opened.push(flood_socket(addr, &token, Arc::clone(&drained)).await);
            }
            opened
        }
    });
    let mut flood = Flood {
        accepted: 0,
        refused: Vec::new(),
        drained,
        clients: Some(clients),
    };
    for opened in opening.await.unwrap() {
        match opened {
            Opened::Draining => flood.accepted += 1,
            Opened::Refused(status, code) => flood.refused.push((status, code)),
        }
    }
    flood
}

impl Flood {
    /// Closes the flooding sockets; the bytes they got.
    fn stop(&mut self) -> u64 {
        if let Some(clients) = self.clients.take() {
            clients.shutdown_background();
        }
        self.drained.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Notes whether the manager's breaker ever left Closed or its health said unhealthy.
struct Watch {
    left_closed: Arc<AtomicBool>,
    unhealthy: Arc<AtomicU64>,
    tasks: [JoinHandle<()>; 2],
}

impl Watch {
    fn start(manager: &RedisManager) -> Watch {
        let left_closed = Arc::new(AtomicBool::new(false));
        let unhealthy = Arc::new(AtomicU64::new(0));
        let mut breaker = manager.watch_breaker();
        let mut health = manager.watch_health();
        let breaker_task = {
            let left_closed = Arc::clone(&left_closed);
            tokio::spawn(async move {
                while breaker.changed().await.is_ok() {
                    if *breaker.borrow_and_update() != BreakerState::Closed {
                        left_closed.store(true, Ordering::Release);
                    }
                }
            })
        };
        let health_task = {
            let unhealthy = Arc::clone(&unhealthy);
            tokio::spawn(async move {
                while health.changed().await.is_ok() {
                    if !health.borrow_and_update().healthy {
                        unhealthy.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Watch {
            left_closed,
            unhealthy,
            tasks: [breaker_task, health_task],
        }
    }

    /// Stops watching; asserts the breaker stayed closed and health stayed good.
    fn assert_untouched(self, manager: &RedisManager) {
        for task in self.tasks {
            task.abort();
        }
        assert!(
            !self.left_closed.load(Ordering::Acquire),
            "the breaker left Closed"
        );
        assert_eq!(manager.breaker_state(), BreakerState::Closed);
        assert_eq!(
            self.unhealthy.load(Ordering::Relaxed),
            0,
            "health reports said unhealthy"
        );
    }
}

/// The other user, `calm`, during the flood: an open socket, and a publish every 10 ms for
/// [`MEASURED`]. Asserts every publish returned 200 with p99 under 50 ms, and the socket
/// got every event, in order, and no status but its first `ok`.
async fn calm_user_is_untouched(gw: &TestGateway) {
    let (mut ws, first) = connect_ready(&gw.ws_url(), &token("calm", 600)).await;
    assert_eq!(first.statuses, ["ok"]);
    let mut publisher = Publisher::new(gw.addr);
    let (mut ids, mut latencies, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let until = Instant::now() + MEASURED;
    let mut n = 0;
    while Instant::now() < until {
        let start = Instant::now();
        match publisher
            .publish("calm", "message", serde_json::json!({ "n": n }))
            .await
        {
            Ok(id) => {
                latencies.push(start.elapsed());
                ids.push(id);
            }
            Err(answer) => failures.push(format!("{} {}", answer.status, answer.body)),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {n} publishes failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "calm user: {} publishes, p50 {:?}, p99 {p99:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(
        p99 < Duration::from_millis(50),
        "p99 {p99:?} over {} publishes",
        latencies.len()
    );
    let mut got = Received::default();
    assert!(
        read_events(&mut ws, &mut got, ids.len(), Duration::from_secs(10)).await,
        "the calm socket got {} of {} events",
        got.events.len(),
        ids.len()
    );
    let delivered: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(delivered, ids, "every event once, in order");
    assert!(got.statuses.is_empty(), "status frames: {:?}", got.statuses);
    assert!(got.errors.is_empty(), "error frames: {:?}", got.errors);
    assert_eq!(got.close, None);
}

/// The counter `name{labels}` in `/metrics` (0 when absent).
async fn counter(addr: SocketAddr, sample: &str) -> u64 {
    let body = crate::support::get(addr, "/metrics").await.body;
    body.lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The flood under way: a seeded stream, a gateway, the flooding sockets open, and the
/// manager watched from before the first socket.
struct Scene {
    _server: RedisServer,
    manager: RedisManager,
    watch: Watch,
    gw: TestGateway,
    flood: Flood,
}

impl Scene {
    /// Seeds the `hot` user's stream, starts a gateway with `options`, opens the flood's
    /// sockets and lets their replays build up. Every refused socket got the per-user cap's
    /// documented answer.
    async fn start(options: GatewayOptions) -> Scene {
        let server = RedisServer::start();
        let manager = manager(&server.url()).await;
        seed(&manager, "hot").await;
        let watch = Watch::start(&manager);
        let gw = TestGateway::start_with(manager.clone(), options).await;
        let flood = open_flood(gw.addr, "hot").await;
        eprintln!(
            "flood: {} of {FLOOD} sockets accepted, {} refused",
            flood.accepted,
            flood.refused.len()
        );
        for (status, code) in &flood.refused {
            assert_eq!((*status, code.as_str()), (429, "too_many_user_sockets"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Scene {
            _server: server,
            manager,
            watch,
            gw,
            flood,
        }
    }
}

/// Per-user caps raised so every one of the 300 sockets replays at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_flood_through_the_gateway_leaves_others_untouched() {
    let options = GatewayOptions {
        max_sockets_per_user: Some(FLOOD),
        max_replays_per_user: Some(FLOOD),
        max_replays: Some(FLOOD),
        replay_wait_ms: Some(60_000),
        ..Default::default()
    };
    let mut scene = Scene::start(options).await;
    assert!(
        scene.flood.accepted > FLOOD / 2,
        "the flood got its sockets"
    );

    calm_user_is_untouched(&scene.gw).await;

    let replayed = counter(scene.gw.addr, "ssot_gateway_events_replayed_total").await;
    let drained = scene.flood.stop();
    eprintln!(
        "flood: {replayed} events replayed, {} MB sent to the flooding sockets",
        drained / 1_000_000
    );
    // The flood ran: more than a whole stream's worth of events went out.
    assert!(replayed > EVENTS as u64, "{replayed} events replayed");
    scene.watch.assert_untouched(&scene.manager);
    // The replays ran on their own connection.
    let names = scene.manager.open_connections();
    assert!(names.iter().any(|n| n == "ssot:gw:bulk"), "{names:?}");
    scene.gw.shutdown().await;
}

/// With the default caps, the flood is refused with the documented codes: 16 sockets, 2
/// replays at a time, every other handshake 429 `too_many_user_sockets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_flood_under_default_caps_is_refused_and_leaves_others_untouched() {
    let mut scene = Scene::start(GatewayOptions::default()).await;
    let per_user = ssot_gateway::config::DEFAULT_MAX_SOCKETS_PER_USER;
    assert_eq!(scene.flood.accepted, per_user);
    assert_eq!(scene.flood.refused.len(), FLOOD - per_user);

    calm_user_is_untouched(&scene.gw).await;

    let refusals = counter(
        scene.gw.addr,
        "ssot_gateway_budget_refusals_total{budget=\"sockets_per_user\"}",
    )
    .await;
    assert_eq!(refusals, (FLOOD - per_user) as u64, "refusals counted");
    let drained = scene.flood.stop();
    eprintln!(
        "flood: {} MB sent to the flooding sockets",
        drained / 1_000_000
    );
    assert!(drained > 0, "the accepted sockets replayed");
    scene.watch.assert_untouched(&scene.manager);
    scene.gw.shutdown().await;
}
