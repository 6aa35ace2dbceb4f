//! Configuration: `[check]` in `ssot.toml`, or `[tool.ssot.check]` in `pyproject.toml`.
//!
//! Two stages, as in ruff: [`Options`] is what the file says (serde, unknown keys are
//! errors), [`Settings`] is what the checker uses (globs compiled, names parsed, every
//! value validated with an error that names its key). `file` finds the file and its
//! `[check]` section among the runtime sections other commands read.

use std::path::PathBuf;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::Error;
use crate::names::{NamePattern, is_identifier, split_name};

mod file;

pub use file::{Loaded, RUNTIME_SECTIONS, discover};

/// File name of the stand-alone configuration.
pub const SSOT_TOML: &str = "ssot.toml";
/// File name of a Python project's configuration, read from `[tool.ssot]`.
pub const PYPROJECT_TOML: &str = "pyproject.toml";

/// The configuration as written (first stage).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// How keys are named in errors: `check.` for `[check]`, empty for the deprecated
    /// top-level keys, `tool.ssot.check.` in pyproject.toml.
    #[serde(skip)]
    pub(crate) key_prefix: String,
    /// Globs of the files allowed to build clients.
    pub canonical: Option<Vec<String>>,
    /// The manager class (a bare name or a dotted path).
    pub manager_class: Option<String>,
    /// `module:expression` that unsafe fixes insert in Python files.
    pub accessor: Option<String>,
    /// `module:expression` that unsafe fixes put in place of async constructions.
    pub async_accessor: Option<String>,
    /// The shared instance in Rust, named in SSOT003's message.
    pub rust_accessor: Option<String>,
    /// More banned names for SSOT001.
    pub extra_banned: Option<Vec<String>>,
    /// Globs never checked.
    pub exclude: Option<Vec<String>>,
    /// Legacy module → canonical module.
    pub legacy_modules: Option<toml::Table>,
    /// Priority level → globs, in file order.
    pub priority: Option<toml::Table>,
}

/// How urgent a file's violations are; the order is most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Core services: fix first.
    Critical,
    /// Important code paths.
    High,
    /// Everything no glob matched.
    Normal,
    /// Tests, docs, scripts.
    Low,
}

impl Priority {
    /// All levels, most urgent first.
    pub const ALL: [Priority; 4] = [Self::Critical, Self::High, Self::Normal, Self::Low];

    /// The level's name in config files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

/// What unsafe fixes insert in Python: `from <module> import <name>` plus `<expression>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    /// The module to import from (`app.redis_manager`).
    pub module: String,
    /// The name imported (`redis_manager`).
    pub name: String,
    /// The expression put in place of the construction (`redis_manager` or `get_redis()`).
    pub expression: String,
}

impl Accessor {
    /// `module:expression` as written in the config.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.module, self.expression)
    }
}

/// The manager class of SSOT003.
#[derive(Debug, Clone)]
pub struct ManagerClass {
    /// Its bare name (`RedisManager`).
    pub name: String,
    /// Its full path when configured with one.
    pub(crate) pattern: Option<NamePattern>,
}

/// The validated configuration (second stage).
#[derive(Debug)]
pub struct Settings {
    /// Directory that globs, fingerprints and the baseline are relative to.
    pub root: PathBuf,
    /// The file the settings came from, if any.
    pub config_file: Option<PathBuf>,
    canonical: GlobSet,
    exclude: GlobSet,
    priority: Vec<(Priority, GlobSet)>,
    /// SSOT003's class; `None` turns the rule off.
    pub manager_class: Option<ManagerClass>,
    /// What unsafe fixes put in place of sync constructions in Python files.
    pub accessor: Option<Accessor>,
    /// What unsafe fixes put in place of async constructions (`redis.asyncio`, `aioredis`).
    pub async_accessor: Option<Accessor>,
    /// What unsafe fixes insert in Rust files.
    pub rust_accessor: Option<String>,
    pub(crate) extra_banned: Vec<NamePattern>,
    /// Legacy module segments → canonical module segments.
    pub legacy_modules: Vec<(Vec<String>, Vec<String>)>,
}

impl Settings {
    /// Settings with no configuration file: every file is checked, nothing is canonical.
    pub fn defaults(root: PathBuf) -> Self {
        Options::default()
            .resolve(root, None)
            .expect("the empty configuration is valid")
    }

    /// Whether `rel_path` (relative to the root, `/`-separated) may build clients.
    pub fn is_canonical(&self, rel_path: &str) -> bool {
        self.canonical.is_match(rel_path)
    }

    /// Whether `rel_path` is excluded from checking.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        self.exclude.is_match(rel_path)
    }

    /// The priority of the violations in `rel_path`.
    pub fn priority_of(&self, rel_path: &str) -> Priority {
        self.priority
            .iter()
            .find(|(_, globs)| globs.is_match(rel_path))
            .map_or(Priority::Normal, |(level, _)| *level)
    }
}

impl Options {
    /// Validates the options into settings; errors name the offending key.
    pub fn resolve(self, root: PathBuf, config_file: Option<PathBuf>) -> Result<Settings, Error> {
        let file = config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("<defaults>"));
        let prefix = self.key_prefix.clone();
        let err = |key: String, message: String| Error::ConfigValue {
            path: file.clone(),
            key: format!("{prefix}{key}"),
            message,
        };

