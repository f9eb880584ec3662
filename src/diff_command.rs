//! `knc diff OLD NEW`: the smallest nft transaction from one set of
//! manifests' ruleset to another's.

use knc_compiler::back::nft;
use knc_compiler::compile::NodeChoice;
use knc_compiler::lower::ProxyMode;

use crate::cli::DiffArgs;
use crate::compiling;
use crate::outcome::{print_output, Outcome};

pub fn run(args: &DiffArgs, verbose: bool) -> Outcome {
    let settings = args.options.settings.settings(ProxyMode::Nftables);
    // NEW decides the node when none is named; OLD is compiled for the same.
    let new = compiling::compile(
        std::slice::from_ref(&args.new),
        &settings,
        &args.options.node_choice(),
        verbose,
    );
    let new = match new {
        Ok(compiled) => compiled.into_single(),
        Err(outcome) => return outcome,
    };
    let old = compiling::compile(
        std::slice::from_ref(&args.old),
        &settings,
        &NodeChoice::same_as(&new),
        verbose,
    );
    let old = match old {
        Ok(compiled) => compiled.into_single(),
        Err(outcome) => return outcome,
    };
    let text = match nft::emit_delta(&old, &new) {
        Some(delta) => delta,
        None => format!(
            "# knc full replace: the ruleset's structure changed.\n{}",
            nft::emit(&new)
        ),
    };
    print_output(&text)
}
