//! Python: scopes, bindings and import resolution over a tree-sitter tree.
//!
//! ## Behavior
//! - Every `import` / `from … import` binds its local name to a fully qualified name
//!   (`import redis as r` binds `r` → `redis`; `from redis.asyncio import from_url`
//!   binds `from_url` → `redis.asyncio.from_url`); relative imports resolve against the
//!   file's own module path.
//! - Functions, lambdas and classes open scopes. A reference resolves to the latest
//!   binding before it in its own scope, or to the last binding of an enclosing scope
//!   (function bodies run later); class scopes are invisible to nested functions.
//! - A name re-bound by `def`, `class`, assignment, a parameter, a loop or `with … as`
//!   no longer refers to the import, so look-alikes are not flagged. `X = None` beside
//!   an import of `X` is treated as an import fallback, not a rebinding.
//!
//! ## Performance
//! Node kinds and fields are compared by their numeric ids ([`Kinds`], resolved once per
//! process), names are borrowed from the source, and the callee of a call is only
//! spelled out when its first segment resolves to an import (or is unbound beside a
//! `*` import).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;
use std::sync::OnceLock;

use tree_sitter::Node;

use super::text;

/// Node kind ids (named kinds) and field ids of the Python grammar.
struct Kinds {
    function_definition: u16,
    class_definition: u16,
    lambda: u16,
    parameters: u16,
    lambda_parameters: u16,
    import_statement: u16,
    import_from_statement: u16,
    assignment: u16,
    augmented_assignment: u16,
    for_statement: u16,
    for_in_clause: u16,
    named_expression: u16,
    as_pattern: u16,
    global_statement: u16,
    nonlocal_statement: u16,
    call: u16,
    comment: u16,
    identifier: u16,
    none: u16,
    attribute: u16,
    dotted_name: u16,
    aliased_import: u16,
    relative_import: u16,
    wildcard_import: u16,
    import_prefix: u16,
    /// `pattern_list`, `tuple_pattern`, … : targets whose named children are bound.
    target_lists: [u16; 8],
    default_parameter: u16,
    typed_default_parameter: u16,
    /// `typed_parameter`, `list_splat_pattern`, `dictionary_splat_pattern`, `tuple_pattern`.
    parameter_groups: [u16; 4],
    type_: u16,
    f_name: NonZeroU16,
    f_right: NonZeroU16,
    f_left: NonZeroU16,
    f_alias: NonZeroU16,
    f_function: NonZeroU16,
    f_object: NonZeroU16,
    f_attribute: NonZeroU16,
    f_module_name: NonZeroU16,
}

fn kinds() -> &'static Kinds {
    static KINDS: OnceLock<Kinds> = OnceLock::new();
    KINDS.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let id = |kind: &str| {
            let id = language.id_for_node_kind(kind, true);
            assert!(id != 0, "tree-sitter-python has no node kind `{kind}`");
            id
        };
        let field = |name: &str| language.field_id_for_name(name).unwrap_or_else(|| panic!("tree-sitter-python has no field `{name}`"));
        Kinds {
            function_definition: id("function_definition"),
            class_definition: id("class_definition"),
            lambda: id("lambda"),
            parameters: id("parameters"),
            lambda_parameters: id("lambda_parameters"),
            import_statement: id("import_statement"),
            import_from_statement: id("import_from_statement"),
            assignment: id("assignment"),
            augmented_assignment: id("augmented_assignment"),
            for_statement: id("for_statement"),
            for_in_clause: id("for_in_clause"),
            named_expression: id("named_expression"),
            as_pattern: id("as_pattern"),
            global_statement: id("global_statement"),
            nonlocal_statement: id("nonlocal_statement"),
            call: id("call"),
            comment: id("comment"),
            identifier: id("identifier"),
            none: id("none"),
            attribute: id("attribute"),
            dotted_name: id("dotted_name"),
            aliased_import: id("aliased_import"),
            relative_import: id("relative_import"),
            wildcard_import: id("wildcard_import"),
            import_prefix: id("import_prefix"),
            target_lists: [
                id("pattern_list"),
                id("tuple_pattern"),
                id("list_pattern"),
                id("tuple"),
                id("list"),
                id("parenthesized_expression"),
                id("list_splat_pattern"),
                id("as_pattern_target"),
            ],
            default_parameter: id("default_parameter"),
            typed_default_parameter: id("typed_default_parameter"),
            parameter_groups: [id("typed_parameter"), id("list_splat_pattern"), id("dictionary_splat_pattern"), id("tuple_pattern")],
            type_: id("type"),
            f_name: field("name"),
            f_right: field("right"),
            f_left: field("left"),
            f_alias: field("alias"),
            f_function: field("function"),
            f_object: field("object"),
            f_attribute: field("attribute"),
            f_module_name: field("module_name"),
        }
    })
}

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
        Self { kind, name, parent, bindings: HashMap::new(), not_local: HashSet::new() }
    }
}

