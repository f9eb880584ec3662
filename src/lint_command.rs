//! `knc lint`: validation errors and lint warnings, nothing compiled.

use crate::cli::{LintArgs, LintFormat};
use crate::outcome::{print_diagnostics, print_output, Outcome};

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
    // For tools the whole report goes to stdout, errors included (a CI job
    // uploads it, then fails on the exit status); stderr keeps the
    // rendered diagnostics of errors and the summary for the job's log.
    let printed = match args.format {
        LintFormat::Text => Outcome::Success,
        LintFormat::Json => print_output(&knc_compiler::report::json::render(
            &diagnostics,
            files.len(),
        )),
        LintFormat::Sarif => print_output(&knc_compiler::report::sarif::render(
            &diagnostics,
            env!("CARGO_PKG_VERSION"),
        )),
    };
    if let Outcome::Refused(_) = printed {
        return printed;
    }
    if errors > 0 {
        return Outcome::InvalidInput(diagnostics);
    }
    if args.format == LintFormat::Text {
        print_diagnostics(&diagnostics);
    }
    eprintln!(
        "{} file{} checked: no errors, {} warning{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    Outcome::Success
}
