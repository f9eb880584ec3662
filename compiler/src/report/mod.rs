//! Diagnostics in machine-readable forms, for CI: `knc lint --format json`
//! ([`json`]) and `--format sarif` ([`sarif`], which code-scanning tools
//! turn into annotations on a pull request's lines).
//!
//! Both are built from serde types and serialised by serde_json, so no text
//! taken from a manifest (a name, a path) can break the document. Positions
//! are 1-based; columns count Unicode code points (SARIF's default
//! `columnKind`, and what `file:line:column` in the text output counts);
//! the end position is the one just after the span, as SARIF defines it.

pub mod json;
pub mod sarif;

use crate::diagnostic::{Location, Severity};

/// Where a diagnostic's span starts and ends, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl Region {
    /// The region `location`'s span covers in its file.
    pub fn of(location: &Location) -> Self {
        let (start_line, start_column) = location.file.line_col(location.span.start);
        let (end_line, end_column) = location.file.line_col(location.span.end);
        Region {
            start_line,
            start_column,
            end_line,
            end_column,
        }
    }
}

/// `error` or `warning`: the word both formats (and SARIF's `level`) use.
pub fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
