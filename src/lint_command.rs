//! `knc lint`: validation errors and lint warnings, nothing compiled.

use crate::cli::LintArgs;
use crate::outcome::{print_diagnostics, Outcome};

pub fn run(args: &LintArgs) -> Outcome {
    let (files, mut diagnostics) = knc_runtime::inputs::read(&args.paths);
    diagnostics.extend(knc_compiler::lint(&files));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        return Outcome::InvalidInput(diagnostics);
    }
    print_diagnostics(&diagnostics);
    eprintln!(
        "{} file{} checked: no errors, {} warning{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    Outcome::Success
}
