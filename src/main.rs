//! `knc`: the command line. Parses arguments and wires them to the pure
//! compiler (`knc-compiler`) and the node runtime (`knc-runtime`); maps
//! outcomes to exit status: 0 success, 1 invalid input, 2 usage error,
//! 3 the node refused.

mod cli;
mod compile_command;
mod compiling;
mod diff_command;
mod docs_commands;
mod explain_command;
mod lint_command;
mod node_commands;
mod outcome;

use clap::Parser;

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let outcome = match cli.command {
        Command::Compile(args) => compile_command::run(&args, verbose),
        Command::Diff(args) => diff_command::run(&args, verbose),
        Command::Explain(args) => explain_command::run(&args, verbose),
        Command::Lint(args) => lint_command::run(&args),
        Command::Apply(args) => node_commands::apply(&args),
        Command::Reconcile(args) => node_commands::reconcile(&args, verbose),
        Command::Cleanup(args) => node_commands::cleanup(&args),
        Command::Completions(args) => docs_commands::completions(&args),
        Command::Man(args) => docs_commands::man(&args),
    };
    std::process::exit(outcome.report());
}
