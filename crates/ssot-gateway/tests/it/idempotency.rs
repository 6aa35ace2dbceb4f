//! `Idempotency-Key` on `POST /v1/users/{id}/events`: a publish whose response was lost after
//! Redis stored the event is retried with its key, and the user gets the event once.

use std::time::Duration;

use ssot_testkit::{FaultProxy, RedisServer, eventually};

use crate::support::*;

/// One publish with an `Idempotency-Key`.
async fn publish_with_key(
    publisher: &mut Publisher,
    user: &str,
    key: &str,
    data: &str,
) -> HttpAnswer {
    let body = format!(r#"{{"event":"paid","data":{data}}}"#);
    publisher
        .request_with(
            "POST",
            &format!("/v1/users/{user}/events"),
            Some(SERVICE_KEY),
            &[("Idempotency-Key", key)],
            &body,
        )
        .await
        .unwrap_or_else(|e| HttpAnswer {
            status: RESET,
            headers: Default::default(),
            body: e.to_string(),
        })
}

fn id_of(answer: &HttpAnswer) -> String {
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn code_of(answer: &HttpAnswer) -> String {
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// The proxy between the gateway and Redis delays replies past the command timeout: the
/// first publish stores the event but its caller gets 503. The retry with the same key gets
/// 200 and the first event's id; Redis holds one event and the user's socket receives one.
/// Then 32 concurrent retries of a new key store one event, a reused key with other data is
/// 409 `idempotency_conflict`, and a malformed key is 400 `invalid_idempotency_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_response_stores_and_delivers_once() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let gateway = TestGateway::start(manager(&proxy.url()).await).await;
    let user = format!("idem-{}", rand_suffix());
    let stream = format!("ssot:{{u:{user}}}:events");
    let (ws, received) = connect_ready(&gateway.ws_url(), &token(&user, 300)).await;
    let mut publisher = Publisher::new(gateway.addr);

    // The append script is loaded by a first publish (another user), so the delayed call
    // below is the script itself, not a `NOSCRIPT` round trip.
    publisher
        .publish(&format!("{user}-warm"), "warm", serde_json::json!(1))
        .await
        .unwrap();
    // Past the 400 ms command timeout: the script runs, its reply comes too late.
    proxy.delay(Duration::from_millis(700));
    let lost = publish_with_key(&mut publisher, &user, "order-42", r#"{"order":42}"#).await;
    assert_eq!(lost.status, 503, "{lost:?}");
    eventually(Duration::from_secs(5), "the delayed publish stored", || {
        let n = server.cli(&["XLEN", &stream]);
        async move { n == "1" }
    })
    .await;
    proxy.pass();
    // Retried until the gateway's breaker lets it through (the timeout counted as a fault).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let retried = loop {
        let answer = publish_with_key(&mut publisher, &user, "order-42", r#"{"order":42}"#).await;
        if answer.status == 200 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retry never answered: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first_id = id_of(&retried);
    assert_eq!(server.cli(&["XLEN", &stream]), "1", "nothing stored twice");
    let (mut ws, mut received) = (ws, received);
    assert!(
        read_events(&mut ws, &mut received, 1, Duration::from_secs(5)).await,
        "one event, not two: {:?}",
        received.events
    );
    assert_eq!(received.events[0].0, first_id);

    // Concurrent retries of one new key: one event, one id.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (addr, user) = (gateway.addr, user.clone());
        tasks.push(tokio::spawn(async move {
            publish_with_key(&mut Publisher::new(addr), &user, "order-43", "43").await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let answer = t.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        ids.insert(id_of(&answer));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(server.cli(&["XLEN", &stream]), "2");

    let conflict = publish_with_key(&mut publisher, &user, "order-42", r#"{"order":7}"#).await;
    assert_eq!(
        (conflict.status, code_of(&conflict)),
        (409, "idempotency_conflict".to_owned())
    );
    for bad in ["", "two words", &"k".repeat(129)] {
        let answer = publish_with_key(&mut publisher, &user, bad, "1").await;
        assert_eq!(
            (answer.status, code_of(&answer)),
            (400, "invalid_idempotency_key".to_owned()),
            "key {bad:?}"
        );
    }
    assert_eq!(
        server.cli(&["XLEN", &stream]),
        "2",
        "refusals store nothing"
    );
    gateway.shutdown().await;
}
