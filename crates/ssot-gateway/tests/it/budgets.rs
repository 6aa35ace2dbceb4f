//! Per-user budgets (issue 12): replays wait for a slot, and what a socket may hold.

use std::time::Duration;

use futures_util::StreamExt;
use ssot_testkit::{FaultProxy, RedisServer};

use crate::support::{
    Publisher, Received, TestGateway, connect, connect_ready, manager, read_until, record, token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_sockets_wait_for_a_replay_slot_then_get_4001() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let options = ssot_gateway::GatewayOptions {
        max_replays_per_user: Some(1),
        replay_wait_ms: Some(100),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&proxy.url()).await, options).await;
    let mut publisher = Publisher::new(gw.addr);
    for n in 0..10 {
        publisher
            .publish("replayer", "e", serde_json::json!({ "n": n }))
            .await
            .unwrap();
    }
    publisher
        .publish("bystander", "e", serde_json::json!({ "n": 0 }))
        .await
        .unwrap();
    // Every read from Redis now takes ~300 ms (below the 400 ms command timeout).
    proxy.delay(Duration::from_millis(150));
    let url = gw.ws_url();
    let sockets = futures_util::future::join_all((0..4).map(|_| {
        let url = url.clone();
        async move {
            connect(&url, &token("replayer", 60), Some("0-0"))
                .await
                .unwrap()
        }
    }))
    .await;
    let (mut bystander, mut seen) = (
        connect(&url, &token("bystander", 60), Some("0-0"))
            .await
            .unwrap(),
        Received::default(),
    );
    let mut closed_4001 = 0;
    let mut complete = 0;
    for mut ws in sockets {
        let mut got = Received::default();
        read_until(&mut ws, &mut got, Duration::from_secs(10), |r| {
            r.close.is_some() || r.events.len() == 10
        })
        .await;
        match got.close {
            Some(4001) => closed_4001 += 1,
            None if got.events.len() == 10 => complete += 1,
            other => panic!("unexpected end {other:?} after {} events", got.events.len()),
        }
    }
    assert!(
        closed_4001 >= 1,
        "one replay at a time: the others waited and got 4001"
    );
    assert!(
        complete >= 1,
        "the socket holding the slot replayed everything"
    );
    // The slots are per user: another user's replay is not held up.
    assert!(
        read_until(&mut bystander, &mut seen, Duration::from_secs(5), |r| r
            .events
            .len()
            == 1)
        .await
    );
    assert_eq!(seen.close, None);
}

/// A reader that keeps reading, only slower than its events come: once it is more than
/// `max-queued-bytes` (1 MiB) behind, it is closed with 4000 and resumes without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_reader_is_closed_with_4000_once_too_far_behind() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let token = token("steady", 600);
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token).await;
    let addr = gw.addr;
    // 24 MB in 60 KB events, as fast as the publish API takes them.
    let publishing = tokio::spawn(async move {
        let mut publisher = Publisher::new(addr);
        let blob = "x".repeat(60 * 1024);
        let mut ids = Vec::new();
        for n in 0..400 {
            let data = serde_json::json!({ "n": n, "blob": blob });
            ids.push(publisher.publish("steady", "big", data).await.unwrap());
        }
        ids
    });
    // One frame every 20 ms (3 MB/s): never stalled for long, so no write waits 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.close.is_none() && got.events.len() < 400 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(6), ws.next()).await {
            Ok(Some(Ok(message))) => record(message, &mut got),
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let published = publishing.await.unwrap();
    assert_eq!(
        got.close,
        Some(4000),
        "after {} of 400 events",
        got.events.len()
    );
    assert!(got.events.len() < 400);
    // Resuming gets exactly the rest, in order.
    let last = got.events.last().map(|(id, _)| id.clone());
    let mut resumed = connect(&gw.ws_url(), &token, last.as_deref())
        .await
        .unwrap();
    let mut rest = Received::default();
    let missing = published.len() - got.events.len();
    assert!(
        read_until(&mut resumed, &mut rest, Duration::from_secs(20), |r| r
            .events
            .len()
            >= missing)
        .await
    );
    let mut ids: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
    ids.extend(rest.events.iter().map(|(id, _)| id.clone()));
    assert_eq!(ids, published, "nothing lost, nothing twice");
}

/// Reads frames until an `ack` or `error` arrives: `Ok(job id)` or `Err((code,
/// retry_after_ms))`.
async fn answer(ws: &mut crate::support::Ws) -> Result<String, (String, Option<u64>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("an answer to the message")
            .unwrap()
            .unwrap();
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
            continue;
        };
        let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        match frame["type"].as_str() {
            Some("ack") => return Ok(frame["job"].as_str().unwrap().to_owned()),
            Some("error") => {
                return Err((
                    frame["code"].as_str().unwrap().to_owned(),
                    frame["retry_after_ms"].as_u64(),
                ));
            }
            _ => {}
        }
    }
}

/// One user with one token cannot fill the agent queue's backlog: past
/// `agent-queue-max-per-user` their messages get `user_queue_full`, while another user's
/// message is stored (not `queue_full`) and runs. A job counts until it is acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_fill_the_agent_queue_for_others() {
    use redis_ssot::stores::chat::CHAT_QUEUE;
    use redis_ssot::stores::jobs::Jobs;

    let server = RedisServer::start();
    let manager = manager(&server.url()).await;
    let options = ssot_gateway::GatewayOptions {
        agent_queue_max_len: Some(5),
        agent_queue_max_per_user: Some(3),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager.clone(), options).await;
    let (mut hog, _) = connect_ready(&gw.ws_url(), &token("hog", 600)).await;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for n in 0..8 {
        crate::support::send_text(
            &mut hog,
            &format!(r#"{{"type":"message","id":"h-{n}","text":"1+1"}}"#),
        )
        .await;
        match answer(&mut hog).await {
            Ok(job) => accepted.push(job),
            Err(refusal) => refused.push(refusal),
        }
    }
    assert_eq!(accepted.len(), 3, "refusals: {refused:?}");
    assert_eq!(
        refused,
        vec![("user_queue_full".to_owned(), Some(1000)); 5],
        "the user's share is full, the queue is not"
    );
    // The queue (5) still takes another user's message.
    let (mut calm, _) = connect_ready(&gw.ws_url(), &token("calm", 600)).await;
    crate::support::send_text(&mut calm, r#"{"type":"message","id":"c-1","text":"1+1"}"#).await;
    let calm_job = answer(&mut calm)
        .await
        .expect("the other user's message is stored");

    // A consumer of the queue (what `ssot worker` does) runs every job, the other user's
    // included, and acks them: the hog's share is free again.
    let jobs = Jobs::new(manager.clone(), CHAT_QUEUE).unwrap();
    let claimed = jobs.claim("test", 10, Duration::ZERO).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
    let mut expected: Vec<&str> = accepted.iter().map(String::as_str).collect();
    expected.push(&calm_job);
    assert_eq!(ids, expected);
    assert_eq!(claimed[3].user.as_str(), "calm");
    for job in &claimed {
        assert!(jobs.ack(job).await.unwrap());
    }
    crate::support::send_text(&mut hog, r#"{"type":"message","id":"h-8","text":"1+1"}"#).await;
    assert!(answer(&mut hog).await.is_ok(), "acked jobs no longer count");

    let metrics = crate::support::get(gw.addr, "/metrics").await.body;
    assert!(
        metrics.contains(r#"ssot_gateway_budget_refusals_total{budget="jobs_per_user"} 5"#),
        "{metrics}"
    );
}
