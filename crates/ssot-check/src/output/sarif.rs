//! SARIF 2.1.0 (validated against the OASIS schema in the tests).

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::check::Violation;
use crate::output::Report;
use crate::rules::Rule;

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn artifact(path: &str) -> Value {
    json!({ "uri": path, "uriBaseId": "%SRCROOT%" })
}

fn result(v: &Violation) -> Value {
    let rule_index = Rule::ALL
        .iter()
        .position(|r| *r == v.rule)
        .expect("registered");
    let mut result = json!({
        "ruleId": v.rule.code(),
        "ruleIndex": rule_index,
        "level": "error",
        "message": { "text": v.message },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": artifact(&v.path),
                "region": {
                    "startLine": v.start.line,
                    "startColumn": v.start.column,
                    "endLine": v.end.line,
                    "endColumn": v.end.column,
                },
            },
        }],
        "partialFingerprints": { "ssotFingerprint/v1": v.fingerprint },
        "properties": { "priority": v.priority },
    });
    if let Some(fix) = &v.fix {
        let replacements: Vec<Value> = fix
            .edits
            .iter()
            .map(|e| json!({ "deletedRegion": { "byteOffset": e.start, "byteLength": e.end - e.start }, "insertedContent": { "text": e.content } }))
            .collect();
        result["fixes"] = json!([{
            "description": { "text": fix.message },
            "artifactChanges": [{ "artifactLocation": artifact(&v.path), "replacements": replacements }],
        }]);
    }
    result
}

pub(super) fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.code(),
                "name": r.name(),
                "shortDescription": { "text": r.summary() },
                "fullDescription": { "text": r.explanation() },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let document = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "ssot-check",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": report.shown.iter().map(|v| result(v)).collect::<Vec<_>>(),
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}