/// One name brought in by an import statement.
#[derive(Debug, Clone)]
pub(crate) struct ImportItem<'t> {
    /// The dotted name as written (`redis.asyncio` in `import redis.asyncio as r`).
    pub(crate) name_node: Node<'t>,
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
    pub(crate) node: Node<'t>,
    /// For `from M import …`: `M` resolved (`None` for a relative import that leaves the root).
    pub(crate) from_module: Option<Vec<String>>,
    /// The module node of a `from` import.
    pub(crate) module_node: Option<Node<'t>>,
    /// Whether the `from` module is relative (`from .x import y`).
    pub(crate) relative: bool,
    pub(crate) items: Vec<ImportItem<'t>>,
}

/// A call expression and the scope it is in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'t> {
    pub(crate) node: Node<'t>,
    scope: usize,
}

/// The resolved view of one Python file.
pub(crate) struct PythonModel<'t> {
    source: &'t str,
    scopes: Vec<Scope<'t>>,
    pub(crate) calls: Vec<Call<'t>>,
    pub(crate) imports: Vec<Import<'t>>,
    pub(crate) comments: Vec<Node<'t>>,
    star_modules: Vec<Vec<String>>,
    root: Node<'t>,
}

impl<'t> PythonModel<'t> {
    /// Builds the model; `module_path` is the file's dotted module (for relative imports).
    pub(crate) fn build(root: Node<'t>, source: &'t str, module_path: &[String], is_package: bool) -> Self {
        let k = kinds();
        let mut model = Self {
            source,
            scopes: vec![Scope::new(ScopeKind::Module, "", None)],
            calls: Vec::new(),
            imports: Vec::new(),
            comments: Vec::new(),
            star_modules: Vec::new(),
            root,
        };
        let package: Vec<String> = if is_package { module_path.to_vec() } else { module_path[..module_path.len().saturating_sub(1)].to_vec() };
        // Scopes opened by the nodes being walked: (scope, depth of the node that opened it).
        // A scope ends when the walk reaches a node no deeper than its opener.
        let mut stack: Vec<(usize, u32)> = vec![(0, 0)];
        let mut cursor = root.walk();
        let mut depth: u32 = 0;
        'walk: loop {
            let node = cursor.node();
            while stack.len() > 1 && stack.last().is_some_and(|s| s.1 >= depth) {
                stack.pop();
            }
            let current = stack.last().map_or(0, |s| s.0);
            let kind = node.kind_id();
            if kind == k.call {
                model.calls.push(Call { node, scope: current });
            } else if kind == k.identifier {
                // The most common node; nothing to do.
            } else if kind == k.comment {
                model.comments.push(node);
            } else if kind == k.function_definition || kind == k.class_definition {
                let name = node.child_by_field_id(k.f_name.get()).map_or("", |n| text(n, source));
                model.bind(current, name, node.start_byte(), BindingKind::Local);
                let scope_kind = if kind == k.class_definition { ScopeKind::Class } else { ScopeKind::Function };
                stack.push((model.push_scope(scope_kind, name, current), depth));
            } else if kind == k.lambda {
                stack.push((model.push_scope(ScopeKind::Function, "<lambda>", current), depth));
            } else if kind == k.parameters || kind == k.lambda_parameters {
                let mut names = Vec::new();
                for param in named_children(node) {
                    parameter_names(param, source, &mut names);
                }
                for name in names {
                    model.bind(current, name, node.start_byte(), BindingKind::Local);
                }
            } else if kind == k.import_statement || kind == k.import_from_statement {
                if let Some(import) = model.read_import(node, &package) {
                    for item in &import.items {
                        let target = match (&item.alias, &import.from_module) {
                            (None, None) => vec![item.path[0].clone()],
                            _ => item.path.clone(),
                        };
                        model.bind(current, item.local, node.start_byte(), BindingKind::Import(target));
                    }
                    model.imports.push(import);
                }
            } else if kind == k.assignment {
                // `a = b = None` chains nest assignments on the right.
                let mut value = node.child_by_field_id(k.f_right.get());
                while let Some(nested) = value.filter(|v| v.kind_id() == k.assignment) {
                    value = nested.child_by_field_id(k.f_right.get());
                }
                let is_none = value.is_some_and(|v| v.kind_id() == k.none);
                if let Some(left) = node.child_by_field_id(k.f_left.get()) {
                    let binding = if is_none && left.kind_id() == k.identifier { BindingKind::NoneFallback } else { BindingKind::Local };
                    model.bind_targets(current, left, binding);
                }
            } else if kind == k.augmented_assignment || kind == k.for_statement || kind == k.for_in_clause {
                if let Some(left) = node.child_by_field_id(k.f_left.get()) {
                    model.bind_targets(current, left, BindingKind::Local);
                }
            } else if kind == k.named_expression {
                if let Some(name) = node.child_by_field_id(k.f_name.get()) {
                    model.bind_targets(current, name, BindingKind::Local);
                }
            } else if kind == k.as_pattern {
                if let Some(alias) = node.child_by_field_id(k.f_alias.get()) {
                    model.bind_targets(current, alias, BindingKind::Local);
                }
            } else if kind == k.global_statement || kind == k.nonlocal_statement {
                for name in named_children(node).filter(|n| n.kind_id() == k.identifier) {
                    model.scopes[current].not_local.insert(text(name, source));
                }
            }
            if cursor.goto_first_child() {
                depth += 1;
                continue;
            }
            while !cursor.goto_next_sibling() {
                if depth == 0 || !cursor.goto_parent() {
                    break 'walk;
                }
                depth -= 1;
            }
            if depth == 0 {
                break;
            }
        }
        model
    }

    fn push_scope(&mut self, kind: ScopeKind, name: &'t str, parent: usize) -> usize {
        self.scopes.push(Scope::new(kind, name, Some(parent)));
        self.scopes.len() - 1
    }

    fn bind(&mut self, scope: usize, name: &'t str, offset: usize, kind: BindingKind) {
        if name.is_empty() {
            return;
        }
        let scope = if self.scopes[scope].not_local.contains(name) { 0 } else { scope };
        self.scopes[scope].bindings.entry(name).or_default().push(Binding { offset, kind });
    }

    fn bind_targets(&mut self, scope: usize, target: Node<'t>, kind: BindingKind) {
        let k = kinds();
        let target_kind = target.kind_id();
        if target_kind == k.identifier {
            self.bind(scope, text(target, self.source), target.start_byte(), kind);
        } else if k.target_lists.contains(&target_kind) {
            for child in named_children(target) {
                self.bind_targets(scope, child, BindingKind::Local);
            }
        }
    }

    fn read_import(&mut self, node: Node<'t>, package: &[String]) -> Option<Import<'t>> {
        let k = kinds();
        let source = self.source;
        let mut items = Vec::new();
        let mut cursor = node.walk();
        let names: Vec<Node<'t>> = node.children_by_field_id(k.f_name, &mut cursor).collect();
        let from = node.kind_id() == k.import_from_statement;
        let item = |name: Node<'t>, prefix: &[String]| -> Option<ImportItem<'t>> {
            let (name_node, alias) = if name.kind_id() == k.aliased_import {
                (name.child_by_field_id(k.f_name.get())?, name.child_by_field_id(k.f_alias.get()).map(|a| text(a, source)))
            } else {
                (name, None)
            };
            let parts = dotted_parts(name_node, source)?;
            let mut path = prefix.to_vec();
            path.extend(parts.iter().map(|s| (*s).to_owned()));
            let local = match alias {
                Some(alias) => alias,
                None if from => parts.last().copied().unwrap_or_default(),
                None => parts[0],
            };
            Some(ImportItem { name_node, path, alias: alias.map(str::to_owned), local })
        };
        if node.kind_id() == k.import_statement {
            items.extend(names.into_iter().filter_map(|n| item(n, &[])));
            return Some(Import { node, from_module: None, module_node: None, relative: false, items });
        }
        let module_node = node.child_by_field_id(k.f_module_name.get())?;
        let (module, relative) = if module_node.kind_id() == k.relative_import {
            (resolve_relative(module_node, source, package), true)
        } else {
            (dotted_segments(module_node, source), false)
        };
        let module = module?;
        if named_children(node).any(|c| c.kind_id() == k.wildcard_import) {
            self.star_modules.push(module.clone());
        }
        items.extend(names.into_iter().filter_map(|n| item(n, &module)));
        Some(Import { node, from_module: Some(module), module_node: Some(module_node), relative, items })
    }

    /// Every fully qualified name `call`'s callee may stand for: the import it resolves
    /// to, or for a name bound nowhere in the file, that name in each `*`-imported module.
    pub(crate) fn candidates(&self, call: &Call<'t>) -> Vec<Vec<String>> {
        let k = kinds();
        let Some(callee) = call.node.child_by_field_id(k.f_function.get()) else { return Vec::new() };
        // The first segment decides; most callees are locals, methods or builtins.
        let mut first = callee;
        while first.kind_id() == k.attribute {
            let Some(object) = first.child_by_field_id(k.f_object.get()) else { return Vec::new() };
            first = object;
        }
        if first.kind_id() == k.identifier {
            let binding = self.lookup(text(first, self.source), call.scope, call.node.start_byte());
            if matches!(binding, Some(BindingKind::NoneFallback | BindingKind::Local)) || (binding.is_none() && self.star_modules.is_empty()) {
                return Vec::new();
            }
        }
        let Some(segments) = dotted_parts(callee, self.source) else { return Vec::new() };
        let binding = self.lookup(segments[0], call.scope, call.node.start_byte());
        let owned = |parts: &[&str]| parts.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        match binding {
            Some(BindingKind::Import(target)) => vec![target.iter().cloned().chain(owned(&segments[1..])).collect()],
            Some(_) => Vec::new(),
            None => self.star_modules.iter().map(|m| m.iter().cloned().chain(owned(&segments)).collect()).collect(),
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
                let has_import = bindings.iter().any(|b| matches!(b.kind, BindingKind::Import(_)));
                let eligible = || bindings.iter().filter(|b| !(has_import && b.kind == BindingKind::NoneFallback));
                let before = innermost.then(|| eligible().rfind(|b| b.offset < offset)).flatten();
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

    /// The module node (for inserting imports).
    pub(crate) fn root(&self) -> Node<'t> {
        self.root
    }
}

fn named_children<'t>(node: Node<'t>) -> impl Iterator<Item = Node<'t>> {
    (0..node.named_child_count()).filter_map(move |i| node.named_child(i))
}

