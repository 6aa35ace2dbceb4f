//! The demo agent end to end: every message gets one complete run in its user's stream only.

use std::time::Duration;

use ssot_testkit::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_gets_one_complete_run_in_its_users_stream() {
    const USERS: usize = 4;
    const MESSAGES: usize = 8;
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let workers = [
        TestWorker::start(options("w1"), manager(&server.url()).await),
        TestWorker::start(options("w2"), manager(&server.url()).await),
    ];
    let mut sent = Vec::new();
    for m in 0..MESSAGES {
        for u in 0..USERS {
            let user = format!("user{u}");
            let message_id = format!("m-{u}-{m}");
            let text = match m % 3 {
                0 => format!("hello number {m}"),
                1 => format!("{m} * (2 + 3)"),
                _ => "what time is it".to_owned(),
            };
            let job = send(&jobs, &user, &message_id, &text).await;
            sent.push((user, message_id, job));
        }
    }
    eventually(Duration::from_secs(20), "all runs ended", || async {
        let mut ended_runs = 0;
        for u in 0..USERS {
            ended_runs += runs(&redis, &format!("user{u}"))
                .await
                .values()
                .filter(|r| ended(r))
                .count();
        }
        ended_runs == USERS * MESSAGES
    })
    .await;
    for u in 0..USERS {
        let user = format!("user{u}");
        let by_job = runs(&redis, &user).await;
        let mine: Vec<_> = sent.iter().filter(|(s, _, _)| *s == user).collect();
        assert_eq!(by_job.len(), mine.len(), "{user} sees only its own runs");
        for (_, message_id, job) in mine {
            let run = &by_job[job];
            assert_run(run, message_id, "agent_completed");
            assert_eq!(
                names(run),
                [
                    "agent_started",
                    "agent_thinking",
                    "tool_executing",
                    "tool_completed",
                    "agent_thinking",
                    "agent_completed"
                ]
            );
            let answer = run.last().unwrap().data["answer"].as_str().unwrap();
            assert!(!answer.is_empty());
        }
    }
    let m1 = &runs(&redis, "user0").await[&sent[USERS].2];
    assert_eq!(m1[3].data["tool"], "calculator");
    assert_eq!(m1[5].data["answer"], "That makes 5.");
    assert_eq!(jobs.pending().await.unwrap(), 0);
    for w in workers {
        w.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_twice_runs_once() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let first = send(&jobs, "idem", "same-id", "one two").await;
    let second = send(&jobs, "idem", "same-id", "one two").await;
    assert_eq!(first, second);
    let worker = TestWorker::start(options("w1"), manager(&server.url()).await);
    eventually(Duration::from_secs(10), "run ended", || async {
        runs(&redis, "idem").await.values().any(|r| ended(r))
    })
    .await;
    // Give a second run, if there were one, time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = events(&redis, "idem").await;
    assert_eq!(all.iter().filter(|e| e.name == "agent_started").count(), 1);
    assert_eq!(
        all.iter().filter(|e| e.name == "agent_completed").count(),
        1
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_runs_or_hands_them_back() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;

    // Within the drain budget: the run finishes, then run() returns Ok.
    let mut slow = options("drainer");
    slow.demo_step_ms = Some(150);
    let worker = TestWorker::start(slow.clone(), manager(&server.url()).await);
    let job = send(&jobs, "drain", "d1", "finish me").await;
    eventually(Duration::from_secs(5), "run started", || async {
        !events(&redis, "drain").await.is_empty()
    })
    .await;
    let took = worker.shutdown().await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_run(&runs(&redis, "drain").await[&job], "d1", "agent_completed");
    assert_eq!(jobs.pending().await.unwrap(), 0);

    // Drain budget too short: the job is handed back unacked and another worker ends it.
    slow.drain_timeout_ms = Some(50);
    slow.consumer = Some("quitter".into());
    let worker = TestWorker::start(slow, manager(&server.url()).await);
    let job = send(&jobs, "drain", "d2", "hand me back").await;
    eventually(Duration::from_secs(5), "run started", || async {
        runs(&redis, "drain").await.contains_key(&job)
    })
    .await;
    let took = worker.shutdown().await;
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(jobs.pending().await.unwrap(), 1, "handed back, not acked");
    let other = TestWorker::start(options("taker"), manager(&server.url()).await);
    eventually(Duration::from_secs(8), "handed-back run ended", || async {
        runs(&redis, "drain")
            .await
            .get(&job)
            .is_some_and(|r| ended(r))
    })
    .await;
    assert_run(&runs(&redis, "drain").await[&job], "d2", "agent_completed");
    other.shutdown().await;
}
