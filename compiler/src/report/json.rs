//! `knc lint --format json`: every diagnostic as a JSON object, with the
//! totals, for scripts that want more than the exit status.
//!
//! ```text
//! {"files": 2, "errors": 0, "warnings": 1, "diagnostics": [
//!   {"code": "knc::unmatched-port", "severity": "warning", "message": "…",
//!    "help": null, "location": {"file": "a/svc.yaml", "line": 9, "column": 11,
//!    "endLine": 9, "endColumn": 15, "label": "…"}}]}
//! ```

use serde::Serialize;

use super::{severity_word, Region};
use crate::diagnostic::Diagnostic;

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// How many input files were read.
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Entry<'a>>,
}

/// One diagnostic.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The stable code, `knc::port-range`.
    pub code: &'static str,
    /// `error` or `warning`.
    pub severity: &'static str,
    pub message: &'a str,
    pub help: Option<&'a str>,
    /// `null` for problems with no place in a file (an unreadable path).
    pub location: Option<Place<'a>>,
}

/// Where a diagnostic points: see the [module docs](super) for how
/// positions count.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Place<'a> {
    /// The file's name as given on the command line.
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// What the text output shows under the caret.
    pub label: &'a str,
}

/// The JSON report of `diagnostics` found in `files` input files, pretty
/// printed, with a final newline.
pub fn render(diagnostics: &[Diagnostic], files: usize) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = Report {
        files,
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics: diagnostics.iter().map(entry).collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("plain data serialises");
    text.push('\n');
    text
}

fn entry(diagnostic: &Diagnostic) -> Entry<'_> {
    Entry {
        code: diagnostic.code.as_str(),
        severity: severity_word(diagnostic.severity),
        message: &diagnostic.message,
        help: diagnostic.help.as_deref(),
        location: diagnostic.location.as_ref().map(|location| {
            let region = Region::of(location);
            Place {
                file: &location.file.name,
                line: region.start_line,
                column: region.start_column,
                end_line: region.end_line,
                end_column: region.end_column,
                label: &location.label,
            }
        }),
    }
}
