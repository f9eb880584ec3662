//! `knc explain`: one connection through one node's compiled ruleset.

use knc_compiler::explain::{self, Query};
use knc_compiler::lower::ProxyMode;

use crate::cli::{ExplainArgs, ExplainOutput};
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
        from_this_node: args.from_this_node,
        arrives_on: args.in_interface.clone(),
    };
    match args.output {
        ExplainOutput::Text => print_output(&explain::explain(&ruleset, &query)),
        ExplainOutput::Json => {
            let explanation = explain::explanation(&ruleset, &query);
            let mut json = serde_json::to_string_pretty(&explanation)
                .expect("an explanation serialises: plain data, string keys");
            json.push('\n');
            print_output(&json)
        }
    }
}
