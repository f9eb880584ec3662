//! `knc diff OLD NEW`: what changes for traffic between two sets of
//! manifests (text, markdown or JSON), or the smallest nft transaction from
//! one's ruleset to the other's (`--format nft`). Exit 0 when nothing
//! changes for traffic, 1 when something does.

use knc_compiler::back::nft;
use knc_compiler::compile::{Compiled, NodeChoice};
use knc_compiler::ir::Ruleset;
use knc_compiler::lower::ProxyMode;
use knc_compiler::review::{self, Review};

use crate::cli::{DiffArgs, DiffFormat};
use crate::compiling;
use crate::outcome::{print_output, Outcome};

pub fn run(args: &DiffArgs, verbose: bool) -> Outcome {
    let result = match args.format {
        DiffFormat::Nft => transaction(args, verbose),
        format => semantic(args, format, verbose),
    };
    match result {
        Ok((text, changed)) => match print_output(&text) {
            Outcome::Success => Outcome::Status(i32::from(changed)),
            failed => failed,
        },
        Err(outcome) => outcome,
    }
}

/// The review of every node (or of `--node`), rendered; and whether
/// anything changes.
fn semantic(args: &DiffArgs, format: DiffFormat, verbose: bool) -> Result<(String, bool), Outcome> {
    let settings = args.options.settings.settings(ProxyMode::Nftables);
    let compile = |path: &std::path::PathBuf| {
        compiling::compile(
            std::slice::from_ref(path),
            &settings,
            &NodeChoice::Every,
            verbose,
        )
    };
    let old = compile(&args.old)?;
    let new = compile(&args.new)?;
    let review = match &args.options.node {
        None => review::review(&old.rulesets, &new.rulesets),
        Some(name) => {
            if !has_node(&old, name) && !has_node(&new, name) {
                return Err(Outcome::Usage(format!(
                    "node `{name}` is a Node of neither OLD nor NEW"
                )));
            }
            review::review(&of_node(old, name), &of_node(new, name))
        }
    };
    Ok((render(&review, format), !review.is_empty()))
}

fn has_node(compiled: &Compiled, name: &str) -> bool {
    compiled.cluster.nodes.contains_key(name)
}

/// The ruleset compiled for Node `name`, if that side has the Node.
fn of_node(compiled: Compiled, name: &str) -> Vec<Ruleset> {
    compiled
        .rulesets
        .into_iter()
        .filter(|r| r.node.as_deref() == Some(name))
        .collect()
}

fn render(review: &Review, format: DiffFormat) -> String {
    match format {
        DiffFormat::Text => review::text::render(review),
        DiffFormat::Markdown => review::markdown::render(review),
        DiffFormat::Json => review::json::render(review),
        DiffFormat::Nft => unreachable!("--format nft prints the transaction"),
    }
}

/// The nft transaction from OLD's ruleset to NEW's for one node, as `knc
/// diff` printed it before it had formats; and whether anything changes
/// for traffic.
fn transaction(args: &DiffArgs, verbose: bool) -> Result<(String, bool), Outcome> {
    let settings = args.options.settings.settings(ProxyMode::Nftables);
    // NEW decides the node when none is named; OLD is compiled for the same.
    let new = compiling::compile(
        std::slice::from_ref(&args.new),
        &settings,
        &args.options.node_choice(),
        verbose,
    )?
    .into_single();
    let old = compiling::compile(
        std::slice::from_ref(&args.old),
        &settings,
        &NodeChoice::same_as(&new),
        verbose,
    )?
    .into_single();
    let text = match nft::emit_delta(&old, &new) {
        Some(delta) => delta,
        None => format!(
            "# knc full replace: the ruleset's structure changed.\n{}",
            nft::emit(&new)
        ),
    };
    let changed = !review::compare_nodes(&old, &new).is_empty();
    Ok((text, changed))
}
