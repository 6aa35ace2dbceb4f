//! Python: scopes, bindings and import resolution over Ruff's syntax tree.
//!
//! ## Behavior
//! - Every `import` / `from … import` binds its local name to a fully qualified name
//!   (`import redis as r` binds `r` → `redis`; `from redis.asyncio import from_url`
//!   binds `from_url` → `redis.asyncio.from_url`); relative imports resolve against the
//!   file's own module path. `from __future__ import …` binds nothing.
//! - Functions, lambdas and classes open scopes; a function's parameter defaults and
//!   annotations, and a class's bases, belong to its own scope, its decorators to the
//!   enclosing one. Comprehensions open none. A reference resolves to the latest binding
//!   before it in its own scope, or to the last binding of an enclosing scope (function
//!   bodies run later); class scopes are invisible to nested functions.
//! - A name re-bound by `def`, `class`, assignment, a parameter, a loop, a
//!   comprehension, `:=`, `with … as` or `except … as` no longer refers to the import,
//!   so look-alikes are not flagged. `X = None` beside an import of `X` is treated as an
//!   import fallback, not a rebinding. Match-pattern captures and type parameters bind
//!   nothing.
//! - A parenthesised callee or attribute base (`(redis).Redis()`, `(Redis)()`) is not
//!   resolved: the prefilter in `check.rs` relies on a banned call being written
//!   `Name(` and `pkg.Name(`.
//!
//! # Layout
//! - this file: the model (scopes, bindings, imports, calls) and name resolution;
//! - `build`: the walk that builds it;
//! - `stack`: growing the stack for deeply nested code, and freeing deep trees.
//!
//! ## Performance
//! Names are borrowed from the tree, and the callee of a call is only spelled out when
//! its first segment resolves to an import (or is unbound beside a `*` import).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use ruff_python_ast::token::TokenKind;
use ruff_python_ast::visitor::source_order::{self, SourceOrderVisitor};
use ruff_python_ast::{self as ast, Expr, ModModule, Pattern, Stmt, StringLike};
use ruff_text_size::{Ranged, TextSize};

use super::PythonSyntax;
use build::Builder;
use stack::guarded;
pub(crate) use stack::{free, free_unmodelled};

mod build;
mod stack;

/// What a name is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BindingKind {
    /// An import of this fully qualified name.
    Import(Vec<String>),
    /// `name = None` (an optional-import fallback).
    NoneFallback,
    /// Anything else defined in the file.
    Local,
}

#[derive(Debug, Clone)]
struct Binding {
    offset: usize,
    kind: BindingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Module,
    Function,
    Class,
}

#[derive(Debug)]
struct Scope<'t> {
    kind: ScopeKind,
    name: &'t str,
    parent: Option<usize>,
    bindings: HashMap<&'t str, Vec<Binding>>,
    not_local: HashSet<&'t str>,
}

impl<'t> Scope<'t> {
    fn new(kind: ScopeKind, name: &'t str, parent: Option<usize>) -> Self {
        Self {
            kind,
            name,
            parent,
            bindings: HashMap::new(),
            not_local: HashSet::new(),
        }
    }
}

/// One name brought in by an import statement.
#[derive(Debug, Clone)]
pub(crate) struct ImportItem<'t> {
    /// Where the dotted name is written (`redis.asyncio` in `import redis.asyncio as r`).
    pub(crate) name_range: Range<usize>,
    /// The full path imported: the module for `import`, module + name for `from`.
    pub(crate) path: Vec<String>,
    /// The `as` name, if any.
    pub(crate) alias: Option<String>,
    /// The name the import binds: the alias, else the last segment (`from`) or the first (`import`).
    pub(crate) local: &'t str,
}

/// An `import` or `from … import` statement.
#[derive(Debug, Clone)]
pub(crate) struct Import<'t> {
    /// The whole statement.
    pub(crate) range: Range<usize>,
    /// For `from M import …`: `M` resolved.
    pub(crate) from_module: Option<Vec<String>>,
    /// Where `M` is written, for an absolute `from M import …` (`None` when relative).
    pub(crate) module_range: Option<Range<usize>>,
    pub(crate) items: Vec<ImportItem<'t>>,
}

