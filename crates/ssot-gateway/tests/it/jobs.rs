//! Jobs over HTTP without a worker: a posted job reads `queued`; the per-user bound of the
//! agent queue and the queue's own bound refuse more with their codes; bad bodies and keys
//! are refused precisely. (The run itself, with `ssot worker`: ssot-cli's `http_jobs`.)

use redis_ssot::stores::jobs::Jobs;
use ssot_gateway::GatewayOptions;
use ssot_testkit::RedisServer;

use crate::support::*;

async fn post(publisher: &mut Publisher, user: &str, body: &str) -> (u16, serde_json::Value) {
    let answer = publisher
        .request(
            "POST",
            &format!("/v1/users/{user}/jobs"),
            Some(SERVICE_KEY),
            body,
        )
        .await
        .unwrap();
    (answer.status, serde_json::from_str(&answer.body).unwrap())
}

async fn state_of(publisher: &mut Publisher, job: &str) -> serde_json::Value {
    let answer = publisher
        .request(
            "GET",
            &format!("/v1/users/ann/jobs/{job}"),
            Some(SERVICE_KEY),
            "",
        )
        .await
        .unwrap();
    serde_json::from_str(&answer.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_jobs_are_queued_within_the_queue_bounds() {
    let server = RedisServer::start();
    let options = GatewayOptions {
        agent_queue_max_per_user: Some(2),
        agent_queue_max_len: Some(4),
        ..Default::default()
    };
    let gateway = TestGateway::start_with(manager(&server.url()).await, options).await;
    let mut publisher = Publisher::new(gateway.addr);
    let job = r#"{"kind":"report","payload":{"day":"2026-12-05"}}"#;

    let (status, first) = post(&mut publisher, "ann", job).await;
    assert_eq!(status, 200, "{first}");
    let id = first["job"].as_str().unwrap();
    assert_eq!(
        state_of(&mut publisher, id).await,
        serde_json::json!({"job": id, "state": "queued"})
    );
    // What the worker will read: the job as posted, on the gateway's agent queue.
    let queue = Jobs::new(manager(&server.url()).await, "agent").unwrap();
    let claimed = queue
        .claim("probe", 1, std::time::Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(claimed[0].kind, "report");
    assert_eq!(claimed[0].payload, serde_json::json!({"day": "2026-12-05"}));
    assert!(queue.ack(&claimed[0]).await.unwrap());
    assert_eq!(state_of(&mut publisher, id).await["state"], "completed");

    assert_eq!(post(&mut publisher, "ann", job).await.0, 200);
    assert_eq!(post(&mut publisher, "ann", job).await.0, 200);
    let (status, full) = post(&mut publisher, "ann", job).await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (429, Some("user_queue_full"))
    );
    assert_eq!(post(&mut publisher, "bob", job).await.0, 200);
    assert_eq!(post(&mut publisher, "bob", job).await.0, 200);
    let (status, full) = post(&mut publisher, "cy", job).await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (503, Some("queue_full"))
    );

    for (body, code) in [
        (r#"{"kind":"report"}"#, "invalid_body"),
        (r#"{"kind":"re port","payload":1}"#, "invalid_input"),
        (
            r#"{"kind":"r","payload":1,"idempotency_key":""}"#,
            "invalid_idempotency_key",
        ),
    ] {
        let (status, answer) = post(&mut publisher, "dee", body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
}
