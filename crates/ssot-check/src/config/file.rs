//! Finding the configuration file and its checker section.
//!
//! ## Behavior
//! - `ssot.toml` is shared by every `ssot` command: the checker reads `[check]` and accepts
//!   the runtime sections (`[redis]`, `[gateway]`, `[worker]`, `[tokens]`, `[events]`)
//!   that the other commands read. In `pyproject.toml` the same lives under `[tool.ssot]`.
//! - A file without `[check]` may still hold the checker keys at its top level (the
//!   format before `[check]`): they are read, with a deprecation warning.
//! - An unknown table or key is an error that names it, with a "did you mean".

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Options, PYPROJECT_TOML, SSOT_TOML};
use crate::error::Error;
use crate::suggest;

/// The top-level tables of `ssot.toml` that other `ssot` commands read.
pub const RUNTIME_SECTIONS: [&str; 5] = ["redis", "gateway", "worker", "tokens", "events"];

/// The checker's keys, in `[check]`.
const CHECK_KEYS: [&str; 9] = [
    "canonical",
    "manager-class",
    "accessor",
    "async-accessor",
    "rust-accessor",
    "extra-banned",
    "exclude",
    "legacy-modules",
    "priority",
];

/// The options read from a file, and the warnings reading it gave.
#[derive(Debug)]
pub struct Loaded {
    /// The checker's options.
    pub options: Options,
    /// Deprecations to show the user.
    pub warnings: Vec<String>,
}

impl Options {
    /// Reads the checker's options from `path` (`ssot.toml`, or `pyproject.toml` with
    /// `[tool.ssot]`).
    pub fn load(path: &Path) -> Result<Loaded, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let syntax = |message: String| Error::ConfigSyntax {
            path: path.to_owned(),
            message,
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| syntax(e.to_string()))?;
        let (table, location) = if path.file_name().is_some_and(|n| n == PYPROJECT_TOML) {
            let section = table
                .remove("tool")
                .and_then(|tool| match tool {
                    toml::Value::Table(mut tool) => tool.remove("ssot"),
                    _ => None,
                })
                .ok_or_else(|| syntax("no [tool.ssot] section".to_owned()))?;
            match section {
                toml::Value::Table(section) => (section, "tool.ssot."),
                _ => return Err(syntax("`tool.ssot`: expected a table".to_owned())),
            }
        } else {
            (table, "")
        };
        select(table, location, path)
    }
}

/// Takes the checker's section out of `table` (the file, or `[tool.ssot]`), checking
/// every other top-level name.
fn select(mut table: toml::Table, location: &str, path: &Path) -> Result<Loaded, Error> {
    let key_error = |key: &str, message: String| Error::ConfigValue {
        path: path.to_owned(),
        key: format!("{location}{key}"),
        message,
    };
    let mut warnings = Vec::new();
    let (section, key_prefix) = match table.remove("check") {
        Some(toml::Value::Table(check)) => {
            for key in table.keys() {
                if CHECK_KEYS.contains(&key.as_str()) {
                    return Err(key_error(
                        key,
                        format!("a checker key outside [check]; move it into [{location}check]"),
                    ));
                }
                if !RUNTIME_SECTIONS.contains(&key.as_str()) {
                    return Err(unknown_table(key, &key_error));
                }
            }
            (check, format!("{location}check."))
        }
        Some(_) => return Err(key_error("check", "expected a table".to_owned())),
        None => {
            let mut legacy = toml::Table::new();
            for (key, value) in table {
                if CHECK_KEYS.contains(&key.as_str()) {
                    legacy.insert(key, value);
                } else if !RUNTIME_SECTIONS.contains(&key.as_str()) {
                    return Err(unknown_table(&key, &key_error));
                }
            }
            if !legacy.is_empty() {
                let keys: Vec<String> = legacy.keys().map(|k| format!("`{k}`")).collect();
                warnings.push(format!(
                    "{}: checker keys at the top level ({}) are deprecated; move them into [{location}check]",
                    path.display(),
                    keys.join(", ")
                ));
            }
            (legacy, location.to_owned())
        }
    };
    for key in section.keys() {
        if !CHECK_KEYS.contains(&key.as_str()) {
            return Err(Error::ConfigValue {
                path: path.to_owned(),
                key: format!("{key_prefix}{key}"),
                message: format!("unknown key{}", suggest::hint(key, CHECK_KEYS)),
            });
        }
    }
    let mut options = Options::deserialize(section).map_err(|e| Error::ConfigSyntax {
        path: path.to_owned(),
        message: format!("[{}]: {}", key_prefix.trim_end_matches('.'), e.message()),
    })?;
    options.key_prefix = key_prefix;
    Ok(Loaded { options, warnings })
}

fn unknown_table(key: &str, key_error: &dyn Fn(&str, String) -> Error) -> Error {
    let known = RUNTIME_SECTIONS
        .iter()
        .copied()
        .chain(["check"])
        .chain(CHECK_KEYS);
    key_error(
        key,
        format!(
            "unknown key; expected [check] or a runtime section ({}){}",
            RUNTIME_SECTIONS.join(", "),
            suggest::hint(key, known)
        ),
    )
}

/// Finds the configuration for a check starting in `start`: in `start` or the nearest
/// parent that has one, `ssot.toml` when it holds checker settings, else `pyproject.toml`
/// with a `[tool.ssot]` section, else a runtime-only `ssot.toml` (the defaults apply).
pub fn discover(start: &Path) -> Option<PathBuf> {
    let read = |file: &Path| -> Option<toml::Table> {
        toml::from_str(&std::fs::read_to_string(file).ok()?).ok()
    };
    start.ancestors().find_map(|dir| {
        let ssot = dir.join(SSOT_TOML);
        let pyproject = dir.join(PYPROJECT_TOML);
        let pyproject_ssot = read(&pyproject)
            .is_some_and(|t| t.get("tool").and_then(|tool| tool.get("ssot")).is_some());
        if !ssot.is_file() {
            return pyproject_ssot.then_some(pyproject);
        }
        // An unreadable ssot.toml is still chosen, so that its error is reported.
        let checker_settings =
            read(&ssot).is_none_or(|t| t.keys().any(|k| !RUNTIME_SECTIONS.contains(&k.as_str())));
        if checker_settings || !pyproject_ssot {
            Some(ssot)
        } else {
            Some(pyproject)
        }
    })
}
