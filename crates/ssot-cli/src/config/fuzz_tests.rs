//! Fuzz targets of the configuration file and the `SSOT_*` variables (issue 12): any text
//! is parsed or refused naming a key or a line and column inside the text; an unknown
//! variable is refused by name. Run by `ssot_testkit::fuzz`.

use proptest::prelude::*;
use ssot_testkit::fuzz::fuzz;

use super::env::{check, variables};
use super::file::{SECTIONS, parse};

/// Keys as a user writes them: real ones, nested ones and typos.
const KEYS: &[&str] = &[
    "url",
    "command-timeout-ms",
    "breaker.window-size",
    "breaker.failure-rate-threshold",
    "listen",
    "max-connections",
    "concurrency",
    "secret",
    "audience",
    "max-len",
    "manager-class",
    "paths",
    "comand-timeout-ms",
    "x",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,16}".prop_map(|s| format!("{s:?}")),
        Just("[\"a\", 1]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("\"unterminated".to_owned()),
    ]
}

/// A file of sections (known, nested under `tool.ssot`, misspelt) holding `key = value`s,
/// or arbitrary text.
fn document() -> impl Strategy<Value = String> {
    let section = prop_oneof![
        prop::sample::select(SECTIONS).prop_map(str::to_owned),
        prop::sample::select(SECTIONS).prop_map(|s| format!("tool.ssot.{s}")),
        Just("tool.ssot".to_owned()),
        Just("redis.breaker".to_owned()),
        Just("gatway".to_owned()),
    ];
    let entries = prop::collection::vec((prop::sample::select(KEYS), toml_value()), 0..4);
    let table = (prop::option::of(section), entries).prop_map(|(section, entries)| {
        let mut text = section.map_or(String::new(), |s| format!("[{s}]\n"));
        for (key, value) in entries {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text
    });
    prop_oneof![
        4 => prop::collection::vec(table, 0..4).prop_map(|tables| tables.concat()),
        1 => any::<String>(),
    ]
}

#[test]
fn fuzz_config_file() {
    fuzz(
        "cli-config-file",
        (document(), any::<bool>()),
        |(text, pyproject)| {
            let Err(err) = parse(&text, pyproject) else {
                return Ok(());
            };
            prop_assert!(!err.reason.is_empty(), "{err:?}");
            let named = err.key.as_ref().is_some_and(|k| !k.is_empty());
            prop_assert!(named || err.position.is_some(), "{text:?}: {err:?}");
            if let Some((line, column)) = err.position {
                let lines = text.split('\n').count();
                prop_assert!((1..=lines).contains(&line), "{text:?}: {err:?}");
                prop_assert!(column >= 1, "{text:?}: {err:?}");
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_env_variables() {
    let known: Vec<&str> = variables().map(|(name, _)| name).collect();
    let name = prop_oneof![
        prop::sample::select(known.clone()).prop_map(str::to_owned),
        "SSOT_[A-Z_]{0,16}",
        "[A-Za-z_]{1,10}",
    ];
    let vars = prop::collection::vec((name, ".{0,8}"), 0..6);
    fuzz("cli-config-env", vars, |vars| {
        let mut unknown: Vec<&str> = vars
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("SSOT_") && !known.contains(n))
            .collect();
        unknown.sort();
        match (check(vars.clone()), unknown.first()) {
            (Ok(()), None) => {}
            (Err(err), Some(first)) => prop_assert_eq!(err.key.as_str(), *first),
            (got, want) => prop_assert!(false, "{vars:?}: {got:?}, first unknown {want:?}"),
        }
        Ok(())
    });
}