/// A call expression and the scope it is in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'t> {
    expr: &'t ast::ExprCall,
    scope: usize,
}

impl Call<'_> {
    /// The whole call, arguments included.
    pub(crate) fn range(&self) -> Range<usize> {
        span(self.expr)
    }

    /// The callee as written.
    pub(crate) fn callee(&self) -> Range<usize> {
        span(&*self.expr.func)
    }
}

/// The resolved view of one Python file.
pub(crate) struct PythonModel<'t> {
    source: &'t str,
    module: &'t ModModule,
    scopes: Vec<Scope<'t>>,
    pub(crate) calls: Vec<Call<'t>>,
    pub(crate) imports: Vec<Import<'t>>,
    /// Byte ranges of the comments, in source order.
    pub(crate) comments: Vec<Range<usize>>,
    star_modules: Vec<Vec<String>>,
    /// How deeply statements, expressions and patterns nest (see [`free`]).
    pub(crate) depth: usize,
}

/// The byte range of a node.
fn span(node: &impl Ranged) -> Range<usize> {
    node.start().to_usize()..node.end().to_usize()
}

/// Whether the next token after `end` closes a parenthesis: the expression ending there
/// is parenthesised (Ruff's ranges leave the parentheses out).
fn closes_paren(source: &str, end: TextSize) -> bool {
    let rest = &source.as_bytes()[end.to_usize()..];
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b' ' | b'\t' | b'\x0c' | b'\r' | b'\n' | b'\\' => i += 1,
            b'#' => {
                i += rest[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(rest.len() - i)
            }
            b => return b == b')',
        }
    }
    false
}

impl<'t> PythonModel<'t> {
    /// Builds the model; `module_path` is the file's dotted module (for relative imports).
    pub(crate) fn build(
        parsed: &'t PythonSyntax,
        source: &'t str,
        module_path: &[String],
        is_package: bool,
    ) -> Self {
        let package: Vec<String> = if is_package {
            module_path.to_vec()
        } else {
            module_path[..module_path.len().saturating_sub(1)].to_vec()
        };
        let comments = parsed
            .tokens()
            .iter()
            .filter(|t| t.kind() == TokenKind::Comment)
            .map(span)
            .collect();
        let mut builder = Builder {
            model: Self {
                source,
                module: parsed.syntax(),
                scopes: vec![Scope::new(ScopeKind::Module, "", None)],
                calls: Vec::new(),
                imports: Vec::new(),
                comments,
                star_modules: Vec::new(),
                depth: 0,
            },
            package,
            current: 0,
            depth: 0,
        };
        builder.visit_body(&parsed.syntax().body);
        builder.model
    }
}

impl<'t> PythonModel<'t> {
    /// Every fully qualified name `call`'s callee may stand for: the import it resolves
    /// to, or for a name bound nowhere in the file, that name in each `*`-imported module.
    pub(crate) fn candidates(&self, call: &Call<'t>) -> Vec<Vec<String>> {
        let callee = &*call.expr.func;
        let offset = call.expr.start().to_usize();
        if closes_paren(self.source, callee.end()) {
            return Vec::new();
        }
        // The first segment decides; most callees are locals, methods or builtins.
        let mut first = callee;
        while let Expr::Attribute(attribute) = first {
            first = &attribute.value;
        }
        if let Expr::Name(name) = first {
            let binding = self.lookup(name.id.as_str(), call.scope, offset);
            if matches!(
                binding,
                Some(BindingKind::NoneFallback | BindingKind::Local)
            ) || (binding.is_none() && self.star_modules.is_empty())
            {
                return Vec::new();
            }
        }
        let Some(segments) = dotted_parts(callee, self.source) else {
            return Vec::new();
        };
        let binding = self.lookup(segments[0], call.scope, offset);
        let owned = |parts: &[&str]| {
            parts
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<String>>()
        };
        match binding {
            Some(BindingKind::Import(target)) => vec![
                target
                    .iter()
                    .cloned()
                    .chain(owned(&segments[1..]))
                    .collect(),
            ],
            Some(_) => Vec::new(),
            None => self
                .star_modules
                .iter()
                .map(|m| m.iter().cloned().chain(owned(&segments)).collect())
                .collect(),
        }
    }

