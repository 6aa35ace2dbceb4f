//! SSOT002 `legacy-import`.
//!
//! ## What it does
//! Finds imports of modules that `[legacy-modules]` marks as old locations of the Redis
//! manager: `import app.core.redis_manager`, `from app.core.redis_manager import x`,
//! `from app.core import redis_manager`, relative forms, and Rust `use` trees.
//!
//! ## Why is this bad?
//! A legacy module keeps a second manager (and its connections) alive, and every new
//! import of it makes the migration longer.
//!
//! ## Example
//! ```python
//! from app.core.redis_manager import get_redis
//! ```
//! Use instead:
//! ```python
//! from app.redis_manager import get_redis
//! ```
//!
//! ## Fix safety
//! The import is rewritten to the canonical module and every name the file uses stays
//! bound (aliases are kept, and `import a.legacy` also rewrites the `a.legacy.x`
//! references). The fix is safe only when the canonical module is a file of the checked
//! tree that defines every name imported from it (a function, class, assignment, import
//! or submodule). When one of those names is missing there is no fix; when the module is
//! outside the tree (an installed package, any Rust crate or module) or binds names
//! dynamically (`*` imports, `__getattr__`), the fix is unsafe. Relative imports and
//! `from` imports that mix legacy and other names are reported without a fix.

use crate::fix::{Applicability, Edit, Fix};
use crate::lang::python::{BindingKind, PythonModel};
use crate::lang::rust::{RustModel, path_segments};
use crate::lang::{compact, compact_text};
use crate::rules::{Context, Finding, Rule, show};

fn legacy_of<'s>(ctx: &'s Context<'_>, path: &[String]) -> Option<(&'s [String], &'s [String])> {
    ctx.settings
        .legacy_modules
        .iter()
        .find(|(legacy, _)| path.starts_with(legacy))
        .map(|(legacy, canonical)| (legacy.as_slice(), canonical.as_slice()))
}

fn message(legacy: &[String], canonical: &[String], rust: bool) -> String {
    format!(
        "Import of legacy Redis module `{}`; use `{}`",
        show(legacy, rust),
        show(canonical, rust)
    )
}

/// The fix, if the names it imports are known to exist: `defined` holds, per name, whether
/// the canonical module defines it (`None`: cannot tell). Any missing name: no fix; any
/// unknown one: unsafe; all defined: safe.
fn fix(
    edits: Vec<Edit>,
    canonical: &[String],
    rust: bool,
    defined: impl IntoIterator<Item = Option<bool>>,
) -> Option<Fix> {
    let mut applicability = Applicability::Safe;
    for known in defined {
        match known {
            Some(true) => {}
            Some(false) => return None,
            None => applicability = Applicability::Unsafe,
        }
    }
    Some(Fix {
        applicability,
        message: format!("Import from `{}`", show(canonical, rust)),
        edits,
    })
}

/// `Some(true)` when `module` is a module of the checked tree, else unknown.
fn module_known(ctx: &Context<'_>, module: &[String]) -> Option<bool> {
    ctx.modules.contains(module).then_some(true)
}

