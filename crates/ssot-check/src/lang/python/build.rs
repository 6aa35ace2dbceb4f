//! Building a [`PythonModel`]: one walk in source order that opens scopes and records
//! bindings, imports and calls.

use ruff_python_ast::visitor::source_order::{self, SourceOrderVisitor};
use ruff_python_ast::{self as ast, Expr, Pattern, Stmt};
use ruff_text_size::Ranged;

use super::stack::guarded;
use super::{
    Binding, BindingKind, Call, Import, ImportItem, PythonModel, Scope, ScopeKind, closes_paren,
    span,
};

impl<'t> PythonModel<'t> {
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
}

/// Walks the tree once in source order, opening scopes and recording bindings, imports
/// and calls.
pub(super) struct Builder<'t> {
    pub(super) model: PythonModel<'t>,
    pub(super) package: Vec<String>,
    pub(super) current: usize,
    pub(super) depth: usize,
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
