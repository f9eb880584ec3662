//! `knc explain`: one connection through one node's compiled ruleset.

use knc_compiler::explain::{self, Query};
use knc_compiler::lower::ProxyMode;

use crate::cli::ExplainArgs;
use crate::compiling;
use crate::outcome::{print_output, Outcome};

pub fn run(args: &ExplainArgs, verbose: bool) -> Outcome {
    let settings = args.options.settings.settings(ProxyMode::Nftables);
    let ruleset =
        match compiling::compile(&args.paths, &settings, &args.options.node_choice(), verbose) {
            Ok(compiled) => compiled.into_single(),
            Err(outcome) => return outcome,
        };
    let (to, protocol) = args.to;
    let query = Query {
        to: to.ip(),
        port: to.port(),
        protocol,
        from: args.from,
    };
    print_output(&explain::explain(&ruleset, &query))
}
