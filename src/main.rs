//! `knc`: the command-line front of the compiler. Parses arguments, reads
//! files, runs the pure compiler, writes results, and maps outcomes to exit
//! status: 0 success, 1 invalid input, 2 usage error.

mod cli;
mod compile_command;
mod diff_command;
mod explain_command;
mod inputs;
mod lint_command;
mod outcome;
mod tool_check;

use clap::Parser;

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Compile(args) => compile_command::run(&args),
        Command::Diff(args) => diff_command::run(&args),
        Command::Explain(args) => explain_command::run(&args),
        Command::Lint(args) => lint_command::run(&args),
    };
    std::process::exit(outcome.report());
}
