//! The JSON format: one document with violations, summary, skipped files and baseline.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::check::Violation;
use crate::output::Report;

pub(crate) fn violation(v: &Violation, path: String) -> Value {
    json!({
        "code": v.rule.code(),
        "name": v.rule.name(),
        "path": path,
        "start": v.start,
        "end": v.end,
        "message": v.message,
        "priority": v.priority,
        "fingerprint": v.fingerprint,
        "fix": v.fix,
    })
}

pub(super) fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let violations: Vec<Value> = report
        .shown
        .iter()
        .map(|v| violation(v, report.display(&v.path)))
        .collect();
    let by_priority: serde_json::Map<String, Value> = report
        .by_priority()
        .into_iter()
        .map(|(p, n)| (p.as_str().to_owned(), json!(n)))
        .collect();
    let by_rule: serde_json::Map<String, Value> = report
        .by_rule()
        .into_iter()
        .map(|(r, n)| (r.code().to_owned(), json!(n)))
        .collect();
    let skipped: Vec<Value> = report
        .result
        .files
        .iter()
        .filter_map(|f| {
            f.skipped
                .as_ref()
                .map(|reason| json!({"path": report.display(&f.path), "reason": reason}))
        })
        .collect();
    let mut document = json!({
        "violations": violations,
        "summary": {
            "violations": report.shown.len(),
            "files_with_violations": report.files_with_violations(),
            "files_checked": report.result.files.iter().filter(|f| f.skipped.is_none()).count(),
            "by_priority": by_priority,
            "by_rule": by_rule,
            "fixes_applied": report.fixed.len(),
        },
        "skipped": skipped,
    });
    if let Some(baseline) = &report.baseline {
        document["baseline"] = json!({
            "file": baseline.file,
            "baselined": baseline.baselined,
            "fixed": baseline.fixed,
            "pruned": baseline.pruned,
        });
    }
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}
