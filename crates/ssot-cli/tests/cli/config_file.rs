//! One `ssot.toml` for every command: runtime tables, `[check]`, the environment's names.

use ssot_testkit::RedisServer;

use crate::support::{SECRET, ssot, text};

/// A file with every table, `[check]` included.
fn shared_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let file = dir.join("ssot.toml");
    std::fs::write(
        &file,
        format!(
            "[redis]\nurl = \"{url}\"\napp = \"shared\"\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\n\
             [worker]\nconcurrency = 3\n\
             [tokens]\nleeway-secs = 2\n\
             [events]\nmax-len = 500\n\
             [check]\ncanonical = [\"app/redis_client.py\"]\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn doctor_reads_a_file_with_every_table_and_shows_each() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = shared_file(dir.path(), &server.url());
    let out = ssot(
        &["--config", file.to_str().unwrap(), "doctor"],
        &[("SSOT_JWT_SECRET", SECRET)],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for needle in [
        "[redis]\n",
        "app = \"shared\"",
        "[gateway]\n",
        "[worker]\nqueue = \"agent\"\nconcurrency = 3\n",
        "[tokens]\nalgorithm = \"HS256\"\nsecret = \"<redacted>\"\n",
        "leeway-secs = 2\n",
        "[events]\nmax-len = 500\n",
        "[check]\ncanonical = [\"app/redis_client.py\"]\n",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing in {shown}");
    }
    assert!(!shown.contains(SECRET), "{shown}");
}

#[test]
fn token_reads_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = shared_file(dir.path(), "redis://127.0.0.1:1");
    let out = ssot(
        &[
            "--config",
            file.to_str().unwrap(),
            "token",
            "--user",
            "alice",
        ],
        &[("SSOT_JWT_SECRET", SECRET)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches('.').count(), 2);
}

#[test]
fn configuration_errors_name_their_key_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let rs256 = dir.path().join("rs256.toml");
    std::fs::write(&rs256, "[tokens]\nalgorithm = \"RS256\"\n").unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[redis]\nurl = \"redis://x\"\n\n[gatway]\n").unwrap();
    let rs256 = rs256.to_str().unwrap();
    let typo = typo.to_str().unwrap();
    exits_2_naming(
        &["--config", rs256, "token", "--user", "a"],
        &[],
        "tokens.public-key: required for algorithm RS256",
    );
    exits_2_naming(
        &["--config", typo, "doctor"],
        &[],
        "gatway: unknown table or key; did you mean `gateway`? (line 4, column 1)",
    );
    exits_2_naming(
        &["doctor"],
        &[("SSOT_SERVICE_KYE", "x")],
        "SSOT_SERVICE_KYE: unknown variable; did you mean `SSOT_SERVICE_KEY`?",
    );
    exits_2_naming(
        &["doctor"],
        &[("REDIS_URL", "localhost:6379")],
        "REDIS_URL: expected a URL like redis://host:6379",
    );
    exits_2_naming(
        &["serve", "--redis", "redis://127.0.0.1:1"],
        &[("SSOT_JWT_SECRET", SECRET), ("SSOT_GATEWAY_LISTEN", "nope")],
        "SSOT_GATEWAY_LISTEN: expected ip:port, got \"nope\"",
    );
}

/// `ssot args` with `env` exits 2 and its message contains `needle`.
fn exits_2_naming(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let out = ssot(args, env);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {shown}");
    assert!(
        shown.contains(needle),
        "{args:?}: {needle:?} missing in {shown}"
    );
}
