//! Reading the configuration file: `ssot.toml`, or `[tool.ssot]` in `pyproject.toml`.
//!
//! Three passes over one text, so every error names its key and position:
//! 1. TOML syntax (line and column of the mistake);
//! 2. the top-level names: the runtime sections, `[check]`, and the checker's own keys that
//!    a checker-only file keeps at the top level; anything else is an error with a
//!    "did you mean";
//! 3. the runtime sections, deserialized with their path tracked, so a wrong type or an
//!    unknown key names `redis.breaker.window-size`, not just "expected u64".

use std::fmt;

use redis_ssot::config::{did_you_mean, unknown};
use serde::Deserialize;

use super::FileOptions;

/// The tables of one `ssot.toml`; `check` is `ssot check`'s, the others the runtime's.
pub(crate) const SECTIONS: &[&str] = &["redis", "gateway", "worker", "tokens", "events", "check"];

/// A configuration file that cannot be used: what (the key, when known), why, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileError {
    /// The key's full path (`redis.command-timeout-ms`), or `None` for a syntax error.
    pub(crate) key: Option<String>,
    /// What is wrong.
    pub(crate) reason: String,
    /// 1-based line and column, when known.
    pub(crate) position: Option<(usize, usize)>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.reason)?,
            None => write!(f, "TOML syntax: {}", self.reason)?,
        }
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileError {}

/// `pyproject.toml`: only `[tool.ssot]` is ours; every other table belongs to other tools.
#[derive(Deserialize, Default)]
struct Pyproject {
    #[serde(default)]
    tool: Tools,
}

#[derive(Deserialize, Default)]
struct Tools {
    #[serde(default)]
    ssot: FileOptions,
}

/// Parses a configuration file's text; `pyproject` reads `[tool.ssot]` of a `pyproject.toml`.
pub(crate) fn parse(text: &str, pyproject: bool) -> Result<FileOptions, FileError> {
    let document: toml::Table = toml::from_str(text).map_err(|err| FileError {
        key: None,
        reason: err.message().trim().to_owned(),
        position: err.span().map(|span| position(text, span.start)),
    })?;
    let (root, prefix) = if pyproject {
        let ssot = document
            .get("tool")
            .and_then(|tool| tool.get("ssot"))
            .and_then(toml::Value::as_table);
        match ssot {
            Some(table) => (table.clone(), "tool.ssot."),
            None => return Ok(FileOptions::default()),
        }
    } else {
        (document, "")
    };
    check_top_level(text, root, prefix)?;
    let deserializer = toml::Deserializer::parse(text).map_err(|err| FileError {
        key: None,
        reason: err.message().trim().to_owned(),
        position: err.span().map(|span| position(text, span.start)),
    })?;
    let result = if pyproject {
        serde_path_to_error::deserialize::<_, Pyproject>(deserializer).map(|p| p.tool.ssot)
    } else {
        serde_path_to_error::deserialize::<_, FileOptions>(deserializer)
    };
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let position = inner.span().map(|span| position(text, span.start));
        let mut error = explain(&path, inner.message().trim());
        error.position = position;
        error
    })
}

/// Top-level names other than the sections must be the checker's own keys (a checker-only
/// file of today's form); `ssot check` reads and warns about those, the runtime accepts them.
fn check_top_level(text: &str, root: toml::Table, prefix: &str) -> Result<(), FileError> {
    let others: toml::Table = root
        .into_iter()
        .filter(|(name, _)| !SECTIONS.contains(&name.as_str()))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    // Only unknown names matter here: the values of checker keys are `ssot check`'s to judge.
    let Err(err) = toml::Value::Table(others).try_into::<ssot_check::config::Options>() else {
        return Ok(());
    };
    let message = err.message().trim().to_owned();
    let Some((name, checker_keys)) = unknown_name(&message, "unknown field `") else {
        return Ok(());
    };
    let mut known: Vec<&str> = SECTIONS.to_vec();
    known.extend(checker_keys.iter().map(String::as_str));
    let error = unknown(&format!("{prefix}{name}"), "table or key", &known);
    Err(FileError {
        key: Some(error.key),
        reason: error.reason,
        position: locate_key(text, &name),
    })
}

/// A serde error at `path`, with "did you mean" for unknown keys and values.
fn explain(path: &str, message: &str) -> FileError {
    // The path of an unknown key already ends with the key itself.
    let join = |name: &str| {
        if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else if path.is_empty() || path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some((name, known)) = unknown_name(message, "unknown field `") {
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let error = unknown(&join(&name), "key", &known);
        return FileError {
            key: Some(error.key),
            reason: error.reason,
            position: None,
        };
    }
    if let Some((value, known)) = unknown_name(message, "unknown variant `") {
        let hint = match did_you_mean(&value, known.iter().map(String::as_str)) {
            Some(meant) => format!("did you mean `{meant}`?"),
            None => format!("expected one of: {}", known.join(", ")),
        };
        return FileError {
            key: Some(path.to_owned()),
            reason: format!("unknown value `{value}`; {hint}"),
            position: None,
        };
    }
    FileError {
        key: Some(path.to_owned()),
        reason: message.to_owned(),
        position: None,
    }
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"): the
/// name and the known names.
fn unknown_name(message: &str, lead: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(lead)?;
    let (name, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), known))
}

/// 1-based line and column of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a top-level `name` is written: `name = ...` or a `[name]` / `[name.x]` header.
fn locate_key(text: &str, name: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let header = trimmed
            .trim_start_matches('[')
            .trim_start()
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with([']', '.']));
        let key = trimmed
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        ((trimmed.starts_with('[') && header) || key).then_some((i + 1, indent + 1))
    })
}
