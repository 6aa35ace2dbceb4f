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
    local: &'t str,
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

    fn push_scope(&mut self, kind: ScopeKind, name: &'t str, parent: usize) -> usize {
        self.scopes.push(Scope::new(kind, name, Some(parent)));
        self.scopes.len() - 1
    }

    fn bind(&mut self, scope: usize, name: &'t str, offset: usize, kind: BindingKind) {
        if name.is_empty() {
            return;
        }
        let scope = if self.scopes[scope].not_local.contains(name) {
            0
        } else {
            scope
        };
        self.scopes[scope]
            .bindings
            .entry(name)
            .or_default()
            .push(Binding { offset, kind });
    }

    /// Binds the names an assignment target writes: `a`, `a, (b, *c)`, `[a, b]`; an
    /// attribute or subscript binds nothing. Only a bare name keeps `kind`.
    fn bind_targets(&mut self, scope: usize, target: &'t Expr, kind: BindingKind) {
        match target {
            Expr::Name(name) => {
                let kind = if closes_paren(self.source, name.end()) {
                    BindingKind::Local
                } else {
                    kind
                };
                self.bind(scope, name.id.as_str(), name.start().to_usize(), kind);
            }
            Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::List(ast::ExprList { elts, .. }) => {
                guarded(|| {
                    for elt in elts {
                        self.bind_targets(scope, elt, BindingKind::Local);
                    }
                })
            }
            Expr::Starred(starred) => {
                guarded(|| self.bind_targets(scope, &starred.value, BindingKind::Local))
            }
            _ => {}
        }
    }

    fn bind_parameters(&mut self, scope: usize, parameters: &'t ast::Parameters) {
        let offset = parameters.start().to_usize();
        for parameter in parameters {
            self.bind(
                scope,
                parameter.name().id.as_str(),
                offset,
                BindingKind::Local,
            );
        }
    }

    fn read_import(&mut self, stmt: &'t Stmt, package: &[String]) -> Option<Import<'t>> {
        let item = |alias: &'t ast::Alias, prefix: &[String], from: bool| -> ImportItem<'t> {
            let name = alias.name.id.as_str();
            let mut path = prefix.to_vec();
            path.extend(name.split('.').map(str::to_owned));
            let local = match &alias.asname {
                Some(asname) => asname.id.as_str(),
                None if from => name.rsplit('.').next().unwrap_or_default(),
                None => name.split('.').next().unwrap_or_default(),
            };
            ImportItem {
                name_range: span(&alias.name),
                path,
                alias: alias.asname.as_ref().map(|a| a.id.to_string()),
                local,
            }
        };
        match stmt {
            Stmt::Import(import) => Some(Import {
                range: span(stmt),
                from_module: None,
                module_range: None,
                items: import.names.iter().map(|a| item(a, &[], false)).collect(),
            }),
            Stmt::ImportFrom(import) => {
                let written = import
                    .module
                    .as_ref()
                    .map(|m| m.id.as_str().split('.').map(str::to_owned));
                let module = if import.level == 0 {
                    written?.collect()
                } else {
                    let up = import.level as usize - 1;
                    let mut module = package.get(..package.len().checked_sub(up)?)?.to_vec();
                    module.extend(written.into_iter().flatten());
                    module
                };
                if module.is_empty() {
                    return None;
                }
                if import.names.iter().any(|a| a.name.id == "*") {
                    self.star_modules.push(module.clone());
                }
                let items = import
                    .names
                    .iter()
                    .filter(|a| a.name.id != "*")
                    .map(|a| item(a, &module, true))
                    .collect();
                let module_range = if import.level == 0 {
                    import.module.as_ref().map(span)
                } else {
                    None
                };
                Some(Import {
                    range: span(stmt),
                    from_module: Some(module),
                    module_range,
                    items,
                })
            }
            _ => None,
        }
    }

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

/// Walks the tree once in source order, opening scopes and recording bindings, imports
/// and calls.
struct Builder<'t> {
    model: PythonModel<'t>,
    package: Vec<String>,
    current: usize,
    depth: usize,
}

impl<'t> Builder<'t> {
    /// Runs `f` one level deeper in the tree.
    fn deeper(&mut self, f: impl FnOnce(&mut Self)) {
        self.depth += 1;
        self.model.depth = self.model.depth.max(self.depth);
        guarded(|| f(self));
        self.depth -= 1;
    }

