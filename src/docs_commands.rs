//! `knc completions` and `knc man`: shell completion scripts and manual
//! pages generated from the clap definition in `cli.rs`, so they never
//! disagree with the options knc accepts.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::outcome::{print_output, Outcome};

/// Prints the completion script for the chosen shell.
pub fn completions(args: &CompletionsArgs) -> Outcome {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "knc", &mut script);
    print_output(&String::from_utf8_lossy(&script))
}

/// Prints knc(1), or knc-COMMAND(1) for one command.
pub fn man(args: &ManArgs) -> Outcome {
    let mut command = Cli::command();
    command.build();
    let page = match &args.command {
        None => clap_mangen::Man::new(command),
        Some(name) => match command.find_subcommand(name) {
            // A subcommand has no version of its own: give it knc's, for
            // the page's footer.
            Some(sub) => clap_mangen::Man::new(sub.clone().version(env!("CARGO_PKG_VERSION")))
                .title(format!("knc-{name}")),
            None => {
                let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                return Outcome::Usage(format!(
                    "`{name}` is not a knc command (one of: {})",
                    names.join(", ")
                ));
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(e) = page.render(&mut roff) {
        return Outcome::Refused(format!("cannot render the manual page: {e}"));
    }
    print_output(&String::from_utf8_lossy(&roff))
}