        let canonical = globs("canonical", &self.canonical.unwrap_or_default(), false)
            .map_err(|(k, m)| err(k, m))?;
        let exclude = globs("exclude", &self.exclude.unwrap_or_default(), true)
            .map_err(|(k, m)| err(k, m))?;

        let mut priority = Vec::new();
        for (level, value) in self.priority.unwrap_or_default() {
            let key = format!("priority.{level}");
            let parsed = Priority::ALL
                .into_iter()
                .find(|p| p.as_str() == level)
                .ok_or_else(|| {
                    err(
                        key.clone(),
                        "unknown priority level; expected critical, high, normal or low".into(),
                    )
                })?;
            let patterns = string_array(&value)
                .ok_or_else(|| err(key.clone(), "expected an array of glob strings".into()))?;
            priority.push((
                parsed,
                globs(&key, &patterns, false).map_err(|(k, m)| err(k, m))?,
            ));
        }

        let manager_class = match self.manager_class {
            None => None,
            Some(text) => {
                let segments = split_name(&text)
                    .filter(|s| s.iter().all(|s| is_identifier(s)))
                    .ok_or_else(|| {
                        err(
                            "manager-class".into(),
                            format!("`{text}` is not a class name or dotted path"),
                        )
                    })?;
                let name = segments.last().cloned().unwrap_or_default();
                let pattern = (segments.len() > 1)
                    .then(|| NamePattern::parse(&text))
                    .flatten();
                Some(ManagerClass { name, pattern })
            }
        };

        let accessor = self
            .accessor
            .map(|text| parse_accessor(&text).ok_or_else(|| err("accessor".into(), format!("`{text}` is not `module:expression` (e.g. `app.redis_manager:redis_manager`)"))))
            .transpose()?;

        let async_accessor = self
            .async_accessor
            .map(|text| {
                parse_accessor(&text).ok_or_else(|| {
                    err(
                        "async-accessor".into(),
                        format!(
                            "`{text}` is not `module:expression` (e.g. `redis_ssot:get_redis()`)"
                        ),
                    )
                })
            })
            .transpose()?;

        let rust_accessor = match self.rust_accessor {
            Some(text) if text.trim().is_empty() => {
                return Err(err("rust-accessor".into(), "must not be empty".into()));
            }
            other => other,
        };

        let mut extra_banned = Vec::new();
        for (i, text) in self.extra_banned.unwrap_or_default().iter().enumerate() {
            extra_banned.push(NamePattern::parse(text).ok_or_else(|| {
                err(
                    format!("extra-banned[{i}]"),
                    format!("`{text}` is not a dotted name, a Rust path or `pkg.*`"),
                )
            })?);
        }

        let mut legacy_modules = Vec::new();
        for (legacy, canonical_value) in self.legacy_modules.unwrap_or_default() {
            let key = format!("legacy-modules.\"{legacy}\"");
            let legacy_segments = module_segments(&legacy)
                .ok_or_else(|| err(key.clone(), format!("`{legacy}` is not a module path")))?;
            let target = canonical_value
                .as_str()
                .ok_or_else(|| err(key.clone(), "expected a module path string".into()))?;
            let target_segments = module_segments(target)
                .ok_or_else(|| err(key.clone(), format!("`{target}` is not a module path")))?;
            legacy_modules.push((legacy_segments, target_segments));
        }

        Ok(Settings {
            root,
            config_file,
            canonical,
            exclude,
            priority,
            manager_class,
            accessor,
            async_accessor,
            rust_accessor,
            extra_banned,
            legacy_modules,
        })
    }
}

fn module_segments(text: &str) -> Option<Vec<String>> {
    split_name(text).filter(|s| {
        s.iter()
            .all(|s| is_identifier(s) || s == "crate" || s == "self" || s == "super")
    })
}

fn string_array(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn parse_accessor(text: &str) -> Option<Accessor> {
    let (module, expression) = text.split_once(':')?;
    let module_ok = split_name(module).is_some_and(|s| s.iter().all(|s| is_identifier(s)));
    let name: String = expression
        .chars()
        .take_while(|c| *c == '_' || c.is_alphanumeric())
        .collect();
    (module_ok && is_identifier(&name)).then(|| Accessor {
        module: module.trim().to_owned(),
        name,
        expression: expression.trim().to_owned(),
    })
}

/// Compiles gitignore-like globs: `*` stays inside one path segment, `**` crosses them,
/// a pattern also matches everything below a matching directory, and (for `exclude`) a
/// pattern without `/` matches at any depth.
fn globs(key: &str, patterns: &[String], anywhere: bool) -> Result<GlobSet, (String, String)> {
    let mut builder = GlobSetBuilder::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let trimmed = pattern.trim_start_matches("./").trim_end_matches('/');
        let mut variants = vec![trimmed.to_owned(), format!("{trimmed}/**")];
        if anywhere && !trimmed.contains('/') {
            variants.push(format!("**/{trimmed}"));
            variants.push(format!("**/{trimmed}/**"));
        }
        for variant in variants {
            let glob = GlobBuilder::new(&variant)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    (
                        format!("{key}[{i}]"),
                        format!("bad glob `{pattern}`: {}", e.kind()),
                    )
                })?;
            builder.add(glob);
        }
    }
    builder.build().map_err(|e| (key.to_owned(), e.to_string()))
}
