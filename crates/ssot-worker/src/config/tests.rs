//! Resolution, errors naming their key, and the serialized view.

use super::*;

fn resolve(toml: &str) -> Result<WorkerConfig, ConfigError> {
    WorkerOptions::from_toml(toml)?.resolve()
}

fn key_of(toml: &str) -> String {
    resolve(toml).unwrap_err().key
}

#[test]
fn defaults_resolve() {
    let c = resolve("").unwrap();
    assert_eq!(c.queue, AGENT_QUEUE);
    assert_eq!(
        c.agent,
        AgentConfig::Demo {
            step: Duration::ZERO
        }
    );
    assert!(c.consumer.contains(&std::process::id().to_string()));
    assert!(c.reclaim_idle >= c.agent_timeout + RECLAIM_MARGIN);
}

#[test]
fn errors_name_the_key() {
    let e = resolve("agent = \"http\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: worker.agent-url: required when agent = \"http\""
    );
    assert_eq!(key_of("agent = \"llm\""), "worker.agent");
    assert_eq!(
        key_of("agent = \"http\"\nagent-url = \"https://x/y\""),
        "worker.agent-url"
    );
    assert_eq!(key_of("agent-url = \"http://x/y\""), "worker.agent-url");
    let e = resolve("agent = \"http\"\nagent-url = \"http://svc-user:hunter2-secret@x/y\"")
        .unwrap_err();
    assert_eq!(e.key, "worker.agent-url");
    assert!(e.reason.contains("credentials"), "{e}");
    assert!(!e.to_string().contains("hunter2-secret"), "{e}");
    assert_eq!(key_of("concurrency = 0"), "worker.concurrency");
    assert_eq!(key_of("consumer = \"a b\""), "worker.consumer");
    assert_eq!(key_of("queue = \"{x}\""), "worker.queue");
    assert_eq!(key_of("queue-partitions = 0"), "worker.queue-partitions");
    assert_eq!(key_of("queue-partitions = 1025"), "worker.queue-partitions");
    assert_eq!(
        key_of("agent-timeout-ms = 5000\nreclaim-idle-ms = 5500"),
        "worker.reclaim-idle-ms"
    );
    assert_eq!(key_of("max-deliveries = 0"), "worker.max-deliveries");
    assert_eq!(key_of("tool-rate = 0"), "worker.tool-rate");
    assert_eq!(
        key_of("[[schedule]]\nevery-ms = 100"),
        "worker.schedule[0].name"
    );
    assert_eq!(
        key_of("[[schedule]]\nname = \"hb\""),
        "worker.schedule[0].every-ms"
    );
    assert_eq!(
        key_of(
            "[[schedule]]\nname = \"a\"\nevery-ms = 100\n[[schedule]]\nname = \"b\"\nevery-ms = 100\nlease-ms = 100"
        ),
        "worker.schedule[1].lease-ms"
    );
    assert_eq!(key_of("colour = 1"), "worker");
}

#[test]
fn http_agent_and_schedule_resolve() {
    let c = resolve(
        "agent = \"http\"\nagent-url = \"http://127.0.0.1:9/run\"\n[[schedule]]\nname = \"heartbeat\"\nevery-ms = 1000",
    )
    .unwrap();
    match c.agent {
        AgentConfig::Http { url, .. } => assert_eq!(url.port_u16(), Some(9)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.schedule[0].lease, Duration::from_millis(750));
}

#[test]
fn serialized_settings_read_back_as_the_same_settings() {
    let c = resolve(
        "agent = \"http\"\nagent-url = \"http://127.0.0.1:9/run\"\nconsumer = \"w1\"\n[[schedule]]\nname = \"heartbeat\"\nevery-ms = 1000",
    )
    .unwrap();
    let shown = serde_json::to_value(&c).unwrap();
    assert_eq!(shown["agent-url"], "http://127.0.0.1:9/run");
    assert_eq!(shown["schedule"][0]["lease-ms"], 750);
    let again: WorkerOptions = serde_json::from_value(shown).unwrap();
    assert_eq!(format!("{:?}", again.resolve().unwrap()), format!("{c:?}"));
}
