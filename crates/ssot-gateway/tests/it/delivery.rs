//! Delivery: exactly once, in order, per user, across resumes and gateway instances.

use std::collections::HashMap;
use std::time::Duration;

use ssot_testkit::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_live_and_resume() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut publisher = Publisher::new(gw.addr);
    let early = publisher
        .publish("alice", "before", serde_json::json!({"n": 0}))
        .await
        .unwrap();

    // No resume id: delivery starts with events published after connecting.
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("alice", 60)).await;
    assert_eq!(got.statuses, ["ok"]);
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(
            publisher
                .publish("alice", "live", serde_json::json!({"n": n}))
                .await
                .unwrap(),
        );
    }
    assert!(read_events(&mut ws, &mut got, 3, Duration::from_secs(2)).await);
    let seen: Vec<&str> = got.events.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
    drop(ws);

    // Resume with ?after= : exactly the suffix.
    let mut ws = connect(&gw.ws_url(), &token("alice", 60), Some(&early))
        .await
        .unwrap();
    let mut again = Received::default();
    assert!(read_events(&mut ws, &mut again, 3, Duration::from_secs(2)).await);
    assert_eq!(again.events, got.events);

    // Resume frame: replays after the given id, never twice what was sent.
    send_text(
        &mut ws,
        &format!(r#"{{"type":"resume","after":"{}"}}"#, ids[0]),
    )
    .await;
    let mut more = Received::default();
    assert!(read_events(&mut ws, &mut more, 2, Duration::from_secs(2)).await);
    assert_eq!(more.events[..], got.events[1..]);
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    gw.shutdown().await;
}

/// 2 gateways, 200 sockets of 50 users over both, 5,000 events: each socket gets exactly its
/// user's events, once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_200_sockets_50_users_5000_events() {
    let server = RedisServer::start();
    let gateways = [
        TestGateway::start(manager(&server.url()).await).await,
        TestGateway::start(manager(&server.url()).await).await,
    ];
    let users: Vec<String> = (0..50).map(|u| format!("user-{u}")).collect();
    let mut readers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(200);
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    for s in 0..200 {
        let user = users[s % 50].clone();
        let url = gateways[s % 2].ws_url();
        let ready = ready_tx.clone();
        let mut stop = stop_tx.subscribe();
        readers.push(tokio::spawn(async move {
            let (mut ws, mut got) = connect_ready(&url, &token(&user, 600)).await;
            ready.send(()).await.unwrap();
            tokio::select! {
                _ = stop.recv() => {}
                _ = read_until(&mut ws, &mut got, Duration::from_secs(30), |_| false) => {}
            }
            (user, got)
        }));
    }
    for _ in 0..200 {
        ready_rx.recv().await.unwrap();
    }
    // 8 publishers, 625 events each, spread over both gateways.
    let mut pubs = Vec::new();
    for p in 0..8 {
        let addr = gateways[p % 2].addr;
        let users = users.clone();
        pubs.push(tokio::spawn(async move {
            let mut publisher = Publisher::new(addr);
            let mut acked: Vec<(String, String)> = Vec::new();
            for n in 0..625 {
                let user = &users[(p * 7 + n) % 50];
                let id = publisher
                    .publish(
                        user,
                        "tick",
                        serde_json::json!({"user": user, "p": p, "n": n}),
                    )
                    .await
                    .unwrap();
                acked.push((user.clone(), id));
            }
            acked
        }));
    }
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for p in pubs {
        for (user, id) in p.await.unwrap() {
            expected.entry(user).or_default().push(id);
        }
    }
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 5000);
    for ids in expected.values_mut() {
        ids.sort_by_key(|id| parse_id(id));
    }
    // Let delivery finish, then stop readers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(());
    for reader in readers {
        let (user, got) = reader.await.unwrap();
        let ids: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
        for (_, data) in &got.events {
            assert_eq!(
                data["user"],
                user.as_str(),
                "a socket of {user} saw another user's event"
            );
        }
        assert_eq!(
            &ids, &expected[&user],
            "socket of {user}: every event once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_closed_with_4000_and_resumes_without_loss() {
    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        slow_consumer_timeout_ms: Some(300),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let token = token("slow", 600);
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token).await;
    // ~24 MB while the client does not read: more than loopback socket buffers hold.
    let mut publisher = Publisher::new(gw.addr);
    let published = publish_big(&mut publisher, "slow", 400, 60 * 1024).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Reading again: what was sent, then the reconnect code.
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(10), |r| r
            .close
            .is_some())
        .await
    );
    assert_eq!(got.close, Some(4000), "slow consumer close code");
    assert!(got.events.len() < 400, "it was really cut off");
    let last = got.events.last().map(|(id, _)| id.clone());
    resume_rest(&gw, &token, last.as_deref(), got, &published).await;
}

/// The same delivery on a 3-master Redis Cluster, with two gateways sharing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_on_a_cluster() {
    let cluster = ssot_testkit::RedisCluster::start();
    let url = cluster.cluster_url();
    let a = TestGateway::start(manager(&url).await).await;
    let b = TestGateway::start(manager(&url).await).await;
    let users = ["c-alice", "c-bob", "c-carol", "c-dave"];
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let gw = if i % 2 == 0 { &a } else { &b };
        let (ws, got) = connect_ready(&gw.ws_url(), &token(user, 60)).await;
        sockets.push((user, ws, got));
    }
    let mut publisher = Publisher::new(b.addr);
    let mut expected: HashMap<&str, Vec<String>> = HashMap::new();
    for n in 0..40 {
        let user = users[n % users.len()];
        let id = publisher
            .publish(user, "e", serde_json::json!({"user": user, "n": n}))
            .await
            .unwrap();
        expected.entry(user).or_default().push(id);
    }
    for (user, ws, got) in &mut sockets {
        assert!(
            read_events(ws, got, 10, Duration::from_secs(3)).await,
            "{user}: {got:?}"
        );
        let ids: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(&ids, &expected[**user], "{user} on a cluster");
    }
}

