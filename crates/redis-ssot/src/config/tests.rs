//! Resolution, errors naming their key, redaction.

use super::*;

fn err_key(result: Result<RedisConfig>) -> String {
    match result {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults_resolve() {
    let cfg = RedisOptions::default().resolve().unwrap();
    assert_eq!(
        cfg.topology,
        Topology::Single("redis://127.0.0.1:6379".into())
    );
    assert_eq!(cfg.command_timeout, DEFAULT_COMMAND_TIMEOUT);
}

#[test]
fn unknown_toml_key_is_named() {
    let err = RedisOptions::from_toml("url = \"redis://x\"\ncomand-timeout-ms = 5\n").unwrap_err();
    assert!(err.to_string().contains("comand-timeout-ms"), "{err}");
}

#[test]
fn zero_timeout_rejected_with_key() {
    let opts = RedisOptions::from_toml("command-timeout-ms = 0").unwrap();
    assert_eq!(err_key(opts.resolve()), "redis.command-timeout-ms");
}

#[test]
fn bad_urls_rejected() {
    for url in [
        "",
        "http://x",
        "redis://",
        "redis://h:notaport",
        "redis://h/abc",
    ] {
        let opts = RedisOptions {
            url: Some(url.into()),
            ..Default::default()
        };
        assert_eq!(err_key(opts.resolve()), "redis.url", "{url}");
    }
}

#[test]
fn cluster_forms() {
    let opts = RedisOptions {
        url: Some("redis+cluster://a:1,b:2".into()),
        ..Default::default()
    };
    assert_eq!(
        opts.resolve().unwrap().topology,
        Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
    );
    let opts = RedisOptions {
        url: Some("redis://a:1, redis://b:2".into()),
        ..Default::default()
    };
    assert!(opts.resolve().unwrap().is_cluster());
}

#[test]
fn sentinel_forms() {
    let resolve = |url: &str| {
        RedisOptions {
            url: Some(url.into()),
            ..Default::default()
        }
        .resolve()
    };
    let cfg = resolve("redis+sentinel://:pw@a:26379, b:26380/my-master").unwrap();
    assert_eq!(
        cfg.topology,
        Topology::Sentinel {
            sentinels: vec!["redis://:pw@a:26379".into(), "redis://b:26380".into()],
            master: "my-master".into(),
        }
    );
    assert!(!cfg.is_cluster());
    let shown = cfg.to_string();
    assert!(
        shown.contains("url = \"redis+sentinel://:***@a:26379,b:26380/my-master\""),
        "{shown}"
    );
    assert!(!format!("{cfg:?}").contains("pw@"), "{cfg:?}");
    let again = resolve("redis+sentinel://a:1,b:2/m").unwrap();
    let read_back = RedisOptions::from_toml(&again.to_string())
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(read_back, again);
    for (bad, says) in [
        ("redis+sentinel://a:26379", "master name is missing"),
        ("redis+sentinel://a:26379/", "master name must be"),
        ("redis+sentinel://a:26379/x:y", "master name must be"),
        ("redis+sentinel://a/m", "a Sentinel is host:port"),
        ("redis+sentinel://a:1,b:x/m", "invalid port"),
    ] {
        match resolve(bad) {
            Err(Error::Config { key, reason }) => {
                assert_eq!(key, "redis.url", "{bad}");
                assert!(reason.contains(says), "{bad}: {reason}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn secrets_redacted() {
    let opts = RedisOptions {
        url: Some("redis://user:hunter2@localhost:6379/0".into()),
        ..Default::default()
    };
    let shown_opts = format!("{opts:?}");
    let cfg = opts.resolve().unwrap();
    for shown in [shown_opts, format!("{cfg:?}"), cfg.to_string()] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[test]
fn env_typo_is_an_error() {
    let vars = [("SSOT_REDIS_COMAND_TIMEOUT_MS".to_owned(), "5".to_owned())];
    let err = RedisOptions::from_vars(vars).unwrap_err();
    assert!(
        err.to_string().contains("SSOT_REDIS_COMAND_TIMEOUT_MS"),
        "{err}"
    );
    let vars = [(
        "SSOT_REDIS_COMMAND_TIMEOUT_MS".to_owned(),
        "soon".to_owned(),
    )];
    assert!(RedisOptions::from_vars(vars).is_err());
}

#[test]
fn breaker_bounds() {
    let opts = RedisOptions::from_toml("[breaker]\nfailure-rate-threshold = 150").unwrap();
    assert_eq!(
        err_key(opts.resolve()),
        "redis.breaker.failure-rate-threshold"
    );
    let opts = RedisOptions::from_toml("[breaker]\nwindow-size = 5\nminimum-calls = 6").unwrap();
    assert_eq!(err_key(opts.resolve()), "redis.breaker.minimum-calls");
}

#[test]
fn display_reads_back_as_the_same_config() {
    let opts = RedisOptions::from_toml(
        "url = \"redis+cluster://a:1,b:2\"\napp = \"x\"\ncommand-timeout-ms = 7\n[breaker]\nwindow-size = 90",
    )
    .unwrap();
    let cfg = opts.resolve().unwrap();
    let shown = cfg.to_string();
    assert!(shown.contains("command-timeout-ms = 7\n"), "{shown}");
    assert!(shown.contains("[breaker]\nwindow-size = 90\n"), "{shown}");
    let again = RedisOptions::from_toml(&shown).unwrap().resolve().unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn positive_checks_name_the_key() {
    assert_eq!(positive("k", None, 3usize), Ok(3));
    assert_eq!(positive("k", Some(2u32), 3), Ok(2));
    assert_eq!(positive("k", Some(0u64), 3).unwrap_err().key, "k");
    assert_eq!(
        positive_ms("k", Some(5), Duration::ZERO),
        Ok(Duration::from_millis(5))
    );
    assert_eq!(
        positive_ms("k", None, Duration::from_secs(1)),
        Ok(Duration::from_secs(1))
    );
    assert_eq!(
        positive_ms("a.b-ms", Some(0), Duration::ZERO)
            .unwrap_err()
            .to_string(),
        "invalid configuration: a.b-ms: must be greater than 0"
    );
}

#[test]
fn redacted_hides_the_secret() {
    let secret: Redacted<String> = "hunter2".into();
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
    assert_eq!(secret.expose(), "hunter2");
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn ssot_redis_url_is_read_and_wins_over_redis_url() {
    let opts = RedisOptions::from_vars(vars(&[("SSOT_REDIS_URL", "redis://a:1")])).unwrap();
    assert_eq!(opts.url.unwrap().expose(), "redis://a:1");
    for order in [
        [
            ("REDIS_URL", "redis://b:2"),
            ("SSOT_REDIS_URL", "redis://a:1"),
        ],
        [
            ("SSOT_REDIS_URL", "redis://a:1"),
            ("REDIS_URL", "redis://b:2"),
        ],
    ] {
        let opts = RedisOptions::from_vars(vars(&order)).unwrap();
        assert_eq!(opts.url.unwrap().expose(), "redis://a:1");
    }
}

#[test]
fn a_bad_url_from_the_environment_names_its_variable() {
    for name in ["REDIS_URL", "SSOT_REDIS_URL"] {
        let opts = RedisOptions::from_vars(vars(&[(name, "localhost:6379")])).unwrap();
        let err = opts.resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration: {name}: expected a URL like redis://host:6379 \
                 (redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// \
                 or rediss+sentinel://), got \"localhost:6379\""
            )
        );
    }
}

#[test]
fn a_misspelt_variable_gets_a_suggestion() {
    let err = RedisOptions::from_vars(vars(&[("SSOT_REDIS_COMAND_TIMEOUT_MS", "5")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: SSOT_REDIS_COMAND_TIMEOUT_MS: unknown variable; \
         did you mean `SSOT_REDIS_COMMAND_TIMEOUT_MS`?"
    );
}
