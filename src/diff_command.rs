//! `knc diff OLD NEW`: the smallest nft transaction from one set of
//! manifests' ruleset to another's.

use knc_compiler::back::nft;
use knc_compiler::lower::{self, ProxyMode};
use knc_compiler::model::Cluster;

use crate::cli::DiffArgs;
use crate::compile_command::{analyse, options};
use crate::outcome::{print_output, Outcome};

pub fn run(args: &DiffArgs) -> Outcome {
    let mut options = match options(&args.options, ProxyMode::Nftables) {
        Ok(options) => options,
        Err(message) => return Outcome::Usage(message),
    };
    let old = match analyse(std::slice::from_ref(&args.old), args.verbose) {
        Ok(cluster) => cluster,
        Err(outcome) => return outcome,
    };
    let new = match analyse(std::slice::from_ref(&args.new), args.verbose) {
        Ok(cluster) => cluster,
        Err(outcome) => return outcome,
    };
    if options.node.is_none() {
        match single_node(&new) {
            Ok(node) => options.node = node,
            Err(message) => return Outcome::Usage(message),
        }
    }
    let lowered = lower::lower(&old, &options).and_then(|o| Ok((o, lower::lower(&new, &options)?)));
    let (old, new) = match lowered {
        Ok(pair) => pair,
        Err(e) => return Outcome::Usage(e.to_string()),
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

/// The node when NEW has exactly one Node (or none: node-agnostic).
fn single_node(cluster: &Cluster) -> Result<Option<String>, String> {
    match cluster.nodes.len() {
        0 => Ok(None),
        1 => Ok(cluster.nodes.keys().next().cloned()),
        n => Err(format!(
            "the inputs hold {n} Nodes; choose one with --node NAME"
        )),
    }
}
