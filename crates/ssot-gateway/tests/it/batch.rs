//! `POST /v1/events:batch`: per-item results in order, one bad item fails alone, each user's
//! sockets get that user's events in item order; on one server and on a Cluster.

use std::time::Duration;

use ssot_testkit::{RedisCluster, RedisServer};

use crate::support::*;

const USERS: usize = 10;
const ITEMS: usize = 500;
/// Items that are invalid, with the code each must answer.
const BAD: [(usize, &str); 3] = [
    (7, "invalid_user_id"),
    (250, "invalid_idempotency_key"),
    (499, "payload_too_large"),
];

fn user(run: u64, n: usize) -> String {
    format!("batch-{run}-{n}")
}

/// Item `i` goes to user `i % USERS`, data `{"i": i}`, so a user's items interleave with the
/// others'; the items of `BAD` are broken each in their own way.
fn items(run: u64) -> Vec<serde_json::Value> {
    (0..ITEMS)
        .map(|i| {
            let mut item = serde_json::json!({
                "user": user(run, i % USERS), "event": "report", "data": {"i": i},
            });
            match i {
                7 => item["user"] = "no:colons{}".into(),
                250 => item["idempotency_key"] = "two words".into(),
                499 => item["data"] = serde_json::json!({ "pad": "x".repeat(2048) }),
                _ if i % 3 == 0 => item["idempotency_key"] = format!("k-{i}").into(),
                _ => {}
            }
            item
        })
        .collect()
}

async fn post_batch(publisher: &mut Publisher, items: &[serde_json::Value]) -> HttpAnswer {
    let body = serde_json::json!({ "items": items }).to_string();
    publisher
        .request("POST", "/v1/events:batch", Some(SERVICE_KEY), &body)
        .await
        .unwrap()
}

/// Sends the 500-item batch through `gateway` while every user has a socket open, and checks
/// the answer item by item and each socket's events, in order.
async fn batch_delivers_in_item_order(gateway: &TestGateway) {
    let run = rand_suffix();
    let mut sockets = Vec::new();
    for n in 0..USERS {
        sockets.push(connect_ready(&gateway.ws_url(), &token(&user(run, n), 300)).await);
    }
    let mut publisher = Publisher::new(gateway.addr);
    let items = items(run);
    let answer = post_batch(&mut publisher, &items).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), ITEMS);
    let mut ids = vec![None; ITEMS];
    for (i, result) in results.iter().enumerate() {
        match BAD.iter().find(|(at, _)| *at == i) {
            Some((_, code)) => assert_eq!(result["error"]["code"], *code, "item {i}: {result}"),
            None => ids[i] = Some(result["id"].as_str().expect("an id").to_owned()),
        }
    }
    assert_eq!(ids.iter().flatten().count(), ITEMS - BAD.len());

    for (n, (ws, received)) in sockets.iter_mut().enumerate() {
        let expected: Vec<usize> = (0..ITEMS)
            .filter(|i| i % USERS == n && ids[*i].is_some())
            .collect();
        assert!(
            read_events(ws, received, expected.len(), Duration::from_secs(10)).await,
            "user {n}: {} of {} events",
            received.events.len(),
            expected.len()
        );
        let got: Vec<usize> = received
            .events
            .iter()
            .map(|(_, data)| data["i"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(got, expected, "user {n}: events out of item order");
        let got_ids: Vec<&str> = received.events.iter().map(|(id, _)| id.as_str()).collect();
        let want_ids: Vec<&str> = expected
            .iter()
            .map(|i| ids[*i].as_deref().unwrap())
            .collect();
        assert_eq!(got_ids, want_ids, "user {n}: ids as answered");
    }

    // A repeat of the batch: the keyed items answer their first ids and store nothing.
    let again = post_batch(&mut publisher, &items).await;
    let v: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    for i in (0..ITEMS).filter(|i| i % 3 == 0 && ids[*i].is_some()) {
        assert_eq!(
            v["results"][i]["id"].as_str(),
            ids[i].as_deref(),
            "item {i}"
        );
    }
}

/// The limits: more than `max-batch-items` items is 400 `batch_too_large`; a body above
/// `max-batch-bytes` is 413; a body without `items` is 400 `invalid_body`; no service key 401.
async fn batch_limits(gateway: &TestGateway) {
    let mut publisher = Publisher::new(gateway.addr);
    let item = serde_json::json!({"user": "limits", "event": "e", "data": 1});
    let answer = post_batch(&mut publisher, &vec![item.clone(); ITEMS + 1]).await;
    assert_eq!(
        (answer.status, code(&answer)),
        (400, "batch_too_large".into())
    );
    let big = serde_json::json!({"user": "limits", "event": "e", "data": "x".repeat(1000)});
    let answer = post_batch(&mut publisher, &vec![big; 100]).await;
    assert_eq!(
        (answer.status, code(&answer)),
        (413, "payload_too_large".into())
    );
    let answer = publisher
        .request("POST", "/v1/events:batch", Some(SERVICE_KEY), "[]")
        .await
        .unwrap();
    assert_eq!((answer.status, code(&answer)), (400, "invalid_body".into()));
    let answer = publisher
        .request("POST", "/v1/events:batch", None, r#"{"items":[]}"#)
        .await
        .unwrap();
    assert_eq!((answer.status, code(&answer)), (401, "service_key".into()));
}

fn code(answer: &HttpAnswer) -> String {
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn start(url: &str) -> TestGateway {
    TestGateway::start_tuned(manager(url).await, Default::default(), |config| {
        config.events.max_data_bytes = 1024;
        config.max_batch_bytes = 64 * 1024;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_one_server() {
    let server = RedisServer::start();
    let gateway = start(&server.url()).await;
    batch_delivers_in_item_order(&gateway).await;
    batch_limits(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_a_cluster() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let gateway = start(&cluster.cluster_url()).await;
    batch_delivers_in_item_order(&gateway).await;
}
