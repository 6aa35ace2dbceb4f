//! Deep trees: growing the stack while walking, and freeing a tree on a stack sized for it.

use ruff_python_ast::visitor::source_order::{self, SourceOrderVisitor};
use ruff_python_ast::{Expr, ModModule, Pattern, Stmt};

use crate::lang::PythonSyntax;

/// Deeply nested code must not overflow the stack: grow it on demand, as Ruff's parser does.
pub(super) fn guarded<R>(f: impl FnOnce() -> R) -> R {
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
