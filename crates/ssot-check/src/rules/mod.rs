//! The rules, registered in one table ([`Rule`]), one file each.
//!
//! Each rule file documents What / Why / Example / Fix safety and has a fixture in
//! `fixtures/` beside it whose lines carry `# OK` or `# SSOT00N` markers.

pub(crate) mod direct_client;
pub(crate) mod legacy_import;
pub(crate) mod manager_instance;

use crate::config::{Accessor, Settings};
use crate::fix::{Applicability, Edit, Fix};
use crate::lang::python::{BindingKind, PythonModel};

/// A rule of `ssot check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// SSOT001: a Redis client or pool built outside the canonical module.
    DirectClient,
    /// SSOT002: an import of a legacy manager module.
    LegacyImport,
    /// SSOT003: the manager class instantiated outside the canonical module.
    ManagerInstance,
}

/// The registry: code, name, one-line summary, longer explanation.
const TABLE: [(Rule, &str, &str, &str, &str); 3] = [
    (
        Rule::DirectClient,
        "SSOT001",
        "direct-client",
        "Redis client or pool constructed outside the canonical module",
        "Every Redis client or connection pool built outside the canonical module opens its own connections, outside the shared pool, breaker and health checks. Use the shared manager instead.",
    ),
    (
        Rule::LegacyImport,
        "SSOT002",
        "legacy-import",
        "Import of a legacy Redis manager module",
        "The module is a legacy location of the Redis manager; importing it keeps a second source of truth alive. Import the canonical module instead (`--fix` rewrites the import).",
    ),
    (
        Rule::ManagerInstance,
        "SSOT003",
        "manager-instance",
        "Redis manager class instantiated outside the canonical module",
        "Each new manager instance owns its own connections; every component must share the one instance the canonical module exposes.",
    ),
];

impl Rule {
    /// Every rule, in code order.
    pub const ALL: [Rule; 3] = [
        Rule::DirectClient,
        Rule::LegacyImport,
        Rule::ManagerInstance,
    ];

    fn entry(self) -> &'static (Rule, &'static str, &'static str, &'static str, &'static str) {
        TABLE
            .iter()
            .find(|e| e.0 == self)
            .expect("every rule is registered")
    }

    /// The code (`SSOT001`).
    pub fn code(self) -> &'static str {
        self.entry().1
    }

    /// The kebab-case name (`direct-client`).
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// One line saying what the rule finds.
    pub fn summary(self) -> &'static str {
        self.entry().3
    }

    /// Why it matters and what to do.
    pub fn explanation(self) -> &'static str {
        self.entry().4
    }

    /// The rule with this code.
    pub fn from_code(code: &str) -> Option<Rule> {
        TABLE.iter().find(|e| e.1 == code).map(|e| e.0)
    }

    /// The rule's documentation (What it does / Why is this bad? / Example / Fix
    /// safety), read from the `//!` comment of its file: `ssot check --explain`.
    pub fn documentation(self) -> String {
        let file = match self {
            Rule::DirectClient => include_str!("direct_client.rs"),
            Rule::LegacyImport => include_str!("legacy_import.rs"),
            Rule::ManagerInstance => include_str!("manager_instance.rs"),
        };
        let mut doc = format!(
            "# {} ({})\n\n{}\n",
            self.name(),
            self.code(),
            self.summary()
        );
        // The first line repeats the code and name given in the title.
        for line in file.lines().map_while(|l| l.strip_prefix("//!")).skip(1) {
            doc.push_str(line.strip_prefix(' ').unwrap_or(line));
            doc.push('\n');
        }
        doc
    }

    /// Every code, for messages.
    pub(crate) fn codes() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|e| e.1)
    }
}

/// A rule code or name from the command line (`--select`, `--ignore`, `--explain`): a
/// code (`SSOT001`), a code prefix (`SSOT`, `SSOT00`), a name (`direct-client`) or `ALL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSelector {
    rules: Vec<Rule>,
}

impl RuleSelector {
    /// The rules selected.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl std::str::FromStr for RuleSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let rules: Vec<Rule> = Rule::ALL
            .into_iter()
            .filter(|r| {
                text == "ALL"
                    || (!text.is_empty() && r.code().starts_with(text))
                    || r.name() == text
            })
            .collect();
        if rules.is_empty() {
            let names = Rule::ALL.iter().map(|r| r.name());
            return Err(format!(
                "unknown rule `{text}`{}",
                crate::suggest::hint(text, Rule::codes().chain(names))
            ));
        }
        Ok(Self { rules })
    }
}

/// What a rule reports before the checker adds positions, priority and fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) rule: Rule,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) message: String,
    /// Layout-independent text of the flagged code (part of the fingerprint).
    pub(crate) key: String,
    /// Enclosing functions/classes (part of the fingerprint).
    pub(crate) scope: String,
    pub(crate) fix: Option<Fix>,
}

/// What every rule sees of one file.
pub(crate) struct Context<'a> {
    pub(crate) source: &'a str,
    pub(crate) settings: &'a Settings,
    /// Whether the file is one of the canonical modules.
    pub(crate) canonical: bool,
    pub(crate) banned: &'a direct_client::BannedNames,
    /// The tree's Python modules (re-exports, names the canonical module defines).
    pub(crate) modules: &'a crate::modules::ModuleIndex,
}

/// Python unsafe fix: the construction `start..end` becomes `accessor`, and the
/// accessor is imported unless the module already imports it. `None` when the name the
/// accessor needs is bound to something else in the file.
pub(crate) fn python_accessor_fix(
    model: &PythonModel<'_>,
    ctx: &Context<'_>,
    start: usize,
    end: usize,
    accessor: &Accessor,
) -> Option<Fix> {
    let mut edits = vec![Edit {
        start,
        end,
        content: accessor.expression.clone(),
    }];
    let wanted: Vec<String> = accessor
        .module
        .split('.')
        .map(str::to_owned)
        .chain([accessor.name.clone()])
        .collect();
    match model.module_binding(&accessor.name) {
        Some(BindingKind::Import(target)) if target == wanted => {}
        Some(_) => return None,
        None => edits.push(python_import_edit(
            model.import_anchor(),
            ctx.source,
            &format!("from {} import {}", accessor.module, accessor.name),
        )),
    }
    Some(Fix {
        applicability: Applicability::Unsafe,
        message: format!("Use `{}`", accessor.spec()),
        edits,
    })
}

/// Inserts `line` on the line after `anchor` (the end of the last top-level import or
/// the docstring), or at the top.
fn python_import_edit(anchor: Option<usize>, source: &str, line: &str) -> Edit {
    match anchor {
        None => Edit {
            start: 0,
            end: 0,
            content: format!("{line}\n"),
        },
        Some(end) => match source[end..].find('\n') {
            Some(newline) => Edit {
                start: end + newline + 1,
                end: end + newline + 1,
                content: format!("{line}\n"),
            },
            None => Edit {
                start: source.len(),
                end: source.len(),
                content: format!("\n{line}"),
            },
        },
    }
}

/// Shows a resolved name in the file's language (`a.b` for Python, `a::b` for Rust).
pub(crate) fn show(segments: &[String], rust: bool) -> String {
    segments.join(if rust { "::" } else { "." })
}
