//! Resolution, errors naming their key, the environment overlay and redaction.

use super::*;

fn tokens() -> TokenConfig {
    TokenConfig::hs256(b"0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn defaults_resolve() {
    let cfg = GatewayOptions::default().resolve(tokens()).unwrap();
    assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
    assert!(cfg.service_key.is_none());
    assert_eq!(cfg.budgets.sockets_per_user, 16);
    assert_eq!(cfg.budgets.queued_bytes, DEFAULT_MAX_QUEUED_BYTES);
    assert_eq!(cfg.agent_queue_max_per_user, 32);
}

#[test]
fn errors_name_the_setting() {
    let bad = [
        (
            GatewayOptions {
                listen: Some("nope".into()),
                ..Default::default()
            },
            "gateway.listen",
        ),
        (
            GatewayOptions {
                max_message_bytes: Some(0),
                ..Default::default()
            },
            "gateway.max-message-bytes",
        ),
        (
            GatewayOptions {
                allowed_origins: Some(vec!["example.com".into()]),
                ..Default::default()
            },
            "gateway.allowed-origins",
        ),
        (
            GatewayOptions {
                service_key: Some("short".into()),
                ..Default::default()
            },
            "gateway.service-key",
        ),
        (
            GatewayOptions {
                agent_queue_max_per_user: Some(0),
                ..Default::default()
            },
            "gateway.agent-queue-max-per-user",
        ),
    ];
    for (opts, key) in bad {
        assert_eq!(opts.resolve(tokens()).unwrap_err().key, key);
    }
}

#[test]
fn an_audience_is_required_beyond_loopback() {
    let open = || GatewayOptions {
        listen: Some("0.0.0.0:8080".into()),
        ..Default::default()
    };
    assert_eq!(open().resolve(tokens()).unwrap_err().key, "tokens.audience");
    assert!(open().resolve(tokens().with_audience(["chat"])).is_ok());
    assert!(open().resolve(tokens().allow_any_audience(true)).is_ok());
    assert!(
        GatewayOptions::default().resolve(tokens()).is_ok(),
        "loopback"
    );
}

#[test]
fn env_overlays_and_secrets_are_redacted() {
    let opts = GatewayOptions::default().with_env([
        (
            "SSOT_ALLOWED_ORIGINS".to_owned(),
            "https://a.example, https://b.example".to_owned(),
        ),
        (
            "SSOT_SERVICE_KEY".to_owned(),
            "service-key-0123456789".to_owned(),
        ),
    ]);
    let cfg = opts.resolve(tokens()).unwrap();
    assert_eq!(cfg.allowed_origins.len(), 2);
    assert!(!format!("{cfg:?}").contains("service-key-0123456789"));
}

#[test]
fn serialized_settings_read_back_as_the_same_settings() {
    let opts = GatewayOptions {
        listen: Some("127.0.0.1:9000".into()),
        slow_consumer_timeout_ms: Some(1234),
        max_sockets_per_user: Some(3),
        agent_queue_max_per_user: Some(7),
        allowed_origins: Some(vec!["https://a.example".into()]),
        ..Default::default()
    };
    let cfg = opts.resolve(tokens()).unwrap();
    let shown = serde_json::to_value(&cfg).unwrap();
    assert_eq!(shown["slow-consumer-timeout-ms"], 1234);
    assert_eq!(shown["max-sockets-per-user"], 3);
    assert_eq!(shown["agent-queue-max-per-user"], 7);
    let again: GatewayOptions = serde_json::from_value(shown).unwrap();
    let again = again.resolve(tokens()).unwrap();
    assert_eq!(format!("{again:?}"), format!("{cfg:?}"));
}

#[test]
fn listen_comes_from_the_environment() {
    let opts = GatewayOptions::default().with_env([(
        "SSOT_GATEWAY_LISTEN".to_owned(),
        "127.0.0.1:9999".to_owned(),
    )]);
    assert_eq!(
        opts.resolve(tokens()).unwrap().listen.to_string(),
        "127.0.0.1:9999"
    );
}