    /// The binding `name` refers to at `offset` in `scope`; `None` when unbound.
    fn lookup(&self, name: &str, scope: usize, offset: usize) -> Option<&BindingKind> {
        let mut current = Some(scope);
        let mut innermost = true;
        while let Some(index) = current {
            let s = &self.scopes[index];
            current = s.parent;
            if (!innermost && s.kind == ScopeKind::Class) || s.not_local.contains(name) {
                innermost = false;
                continue;
            }
            if let Some(bindings) = s.bindings.get(name) {
                let has_import = bindings
                    .iter()
                    .any(|b| matches!(b.kind, BindingKind::Import(_)));
                let eligible = || {
                    bindings
                        .iter()
                        .filter(|b| !(has_import && b.kind == BindingKind::NoneFallback))
                };
                let before = innermost
                    .then(|| eligible().rfind(|b| b.offset < offset))
                    .flatten();
                return before.or_else(|| eligible().next_back()).map(|b| &b.kind);
            }
            innermost = false;
        }
        None
    }

    /// Each module-level name with what it is bound to at the end of the module.
    pub(crate) fn module_bindings(&self) -> Vec<(&'t str, BindingKind)> {
        self.scopes[0]
            .bindings
            .keys()
            .filter_map(|name| Some((*name, self.lookup(name, 0, usize::MAX)?.clone())))
            .collect()
    }

    /// Whether the module has a `from x import *`.
    pub(crate) fn has_star_import(&self) -> bool {
        !self.star_modules.is_empty()
    }

    /// What a module-level `name` is bound to at the end of the module.
    pub(crate) fn module_binding(&self, name: &str) -> Option<BindingKind> {
        self.lookup(name, 0, usize::MAX).cloned()
    }

    /// `outer.inner` names of the functions and classes around `call`.
    pub(crate) fn scope_path(&self, call: &Call<'t>) -> String {
        let mut names = Vec::new();
        let mut current = Some(call.scope);
        while let Some(index) = current {
            if !self.scopes[index].name.is_empty() {
                names.push(self.scopes[index].name);
            }
            current = self.scopes[index].parent;
        }
        names.reverse();
        names.join(".")
    }

    /// Where a new import line goes: after the last top-level import, else after the
    /// module docstring; `None` when the module has neither.
    pub(crate) fn import_anchor(&self) -> Option<usize> {
        // A docstring is the first thing in the file: not even a comment comes before it.
        let commented = |stmt: &Stmt| {
            self.comments
                .first()
                .is_some_and(|c| c.start < stmt.start().to_usize())
        };
        let mut anchor = None;
        for (i, stmt) in self.module.body.iter().enumerate() {
            let is_docstring = i == 0 && is_docstring(stmt, self.source) && !commented(stmt);
            if is_docstring || matches!(stmt, Stmt::Import(_) | Stmt::ImportFrom(_)) {
                anchor = Some(stmt.end().to_usize());
            }
        }
        anchor
    }

    /// The names of the module's top-level functions (`def` and `async def`).
    pub(crate) fn top_level_functions(&self) -> Vec<&'t str> {
        self.module
            .body
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::FunctionDef(def) => Some(def.name.id.as_str()),
                _ => None,
            })
            .collect()
    }

    /// `name = <value>` at the top level: each name with its value's range.
    pub(crate) fn top_level_assignments(&self) -> Vec<(&'t str, Range<usize>)> {
        self.module
            .body
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::Assign(assign) => match assign.targets.as_slice() {
                    [Expr::Name(name)] => Some((name.id.as_str(), span(&*assign.value))),
                    _ => None,
                },
                Stmt::AnnAssign(assign) => match (&*assign.target, &assign.value) {
                    (Expr::Name(name), Some(value)) => Some((name.id.as_str(), span(&**value))),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// How many times each name is referenced (read, written or deleted) outside imports.
    pub(crate) fn name_references(&self) -> HashMap<&'t str, usize> {
        let mut counter = NameCounter {
            counts: HashMap::new(),
        };
        counter.visit_body(&self.module.body);
        counter.counts
    }

    /// The ranges of every `a.b.c` attribute chain in the file whose segments are `path`
    /// (outside import statements, which write module names, not attributes).
    pub(crate) fn attribute_references(&self, path: &[String]) -> Vec<Range<usize>> {
        let mut finder = AttributeFinder {
            source: self.source,
            path,
            found: Vec::new(),
        };
        finder.visit_body(&self.module.body);
        finder.found
    }
}