pub(crate) fn check_python(model: &PythonModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.settings.legacy_modules.is_empty() {
        return;
    }
    for import in &model.imports {
        let report =
            |out: &mut Vec<Finding>, legacy: &[String], canonical: &[String], fix: Option<Fix>| {
                out.push(Finding {
                    rule: Rule::LegacyImport,
                    start: import.range.start,
                    end: import.range.end,
                    message: message(legacy, canonical, false),
                    key: compact(&ctx.source[import.range.clone()]),
                    scope: String::new(),
                    fix,
                });
            };
        match &import.from_module {
            Some(module) => {
                if let Some((legacy, canonical)) = legacy_of(ctx, module) {
                    // `from legacy[.sub] import names`: only the module changes.
                    let target: Vec<String> = canonical
                        .iter()
                        .chain(&module[legacy.len()..])
                        .cloned()
                        .collect();
                    let fix = import.module_range.as_ref().map(|written| {
                        vec![Edit {
                            start: written.start,
                            end: written.end,
                            content: target.join("."),
                        }]
                    });
                    let defined = import.items.iter().map(|i| {
                        i.path
                            .last()
                            .and_then(|name| ctx.modules.defines(&target, name))
                    });
                    report(
                        out,
                        legacy,
                        canonical,
                        fix.and_then(|e| self::fix(e, canonical, false, defined)),
                    );
                } else if let Some((legacy, canonical, item)) = import
                    .items
                    .iter()
                    .find_map(|i| legacy_of(ctx, &i.path).map(|(l, c)| (l, c, i)))
                {
                    // `from parent import legacy [as x]`: rewrite when it is the only name.
                    let fix =
                        (import.items.len() == 1 && item.path.len() == legacy.len()).then(|| {
                            let local = item
                                .alias
                                .clone()
                                .unwrap_or_else(|| legacy.last().cloned().unwrap_or_default());
                            let (last, parent) = canonical
                                .split_last()
                                .expect("module paths are never empty");
                            let alias = if *last == local {
                                String::new()
                            } else {
                                format!(" as {local}")
                            };
                            let content = if parent.is_empty() {
                                format!("import {last}{alias}")
                            } else {
                                format!("from {} import {last}{alias}", parent.join("."))
                            };
                            vec![Edit {
                                start: import.range.start,
                                end: import.range.end,
                                content,
                            }]
                        });
                    let known = module_known(ctx, canonical);
                    report(
                        out,
                        legacy,
                        canonical,
                        fix.and_then(|e| self::fix(e, canonical, false, [known])),
                    );
                }
            }
            None => {
                for item in &import.items {
                    let Some((legacy, canonical)) = legacy_of(ctx, &item.path) else {
                        continue;
                    };
                    let target: Vec<String> = canonical
                        .iter()
                        .chain(&item.path[legacy.len()..])
                        .cloned()
                        .collect();
                    let mut edits = vec![Edit {
                        start: item.name_range.start,
                        end: item.name_range.end,
                        content: target.join("."),
                    }];
                    let fix = match item.alias {
                        Some(_) => Some(edits),
                        None => reference_edits(model, legacy, canonical).map(|refs| {
                            edits.extend(refs);
                            edits
                        }),
                    };
                    let known = module_known(ctx, &target);
                    report(
                        out,
                        legacy,
                        canonical,
                        fix.and_then(|e| self::fix(e, canonical, false, [known])),
                    );
                }
            }
        }
    }
}

/// For `import a.legacy` (which binds `a`), the `a.legacy` prefixes of the references
/// rewritten to the canonical module. `None` when that cannot be done safely.
fn reference_edits(
    model: &PythonModel<'_>,
    legacy: &[String],
    canonical: &[String],
) -> Option<Vec<Edit>> {
    if legacy.len() < 2
        || (canonical[0] != legacy[0]
            && model
                .module_binding(&canonical[0])
                .is_some_and(|b| b != BindingKind::Import(vec![canonical[0].clone()])))
    {
        return None;
    }
    let edits = model
        .attribute_references(legacy)
        .into_iter()
        .map(|range| Edit {
            start: range.start,
            end: range.end,
            content: canonical.join("."),
        })
        .collect();
    Some(edits)
}

pub(crate) fn check_rust(model: &RustModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.settings.legacy_modules.is_empty() {
        return;
    }
    for use_decl in &model.uses {
        let Some((legacy, canonical)) =
            use_decl.leaves.iter().find_map(|leaf| legacy_of(ctx, leaf))
        else {
            continue;
        };
        // Replace the legacy prefix where it is written as one path at the start of the tree.
        let mut node = use_decl.prefix_node;
        while let Some(n) = node {
            match path_segments(n, ctx.source) {
                Some(s) if s.len() > legacy.len() => node = n.child_by_field_name("path"),
                Some(s) if s == legacy => break,
                _ => node = None,
            }
        }
        let fix = node.map(|n| {
            vec![Edit {
                start: n.start_byte(),
                end: n.end_byte(),
                content: canonical.join("::"),
            }]
        });
        out.push(Finding {
            rule: Rule::LegacyImport,
            start: use_decl.node.start_byte(),
            end: use_decl.node.end_byte(),
            message: message(legacy, canonical, true),
            key: compact_text(use_decl.node, ctx.source),
            scope: String::new(),
            // Whether the canonical crate or module exports the same names is not known
            // from one file: the fix is unsafe.
            fix: fix.and_then(|e| self::fix(e, canonical, true, [None])),
        });
    }
}
