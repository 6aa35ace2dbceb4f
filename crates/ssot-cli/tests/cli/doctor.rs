//! `ssot doctor` and configuration errors.

use ssot_testkit::RedisServer;

use crate::support::{ssot, text};

#[test]
fn doctor_reports_a_healthy_server() {
    let server = RedisServer::start();
    let out = ssot(&["doctor", "--redis", &server.url()], &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("healthy: redis answers"), "{shown}");
    assert!(shown.contains("server-version = \"7."), "{shown}");
    assert!(shown.contains("ssot:app:command"), "{shown}");
}

#[test]
fn doctor_json_is_machine_readable() {
    let server = RedisServer::start();
    let out = ssot(&["doctor", "--json"], &[("REDIS_URL", &server.url())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["breaker"], "closed");
    assert!(v["latency_ms"].as_f64().is_some());
}

#[test]
fn doctor_exit_1_when_redis_is_down() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let out = ssot(
        &["doctor", "--redis", &url],
        &[("SSOT_REDIS_CONNECT_TIMEOUT_MS", "300")],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("unhealthy: cannot connect"), "{shown}");
}

#[test]
fn doctor_redacts_secrets() {
    let server = RedisServer::start();
    let url = format!("redis://:hunter2@127.0.0.1:{}", server.port());
    let out = ssot(
        &["doctor", "--redis", &url],
        &[("SSOT_REDIS_CONNECT_TIMEOUT_MS", "300")],
    );
    let shown = text(&out);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[test]
fn bad_config_exits_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssot.toml");
    std::fs::write(
        &file,
        "[redis]\nurl = \"redis://127.0.0.1:1\"\ncomand-timeout-ms = 5\n",
    )
    .unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec!["doctor", "--redis", "http://x"], vec![], "redis.url"),
        (
            vec!["doctor", "--redis", "redis://h:notaport"],
            vec![],
            "redis.url",
        ),
        (
            vec!["doctor"],
            vec![("SSOT_REDIS_COMMAND_TIMEOUT_MS", "0")],
            "redis.command-timeout-ms",
        ),
        (
            vec!["doctor"],
            vec![("SSOT_REDIS_COMAND_TIMEOUT_MS", "5")],
            "SSOT_REDIS_COMAND_TIMEOUT_MS",
        ),
        (
            vec!["--config", file.to_str().unwrap(), "doctor"],
            vec![],
            "comand-timeout-ms",
        ),
        (
            vec!["--config", "/nonexistent/ssot.toml", "doctor"],
            vec![],
            "cannot read config file",
        ),
    ];
    for (args, env, needle) in cases {
        let out = ssot(&args, &env);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {shown}");
        assert!(
            shown.contains(needle),
            "{args:?}: expected {needle:?} in {shown}"
        );
        assert_eq!(
            shown.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "one-line reason: {shown}"
        );
    }
}