/// The dotted module of a root-relative Python path (`app/db.py` → `app.db`), and
/// whether it is a package (`__init__.py`).
pub(crate) fn module_of_path(path: &str) -> (Vec<String>, bool) {
    let stem = path.trim_end_matches(".pyi").trim_end_matches(".py");
    let mut segments: Vec<String> = stem.split('/').map(str::to_owned).collect();
    let is_package = segments.last().is_some_and(|s| s == "__init__");
    if is_package {
        segments.pop();
    }
    (segments, is_package)
}

/// A statement that is a lone string (`"""doc"""`, `f"…"`, `b"…"`, or a bare tuple
/// starting with one).
fn is_docstring(stmt: &Stmt, source: &str) -> bool {
    let Stmt::Expr(ast::StmtExpr { value, .. }) = stmt else {
        return false;
    };
    let first = match &**value {
        Expr::Tuple(tuple) if !tuple.parenthesized => tuple.elts.first(),
        other => Some(other),
    };
    first.is_some_and(|e| {
        StringLike::try_from(e).is_ok_and(|s| !s.is_implicit_concatenated())
            && !closes_paren(source, e.end())
    })
}

/// Counts the references (`Expr::Name`) to each name, outside import statements.
struct NameCounter<'t> {
    counts: HashMap<&'t str, usize>,
}

impl<'t> SourceOrderVisitor<'t> for NameCounter<'t> {
    fn visit_stmt(&mut self, stmt: &'t Stmt) {
        guarded(|| source_order::walk_stmt(self, stmt));
    }

    fn visit_expr(&mut self, expr: &'t Expr) {
        if let Expr::Name(name) = expr {
            *self.counts.entry(name.id.as_str()).or_default() += 1;
        }
        guarded(|| source_order::walk_expr(self, expr));
    }
}

/// Collects the attribute chains that spell one dotted path.
struct AttributeFinder<'a> {
    source: &'a str,
    path: &'a [String],
    found: Vec<Range<usize>>,
}

impl<'t> SourceOrderVisitor<'t> for AttributeFinder<'_> {
    fn visit_stmt(&mut self, stmt: &'t Stmt) {
        guarded(|| source_order::walk_stmt(self, stmt));
    }

    fn visit_expr(&mut self, expr: &'t Expr) {
        if let Expr::Attribute(_) = expr
            && dotted_parts(expr, self.source).is_some_and(|parts| {
                parts.len() == self.path.len() && parts.iter().zip(self.path).all(|(a, b)| a == b)
            })
        {
            self.found.push(span(expr));
        }
        guarded(|| source_order::walk_expr(self, expr));
    }

    // Patterns write dotted names, not attribute expressions.
    fn visit_pattern(&mut self, _pattern: &'t Pattern) {}
}

/// Segments of `a.b.c` written as a name or an attribute chain, borrowed from the tree;
/// `None` for anything else, or when a base is parenthesised (`(a).b`).
fn dotted_parts<'t>(expr: &'t Expr, source: &str) -> Option<Vec<&'t str>> {
    let mut segments = Vec::new();
    let mut current = expr;
    loop {
        match current {
            Expr::Name(name) => {
                segments.push(name.id.as_str());
                segments.reverse();
                return Some(segments);
            }
            Expr::Attribute(attribute) if !closes_paren(source, attribute.value.end()) => {
                segments.push(attribute.attr.id.as_str());
                current = &attribute.value;
            }
            _ => return None,
        }
    }
}
