//! How a command ended, and the exit status that says so (design §2).

use knc_compiler::compile::Failure;
use knc_compiler::front::Diagnostic;

/// The end of a command.
pub enum Outcome {
    /// Success, possibly with warnings already printed (exit 0).
    Success,
    /// The input is invalid: the diagnostics say why (exit 1).
    InvalidInput(Vec<Diagnostic>),
    /// The command line asks for something impossible (exit 2).
    Usage(String),
    /// The node refused: a tool failed or rejected knc's output, the
    /// kernel rejected the transaction, a file could not be written, the
    /// state lock is held (exit 3).
    Refused(String),
    /// An exit status decided by the command itself (`reconcile --once`
    /// returns apply's), with everything already printed.
    Status(i32),
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Invalid(diagnostics) => Outcome::InvalidInput(diagnostics),
            Failure::Usage(message) => Outcome::Usage(message),
        }
    }
}

impl Outcome {
    /// Prints what needs printing on stderr and returns the exit status.
    pub fn report(self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::InvalidInput(diagnostics) => {
                print_diagnostics(&diagnostics);
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                eprintln!(
                    "error: {errors} problem{} found; nothing was compiled",
                    if errors == 1 { "" } else { "s" }
                );
                1
            }
            Outcome::Usage(message) => {
                eprintln!("error: {message}");
                2
            }
            Outcome::Refused(message) => {
                eprintln!("error: {message}");
                3
            }
            Outcome::Status(code) => code,
        }
    }
}

/// Renders diagnostics with miette on stderr.
pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{:?}", miette::Report::new(diagnostic.clone()));
    }
}

/// Writes a command's result to stdout; a closed pipe (`| head`) is not an
/// error.
pub fn print_output(text: &str) -> Outcome {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Outcome::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(e) => Outcome::Refused(format!("cannot write output: {e}")),
    }
}
