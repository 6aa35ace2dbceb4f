//! Issue 14 item 5: the worker reads the jobs the gateway writes through one typed seam,
//! `redis_ssot::stores::chat`.

use redis_ssot::stores::chat::{CHAT_QUEUE, ChatJob};
use redis_ssot::stores::jobs::NewJob;
use serde_json::json;
use ssot_testkit::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_job_from_the_seam_is_answered_and_a_misshapen_one_fails_by_name() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    assert_eq!(jobs.queue(), CHAT_QUEUE);
    let mut opts = options("seam");
    opts.max_deliveries = Some(1);
    let worker = TestWorker::start(opts, manager(&server.url()).await);

    let message = ChatJob {
        message_id: "s-1".into(),
        text: "2*21".into(),
    };
    let user = "seam-user".parse().unwrap();
    let good = jobs.enqueue(NewJob::chat(user, message)).await.unwrap();
    let run = ended_run(&redis, "seam-user", &good.id).await;
    assert_run(&run, "s-1", "agent_completed");
    assert_eq!(run.last().unwrap().data["answer"], "That makes 42.");

    let mut misshapen = NewJob::chat(
        "seam-user".parse().unwrap(),
        ChatJob {
            message_id: "s-2".into(),
            text: String::new(),
        },
    );
    misshapen.payload = json!({ "message_id": "s-2", "text": 42 });
    let bad = jobs.enqueue(misshapen).await.unwrap();
    // Refused before the agent starts: the run is its end only.
    let run = ended_run(&redis, "seam-user", &bad.id).await;
    assert_eq!(names(&run), ["agent_failed"]);
    assert_eq!(run[0].data["message_id"], "s-2");
    worker.shutdown().await;
    let dead = jobs.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].error,
        "invalid chat job: payload: invalid type: integer `42`, expected a string"
    );
}
