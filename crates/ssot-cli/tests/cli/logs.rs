//! Logs on stderr: no colour codes off a terminal, JSON on request, RUST_LOG honoured.

use std::process::Output;

use crate::support::{free_port, ssot, text};

/// `ssot doctor` against a port nobody listens on: it logs while it tries, then exits 1.
fn doctor_against_nothing(args: &[&str], env: &[(&str, &str)]) -> Output {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut all = vec!["doctor", "--redis", url.as_str()];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("SSOT_REDIS_CONNECT_TIMEOUT_MS", "300"));
    let out = ssot(&all, &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    out
}

#[test]
fn text_logs_have_no_colour_codes_off_a_terminal() {
    let out = doctor_against_nothing(&[], &[("SSOT_LOG", "debug")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    for how in [
        (vec!["--log-format", "json"], vec![("SSOT_LOG", "debug")]),
        (
            vec![],
            vec![("SSOT_LOG", "debug"), ("SSOT_LOG_FORMAT", "json")],
        ),
    ] {
        let out = doctor_against_nothing(&how.0, &how.1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
        assert!(!lines.is_empty(), "no logs");
        for line in lines {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(value["level"].is_string(), "{line}");
        }
    }
}

#[test]
fn rust_log_is_honoured_and_ssot_log_wins() {
    let quiet = doctor_against_nothing(&[], &[("RUST_LOG", "off")]);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    let loud = doctor_against_nothing(&[], &[("RUST_LOG", "debug")]);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("DEBUG"));
    let ssot_wins = doctor_against_nothing(&[], &[("RUST_LOG", "debug"), ("SSOT_LOG", "off")]);
    assert_eq!(String::from_utf8_lossy(&ssot_wins.stderr), "");
}