fn parameter_names<'s>(param: Node<'_>, source: &'s str, out: &mut Vec<&'s str>) {
    let k = kinds();
    let kind = param.kind_id();
    if kind == k.identifier {
        out.push(text(param, source));
    } else if kind == k.default_parameter || kind == k.typed_default_parameter {
        if let Some(name) = param.child_by_field_id(k.f_name.get()) {
            parameter_names(name, source, out);
        }
    } else if k.parameter_groups.contains(&kind) {
        for child in named_children(param) {
            if child.kind_id() != k.type_ {
                parameter_names(child, source, out);
            }
        }
    }
}

/// Segments of `a.b.c` written as a `dotted_name`, an `identifier` or an `attribute` chain.
pub(crate) fn dotted_segments(node: Node<'_>, source: &str) -> Option<Vec<String>> {
    dotted_parts(node, source).map(|parts| parts.into_iter().map(str::to_owned).collect())
}

/// [`dotted_segments`], borrowed from the source.
fn dotted_parts<'s>(node: Node<'_>, source: &'s str) -> Option<Vec<&'s str>> {
    let k = kinds();
    let kind = node.kind_id();
    if kind == k.identifier {
        Some(vec![text(node, source)])
    } else if kind == k.dotted_name {
        Some(named_children(node).map(|n| text(n, source)).collect())
    } else if kind == k.attribute {
        let mut segments = dotted_parts(node.child_by_field_id(k.f_object.get())?, source)?;
        segments.push(text(node.child_by_field_id(k.f_attribute.get())?, source));
        Some(segments)
    } else {
        None
    }
}

fn resolve_relative(node: Node<'_>, source: &str, package: &[String]) -> Option<Vec<String>> {
    let k = kinds();
    let dots = named_children(node).find(|n| n.kind_id() == k.import_prefix).map_or(1, |p| text(p, source).len());
    let up = dots.checked_sub(1)?;
    let mut module = package.get(..package.len().checked_sub(up)?)?.to_vec();
    if let Some(name) = named_children(node).find(|n| n.kind_id() == k.dotted_name) {
        module.extend(dotted_segments(name, source)?);
    }
    (!module.is_empty()).then_some(module)
}
