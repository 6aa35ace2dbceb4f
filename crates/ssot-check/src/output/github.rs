//! GitHub Actions annotations (`::error file=…,line=…::message`).

use std::io::{self, Write};

use crate::output::Report;

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub(super) fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    for v in &report.shown {
        writeln!(
            out,
            "::error title={},file={},line={},col={},endLine={},endColumn={}::{}",
            escape_property(&format!("{} {}", v.rule.code(), v.rule.name())),
            escape_property(&report.display(&v.path)),
            v.start.line,
            v.start.column,
            v.end.line,
            v.end.column,
            escape_data(&format!("{} {}", v.rule.code(), v.message)),
        )?;
    }
    Ok(())
}