    /// Runs `f` with `scope` as the current scope.
    fn within(&mut self, scope: usize, f: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.current, scope);
        f(self);
        self.current = outer;
    }
}

/// Deeply nested code must not overflow the stack: grow it on demand, as Ruff's parser does.
fn guarded<R>(f: impl FnOnce() -> R) -> R {
    const RED_ZONE: usize = 64 * 1024;
    const STACK: usize = 1024 * 1024;
    stacker::maybe_grow(RED_ZONE, STACK, f)
}

/// Frees a syntax tree that nests `depth` levels deep. Dropping a tree recurses once per
/// level (a 200,000-term sum is 200,000 levels), so a deep tree is dropped on a stack
/// sized for it.
pub(crate) fn free(syntax: PythonSyntax, depth: usize) {
    // Generous for unoptimised builds; the pages are only touched as deep as needed.
    const PER_LEVEL: usize = 2 * 1024;
    const SHALLOW: usize = 256;
    if depth <= SHALLOW {
        drop(syntax);
    } else {
        stacker::grow(1024 * 1024 + depth * PER_LEVEL, move || drop(syntax));
    }
}

/// [`free`] for a tree no model was built for (its depth is measured first).
pub(crate) fn free_unmodelled(syntax: PythonSyntax) {
    let depth = nesting(syntax.syntax());
    free(syntax, depth);
}

/// How deeply `module` nests.
fn nesting(module: &ModModule) -> usize {
    struct Depth {
        depth: usize,
        max: usize,
    }
    impl Depth {
        fn deeper(&mut self, f: impl FnOnce(&mut Self)) {
            self.depth += 1;
            self.max = self.max.max(self.depth);
            guarded(|| f(self));
            self.depth -= 1;
        }
    }
    impl<'t> SourceOrderVisitor<'t> for Depth {
        fn visit_stmt(&mut self, stmt: &'t Stmt) {
            self.deeper(|this| source_order::walk_stmt(this, stmt));
        }
        fn visit_expr(&mut self, expr: &'t Expr) {
            self.deeper(|this| source_order::walk_expr(this, expr));
        }
        fn visit_pattern(&mut self, pattern: &'t Pattern) {
            self.deeper(|this| source_order::walk_pattern(this, pattern));
        }
    }
    let mut visitor = Depth { depth: 0, max: 0 };
    visitor.visit_body(&module.body);
    visitor.max
}

impl<'t> SourceOrderVisitor<'t> for Builder<'t> {
    fn visit_stmt(&mut self, stmt: &'t Stmt) {
        self.deeper(|this| this.stmt(stmt));
    }

    fn visit_expr(&mut self, expr: &'t Expr) {
        self.deeper(|this| this.expr(expr));
    }

    // Patterns hold no calls and bind nothing the model tracks; they are walked for
    // [`PythonModel::depth`] only.
    fn visit_pattern(&mut self, pattern: &'t Pattern) {
        self.deeper(|this| source_order::walk_pattern(this, pattern));
    }

    fn visit_comprehension(&mut self, comprehension: &'t ast::Comprehension) {
        self.model
            .bind_targets(self.current, &comprehension.target, BindingKind::Local);
        source_order::walk_comprehension(self, comprehension);
    }

    fn visit_with_item(&mut self, item: &'t ast::WithItem) {
        if let Some(vars) = &item.optional_vars {
            self.model
                .bind_targets(self.current, vars, BindingKind::Local);
        }
        source_order::walk_with_item(self, item);
    }

    fn visit_except_handler(&mut self, handler: &'t ast::ExceptHandler) {
        let ast::ExceptHandler::ExceptHandler(h) = handler;
        if let Some(name) = &h.name {
            self.model.bind(
                self.current,
                name.id.as_str(),
                name.start().to_usize(),
                BindingKind::Local,
            );
        }
        source_order::walk_except_handler(self, handler);
    }
}

impl<'t> Builder<'t> {
    /// Visits a `def` or `class`'s decorators and binds its name, in the enclosing
    /// scope, then opens its own scope.
    fn open_definition(
        &mut self,
        decorators: &'t [ast::Decorator],
        name: &'t ast::Identifier,
        kind: ScopeKind,
    ) -> usize {
        for decorator in decorators {
            self.visit_decorator(decorator);
        }
        let current = self.current;
        let name_text = name.id.as_str();
        self.model.bind(
            current,
            name_text,
            name.start().to_usize(),
            BindingKind::Local,
        );
        self.model.push_scope(kind, name_text, current)
    }

