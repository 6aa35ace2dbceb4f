//! Every configuration error names its key (and, from a file, its line and column).
//! Snapshots keep the exact wording.

use super::*;

fn parse(text: &str) -> Result<FileOptions, file::FileError> {
    file::parse(text, false)
}

fn file_error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_toml_syntax_error_gives_line_and_column() {
    insta::assert_snapshot!(file_error("[redis]\nurl = \"redis://x\"\napp = \n"));
}

#[test]
fn an_unknown_key_is_named_with_a_suggestion() {
    insta::assert_snapshot!(file_error(
        "[redis]\nurl = \"redis://x\"\ncomand-timeout-ms = 5\n"
    ));
}

#[test]
fn an_unknown_nested_key_is_named_with_its_path() {
    insta::assert_snapshot!(file_error("[redis.breaker]\nwindow-sise = 5\n"));
}

#[test]
fn an_unknown_table_is_named_with_a_suggestion() {
    insta::assert_snapshot!(file_error("[gatway]\nlisten = \"127.0.0.1:1\"\n"));
}

#[test]
fn a_wrong_type_names_its_key() {
    insta::assert_snapshot!(file_error("[redis]\ncommand-timeout-ms = \"5\"\n"));
}

#[test]
fn an_unknown_value_gets_a_suggestion() {
    insta::assert_snapshot!(file_error("[tokens]\nalgorithm = \"RS257\"\n"));
}

#[test]
fn every_section_is_read_and_check_is_accepted() {
    let opts = parse(
        "[redis]\napp = \"a\"\n[gateway]\nlisten = \"127.0.0.1:1\"\n[worker]\nconcurrency = 2\n\
         [tokens]\nalgorithm = \"RS256\"\n[events]\nmax-len = 7\n\
         [check]\ncanonical = [\"app/redis.py\"]\n",
    )
    .unwrap();
    assert_eq!(opts.redis.app.as_deref(), Some("a"));
    assert_eq!(opts.gateway.listen.as_deref(), Some("127.0.0.1:1"));
    assert_eq!(opts.worker.concurrency, Some(2));
    assert_eq!(opts.events.max_len, Some(7));
    assert!(opts.check.unwrap().contains_key("canonical"));
}

#[test]
fn a_checker_only_file_of_today_is_accepted() {
    let opts = parse(
        "canonical = [\"app/redis.py\"]\nmanager-class = \"RedisManager\"\n\
         [priority]\ncritical = [\"app/core/**\"]\n",
    )
    .unwrap();
    assert!(opts.redis.url.is_none());
}

#[test]
fn a_misspelt_checker_key_at_the_top_is_named() {
    insta::assert_snapshot!(file_error("canonicl = [\"app/redis.py\"]\n"));
}

#[test]
fn pyproject_tool_ssot_is_read_and_other_tools_are_ignored() {
    let opts = file::parse(
        "[project]\nname = \"x\"\n[tool.ruff]\nline-length = 100\n\
         [tool.ssot.redis]\napp = \"py\"\n[tool.ssot.check]\ncanonical = [\"a.py\"]\n",
        true,
    )
    .unwrap();
    assert_eq!(opts.redis.app.as_deref(), Some("py"));
    let err = file::parse("[tool.ssot.redis]\nap = \"py\"\n", true).unwrap_err();
    insta::assert_snapshot!(err.to_string());
    assert!(file::parse("[project]\nname = \"x\"\n", true).is_ok());
}

#[test]
fn rs256_without_a_key_asks_for_the_public_key() {
    let opts = parse("[tokens]\nalgorithm = \"RS256\"\n").unwrap();
    let err = token_options(&opts, None).unwrap().resolve().unwrap_err();
    insta::assert_snapshot!(err.to_string());
    let err = token_options(&opts, Some("x".repeat(32))).unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn hs256_without_a_secret_names_the_secret() {
    let err = token_options(&FileOptions::default(), None).unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn events_in_both_places_is_an_error_naming_both() {
    let opts = parse("[gateway]\nevent-max-len = 5\n[events]\nmax-len = 6\n").unwrap();
    insta::assert_snapshot!(events_config(&opts).unwrap_err().to_string());
    let opts = parse("[events]\nmax-len = 6\nmax-age-secs = 60\n").unwrap();
    let events = events_config(&opts).unwrap();
    assert_eq!((events.max_len, events.max_age.as_secs()), (6, 60));
    let opts = parse("[events]\nmax-len = 0\n").unwrap();
    assert_eq!(events_config(&opts).unwrap_err().key, "events.max-len");
}

#[test]
fn events_durability_and_replay_settings_reach_the_events_config() {
    let events = events_config(&FileOptions::default()).unwrap();
    assert_eq!(events.min_replicas_acked, 0, "off by default");
    let opts = parse(
        "[events]\nmin-replicas-acked = 1\nwait-timeout-ms = 250\nreplay-page-bytes = 4096\n",
    )
    .unwrap();
    let events = events_config(&opts).unwrap();
    assert_eq!(events.min_replicas_acked, 1);
    assert_eq!(events.wait_timeout, std::time::Duration::from_millis(250));
    assert_eq!(events.replay_page_bytes, 4096);
    let opts = parse("[events]\nwait-timeout-ms = 0\n").unwrap();
    assert_eq!(
        events_config(&opts).unwrap_err().key,
        "events.wait-timeout-ms"
    );
    let opts = parse("[events]\nreplay-page-bytes = 0\n").unwrap();
    assert_eq!(
        events_config(&opts).unwrap_err().key,
        "events.replay-page-bytes"
    );
}

#[test]
fn an_unknown_ssot_variable_is_named_with_a_suggestion() {
    let vars = |name: &str| vec![(name.to_owned(), "x".to_owned())];
    insta::assert_snapshot!(
        env::check(vars("SSOT_SERVICE_KYE"))
            .unwrap_err()
            .to_string()
    );
    insta::assert_snapshot!(
        env::check(vars("SSOT_JWT_SECRETS"))
            .unwrap_err()
            .to_string()
    );
    for known in ["SSOT_REDIS_URL", "SSOT_GATEWAY_LISTEN", "SSOT_LOG", "PATH"] {
        assert!(env::check(vars(known)).is_ok(), "{known}");
    }
}

#[test]
fn a_bad_redis_url_names_its_source() {
    let err = redis_config(&FileOptions::default(), Some("localhost:6379")).unwrap_err();
    insta::assert_snapshot!(format!("{err:#}"));
    let opts = parse("[redis]\nurl = \"localhost:6379\"\n").unwrap();
    let err = opts.redis.resolve().unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn the_readme_documents_every_variable() {
    let readme = include_str!("../../../../README.md");
    for (name, _) in env::variables() {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README.md's table of variables misses {name}"
        );
    }
}
