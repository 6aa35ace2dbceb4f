//! SSOT003 `manager-instance`.
//!
//! ## What it does
//! Finds the configured `manager-class` instantiated outside the canonical module(s):
//! `RedisManager(...)` or `RedisManager.from_*(...)` in Python; `RedisManager::new(..)`,
//! other constructors (`default`, `builder`, `connect`, `open`, `create`, `new_*`,
//! `from_*`, `with_*`, `connect_*`) and `RedisManager { .. }` literals in Rust. The
//! class is matched through imports (and `*` imports); a class of the same name that
//! the file defines itself is not the manager and is not flagged.
//!
//! ## Why is this bad?
//! The manager exists so that the process has one set of connections. A second instance
//! doubles them and splits the breaker and health state.
//!
//! ## Example
//! ```python
//! from app.redis_manager import RedisManager
//! manager = RedisManager()
//! ```
//! Use instead:
//! ```python
//! from app.redis_manager import redis_manager
//! manager = redis_manager
//! ```
//!
//! ## Fix safety
//! Python: unsafe (`--unsafe-fixes` with `accessor` set): the construction is replaced by
//! the shared instance, which ignores the arguments given here, and the accessor is
//! imported. Rust: no fix; the shared instance (`rust-accessor`, named in the message)
//! has another type than the manager built here, so no replacement compiles as is.

use crate::lang::compact;
use crate::lang::python::PythonModel;
use crate::lang::rust::RustModel;
use crate::rules::{Context, Finding, Rule, python_accessor_fix};

/// Whether `candidate` names the manager class itself (not a method of it).
fn is_manager(ctx: &Context<'_>, class: &[String]) -> bool {
    let Some(manager) = &ctx.settings.manager_class else {
        return false;
    };
    match &manager.pattern {
        Some(pattern) => pattern.matches(class),
        None => class.last() == Some(&manager.name),
    }
}

fn is_rust_constructor(name: &str) -> bool {
    matches!(
        name,
        "new" | "default" | "builder" | "connect" | "open" | "create"
    ) || ["new_", "from_", "with_", "connect_"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn message(ctx: &Context<'_>, written: &str, rust: bool) -> String {
    let name = ctx
        .settings
        .manager_class
        .as_ref()
        .map_or("", |m| m.name.as_str());
    let accessor = if rust {
        ctx.settings.rust_accessor.clone()
    } else {
        ctx.settings.accessor.as_ref().map(|a| a.spec())
    };
    let with = accessor.map_or(String::new(), |a| format!(" (`{a}`)"));
    let written = if written == name {
        String::new()
    } else {
        format!(" as `{written}`")
    };
    format!(
        "`{name}` instantiated outside the canonical module{written}; use the shared instance{with}"
    )
}

pub(crate) fn check_python(model: &PythonModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.canonical || ctx.settings.manager_class.is_none() {
        return;
    }
    for call in &model.calls {
        let found = model.candidates(call).into_iter().any(|c| {
            let method = c
                .last()
                .is_some_and(|m| m.starts_with("from_") || m == "create");
            is_manager(ctx, &c) || (method && is_manager(ctx, &c[..c.len() - 1]))
        });
        if !found {
            continue;
        }
        let written = &ctx.source[call.callee()];
        let range = call.range();
        out.push(Finding {
            rule: Rule::ManagerInstance,
            start: range.start,
            end: range.end,
            message: message(ctx, written, false),
            key: compact(written),
            scope: model.scope_path(call),
            fix: ctx
                .settings
                .accessor
                .as_ref()
                .and_then(|a| python_accessor_fix(model, ctx, range.start, range.end, a)),
        });
    }
}

pub(crate) fn check_rust(model: &RustModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.canonical || ctx.settings.manager_class.is_none() {
        return;
    }
    for call in &model.calls {
        let found = model.candidates(call).into_iter().any(|c| {
            if call.struct_literal {
                is_manager(ctx, &c)
            } else {
                c.len() >= 2
                    && is_rust_constructor(&c[c.len() - 1])
                    && is_manager(ctx, &c[..c.len() - 1])
            }
        });
        if !found {
            continue;
        }
        let written = call.path.join("::");
        let (start, end) = (call.start.start_byte(), call.end.end_byte());
        out.push(Finding {
            rule: Rule::ManagerInstance,
            start,
            end,
            message: message(ctx, &written, true),
            key: written,
            scope: model.scope_path(call).to_owned(),
            fix: None,
        });
    }
}
