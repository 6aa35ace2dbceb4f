//! Fuzz targets of the Python and Rust front ends (issue 12): the fixture project's sources,
//! cut short, with bytes changed or hostile fragments spliced in, and arbitrary bytes on
//! disk (invalid UTF-8 included). Run by `ssot_testkit::fuzz` (fixed seed by default,
//! `SSOT_FUZZ_CASES` / `SSOT_FUZZ_SECS` for longer runs).

use std::path::PathBuf;

use proptest::prelude::*;
use ssot_check::check::{Checker, Violation};
use ssot_check::config::{Options, Settings};
use ssot_testkit::fuzz::fuzz;

use crate::common::crate_dir;

/// Fragments that stress a parser: unclosed brackets and strings, deep nesting, NUL, BOM,
/// suppressions and the names the rules look for.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "\"",
    "'''",
    "r#\"",
    "/*",
    "#",
    "//",
    "\\",
    "\n",
    "\t",
    "\0",
    "\u{feff}",
    "é",
    "🦀",
    "# ssot: allow(direct-client)",
    "// ssot: allow(direct-client) reason",
    "import redis\n",
    "redis.Redis(",
    "redis::Client::open(",
    "use redis::Client;\n",
    "RedisManager()",
    "def f(:",
    "fn f(",
    "((((((((((((((((((((((((((((((((",
    "async def",
    "lambda",
    "macro_rules! m {",
];

fn settings() -> Settings {
    let options: Options = toml::from_str("manager-class = \"RedisManager\"").expect("options");
    options.resolve(crate_dir(), None).expect("settings")
}

/// Every Python and Rust file of the fixtures, with the extension it is checked under.
fn seeds() -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![crate_dir().join("tests/fixtures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = if path.is_dir() {
                dirs.push(path);
                continue;
            } else if path.extension().is_some_and(|e| e == "py") {
                "app/x.py"
            } else if path.extension().is_some_and(|e| e == "rs") {
                "src/x.rs"
            } else {
                continue;
            };
            found.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    found.sort();
    assert!(found.len() >= 10, "fixtures: {}", found.len());
    found
}

/// A fixture's bytes after one mutation (cut, byte changed, fragment spliced in).
fn mutated(seeds: Vec<(&'static str, String)>) -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let mutation = (
        0..3u8,
        any::<prop::sample::Index>(),
        any::<u8>(),
        prop::sample::select(FRAGMENTS),
    );
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation, 1..4),
    )
        .prop_map(|((path, source), mutations)| {
            let mut bytes = source.into_bytes();
            for (how, at, byte, fragment) in mutations {
                let i = at.index(bytes.len() + 1);
                match how {
                    0 => bytes.truncate(i),
                    1 if i < bytes.len() => bytes[i] = byte,
                    _ => {
                        let times = 1 + usize::from(byte % 4) * usize::from(byte % 64);
                        let splice = fragment.repeat(times).into_bytes();
                        bytes.splice(i..i, splice);
                    }
                }
            }
            (path, bytes)
        })
}

/// The violations' lines, columns and paths are inside the source.
fn check_violations(path: &str, source: &str, found: &[Violation]) -> Result<(), TestCaseError> {
    let lines = source.split('\n').count();
    for v in found {
        prop_assert_eq!(&v.path, path);
        prop_assert!(v.start.line >= 1 && v.start.line <= lines, "{:?}", v.start);
        prop_assert!(
            v.end.line >= v.start.line && v.end.line <= lines,
            "{:?}",
            v.end
        );
        prop_assert!(v.start.column >= 1 && v.end.column >= 1);
        prop_assert!(!v.message.is_empty());
    }
    Ok(())
}

#[test]
fn fuzz_front_ends() {
    let settings = settings();
    let checker = Checker::new(&settings);
    let unfiltered = Checker::new(&settings).without_prefilter();
    fuzz("check-front-ends", mutated(seeds()), |(path, bytes)| {
        let source = String::from_utf8_lossy(&bytes);
        let filtered = checker.check_text(path, &source);
        let full = unfiltered.check_text(path, &source);
        match (&filtered, &full) {
            (Ok(a), Ok(b)) => {
                // The prefilter only skips work: it never hides a violation.
                prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                check_violations(path, &source, b)?;
            }
            // A syntax error is reported with a position; the prefilter may skip the file.
            (Ok(a), Err(reason)) => {
                prop_assert!(
                    a.is_empty(),
                    "prefilter kept violations of an unparsable file"
                );
                prop_assert!(!reason.is_empty());
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Err(_), Ok(_)) => prop_assert!(false, "{filtered:?} vs {full:?}"),
        }
        Ok(())
    });
}

#[test]
fn fuzz_files_on_disk() {
    let settings = settings();
    let checker = Checker::new(&settings);
    let dir = tempfile::tempdir().unwrap();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| ("x.py", b)),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| ("x.rs", b)),
        mutated(seeds()).prop_map(|(path, b)| (
            if path.ends_with(".py") {
                "x.py"
            } else {
                "x.rs"
            },
            b
        )),
    ];
    fuzz("check-files", bytes, |(name, bytes)| {
        let file: PathBuf = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        let result = checker.check_paths(std::slice::from_ref(&file)).unwrap();
        prop_assert_eq!(result.files.len(), 1);
        let report = &result.files[0];
        let utf8 = std::str::from_utf8(&bytes);
        match (&report.skipped, utf8) {
            (Some(reason), Err(_)) => prop_assert_eq!(reason, "not UTF-8"),
            (Some(reason), Ok(_)) => {
                prop_assert!(report.violations.is_empty() && !reason.is_empty())
            }
            (None, Ok(source)) => check_violations(&report.path, source, &report.violations)?,
            (None, Err(_)) => prop_assert!(false, "invalid UTF-8 checked"),
        }
        std::fs::remove_file(&file).unwrap();
        Ok(())
    });
}
