//! `knc lint`: validation errors and lint warnings, nothing compiled.

use crate::cli::LintArgs;
use crate::outcome::{print_diagnostics, Outcome};

pub fn run(args: &LintArgs) -> Outcome {
    if args.list {
        print!("{}", knc_compiler::checks::list());
        return Outcome::Success;
    }
    if let Some(code) = &args.explain {
        return match knc_compiler::checks::explain(code) {
            Some(doc) => {
                print!("{doc}");
                Outcome::Success
            }
            None => Outcome::Usage(format!(
                "`{code}` is not a knc diagnostic code; `knc lint --list` lists them"
            )),
        };
    }
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