    fn stmt(&mut self, stmt: &'t Stmt) {
        let current = self.current;
        match stmt {
            Stmt::FunctionDef(def) => {
                let scope =
                    self.open_definition(&def.decorator_list, &def.name, ScopeKind::Function);
                self.within(scope, |this| {
                    if let Some(type_params) = &def.type_params {
                        this.visit_type_params(type_params);
                    }
                    this.model.bind_parameters(scope, &def.parameters);
                    this.visit_parameters(&def.parameters);
                    if let Some(returns) = &def.returns {
                        this.visit_annotation(returns);
                    }
                    this.visit_body(&def.body);
                });
                return;
            }
            Stmt::ClassDef(class) => {
                let scope =
                    self.open_definition(&class.decorator_list, &class.name, ScopeKind::Class);
                self.within(scope, |this| {
                    if let Some(type_params) = &class.type_params {
                        this.visit_type_params(type_params);
                    }
                    if let Some(arguments) = &class.arguments {
                        this.visit_arguments(arguments);
                    }
                    this.visit_body(&class.body);
                });
                return;
            }
            Stmt::Import(_) | Stmt::ImportFrom(_) => {
                let is_future = matches!(stmt, Stmt::ImportFrom(f) if f.level == 0 && f.module.as_ref().is_some_and(|m| m.id == "__future__"));
                if !is_future && let Some(import) = self.model.read_import(stmt, &self.package) {
                    for item in &import.items {
                        let target = match (&item.alias, &import.from_module) {
                            (None, None) => vec![item.path[0].clone()],
                            _ => item.path.clone(),
                        };
                        self.model.bind(
                            current,
                            item.local,
                            stmt.start().to_usize(),
                            BindingKind::Import(target),
                        );
                    }
                    self.model.imports.push(import);
                }
            }
            Stmt::Assign(assign) => {
                let is_none = assign.value.is_none_literal_expr()
                    && !closes_paren(self.model.source, assign.value.end());
                for target in &assign.targets {
                    let binding = if is_none {
                        BindingKind::NoneFallback
                    } else {
                        BindingKind::Local
                    };
                    self.model.bind_targets(current, target, binding);
                }
            }
            Stmt::AnnAssign(assign) => {
                let is_none = assign.value.as_ref().is_some_and(|v| {
                    v.is_none_literal_expr() && !closes_paren(self.model.source, v.end())
                });
                let binding = if is_none {
                    BindingKind::NoneFallback
                } else {
                    BindingKind::Local
                };
                self.model.bind_targets(current, &assign.target, binding);
            }
            Stmt::AugAssign(assign) => {
                self.model
                    .bind_targets(current, &assign.target, BindingKind::Local)
            }
            Stmt::For(for_stmt) => {
                self.model
                    .bind_targets(current, &for_stmt.target, BindingKind::Local)
            }
            Stmt::Global(ast::StmtGlobal { names, .. })
            | Stmt::Nonlocal(ast::StmtNonlocal { names, .. }) => {
                for name in names {
                    self.model.scopes[current]
                        .not_local
                        .insert(name.id.as_str());
                }
            }
            _ => {}
        }
        source_order::walk_stmt(self, stmt);
    }

    fn expr(&mut self, expr: &'t Expr) {
        let current = self.current;
        match expr {
            Expr::Call(call) => self.model.calls.push(Call {
                expr: call,
                scope: current,
            }),
            Expr::Named(named) => {
                self.model
                    .bind_targets(current, &named.target, BindingKind::Local)
            }
            Expr::Lambda(lambda) => {
                let scope = self
                    .model
                    .push_scope(ScopeKind::Function, "<lambda>", current);
                self.within(scope, |this| {
                    if let Some(parameters) = &lambda.parameters {
                        this.model.bind_parameters(scope, parameters);
                        this.visit_parameters(parameters);
                    }
                    this.visit_expr(&lambda.body);
                });
                return;
            }
            _ => {}
        }
        source_order::walk_expr(self, expr);
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