/// A resume id older than the retention: the documented `history_truncated` frame first, then
/// the retained events up to the newest, then live ones — a gap is never silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_beyond_retention_says_history_truncated() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        event_max_len: Some(10),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let mut publisher = Publisher::new(gw.addr);
    let mut published = Vec::new();
    for n in 0..300 {
        published.push(
            publisher
                .publish("trim", "e", serde_json::json!({"n": n}))
                .await
                .unwrap(),
        );
    }
    let kept: usize = server
        .cli(&["XLEN", "ssot:{u:trim}:events"])
        .parse()
        .unwrap();
    assert!(kept < 290, "retention trimmed the stream (kept {kept})");

    let mut ws = connect(&gw.ws_url(), &token("trim", 60), Some(&published[0]))
        .await
        .unwrap();
    // Frames in arrival order: ("error", code), ("event", id), ("status", state).
    let mut frames: Vec<(String, String)> = Vec::new();
    let mut live = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while live
        .as_ref()
        .is_none_or(|id| frames.last().map(|f| &f.1) != Some(id))
    {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("frames in time")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        let detail = match kind.as_str() {
            "error" => v["code"].as_str().unwrap().to_owned(),
            "event" => v["id"].as_str().unwrap().to_owned(),
            "status" => v["redis"].as_str().unwrap().to_owned(),
            _ => continue,
        };
        frames.push((kind.clone(), detail));
        if kind == "status" && live.is_none() {
            live = Some(
                publisher
                    .publish("trim", "e", serde_json::json!({"n": "live"}))
                    .await
                    .unwrap(),
            );
        }
    }
    assert_eq!(
        frames[0],
        ("error".to_owned(), "history_truncated".to_owned()),
        "the truncation is announced before any event"
    );
    let events: Vec<&str> = frames
        .iter()
        .filter(|(kind, _)| kind == "event")
        .map(|(_, id)| id.as_str())
        .collect();
    let (replayed, after) = events.split_at(events.len() - 1);
    let suffix: Vec<&str> = published[published.len() - replayed.len()..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        replayed, suffix,
        "the retained events, in order, to the newest"
    );
    assert_eq!(replayed.len(), kept, "every retained event");
    assert_eq!(after, [live.unwrap().as_str()], "then live events");
    assert_eq!(
        frames.iter().filter(|(kind, _)| kind == "error").count(),
        1,
        "announced once"
    );
}

/// A client that does not read while a large replay is pending is a slow consumer like any
/// other: closed with 4000 (not left open and told `degraded`), then it resumes losslessly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_during_replay_is_closed_with_4000_and_resumes() {
    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        slow_consumer_timeout_ms: Some(1000),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let token = token("slow-replay", 600);
    let mut publisher = Publisher::new(gw.addr);
    let start = publisher
        .publish("slow-replay", "start", serde_json::json!({}))
        .await
        .unwrap();
    // ~19 MB to replay: more than loopback socket buffers hold.
    let published = publish_big(&mut publisher, "slow-replay", 600, 32 * 1024).await;
    let mut ws = connect(&gw.ws_url(), &token, Some(&start)).await.unwrap();
    // Not reading for twice the slow-consumer timeout, then reading everything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = Received::default();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(10), |r| r
            .close
            .is_some())
        .await,
        "closed"
    );
    assert_eq!(got.close, Some(4000), "slow consumer close code");
    assert!(
        !got.statuses.iter().any(|s| s == "degraded"),
        "a slow client is not a Redis outage: {:?}",
        got.statuses
    );
    assert!(got.events.len() < 600, "it was really cut off");
    let last = got.events.last().map_or(start, |(id, _)| id.clone());
    resume_rest(&gw, &token, Some(&last), got, &published).await;
}

/// Publishes `count` events of about `bytes` each to `user`; their ids.
async fn publish_big(
    publisher: &mut Publisher,
    user: &str,
    count: usize,
    bytes: usize,
) -> Vec<String> {
    let blob = "x".repeat(bytes);
    let mut published = Vec::new();
    for n in 0..count {
        published.push(
            publisher
                .publish(user, "big", serde_json::json!({"n": n, "blob": blob}))
                .await
                .unwrap(),
        );
    }
    published
}

/// Reconnects after `last` and checks that what the cut-off socket got, followed by what the
/// new one gets, is exactly `published`, and that the new socket says `ok`.
async fn resume_rest(
    gw: &TestGateway,
    token: &str,
    last: Option<&str>,
    got: Received,
    published: &[String],
) {
    let mut ws = connect(&gw.ws_url(), token, last).await.unwrap();
    let mut rest = Received::default();
    let want = published.len() - got.events.len();
    assert!(read_events(&mut ws, &mut rest, want, Duration::from_secs(10)).await);
    assert_eq!(rest.statuses, ["ok"]);
    let ids: Vec<String> = got
        .events
        .iter()
        .chain(&rest.events)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(ids, published, "resumed without loss or duplicates");
}
