//! `ssot check --explain SSOT001`: prints a rule's documentation.

use std::io::Write;

use super::Failure;
use crate::exit::ExitStatus;
use crate::rules::RuleSelector;

/// Prints the documentation of every rule `selector` names (one for a code).
pub(crate) fn run(selector: &RuleSelector, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    for (i, rule) in selector.rules().iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write!(out, "{}", rule.documentation())?;
    }
    Ok(ExitStatus::Success)
}
