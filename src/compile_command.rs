//! `knc compile`: manifests in, one ruleset per node out.

use knc_compiler::back::iptables::{self, Hooks};
use knc_compiler::back::{self, Format};
use knc_compiler::compile::NodeChoice;
use knc_compiler::ir::{Family, Ruleset};
use knc_compiler::lower::ProxyMode;
use knc_runtime::tool::ToolError;
use knc_runtime::write::{atomically, is_safe_file_name};

use crate::cli::{CompileArgs, IptablesHooks, OutputFormat};
use crate::compiling;
use crate::outcome::{print_output, Outcome};

pub fn run(args: &CompileArgs, verbose: bool) -> Outcome {
    let format =
        match args.format {
            OutputFormat::NftJson => return Outcome::Usage(
                "--format nft-json is not available: nft 1.0.6, the version on our nodes, has no \
                 JSON form for the dynamic-map updates session affinity needs and crashes loading \
                 this layout's concatenated maps from JSON; use --format nft (the same ruleset as \
                 `nft -f` text)"
                    .to_string(),
            ),
            OutputFormat::Nft => Format::Nft,
            OutputFormat::Iptables => Format::Iptables,
            OutputFormat::Ip6tables => Format::Ip6tables,
            OutputFormat::Ir => Format::Ir,
        };
    let mode = match format {
        Format::Iptables | Format::Ip6tables => ProxyMode::Iptables,
        _ => ProxyMode::Nftables,
    };
    let node = match (args.options.node_choice(), &args.out_dir) {
        (NodeChoice::Inferred, Some(_)) => NodeChoice::Every,
        (choice, _) => choice,
    };
    let settings = args.options.settings.settings(mode);
    let compiled = match compiling::compile(&args.paths, &settings, &node, verbose) {
        Ok(compiled) => compiled,
        Err(outcome) => return outcome,
    };
    let mut outputs = Vec::new();
    for ruleset in &compiled.rulesets {
        let text = emit(format, args.iptables_hooks, ruleset);
        if args.check {
            match knc_runtime::check::check(format, &text) {
                Ok(_) => {}
                Err(ToolError::Missing(tool)) => {
                    eprintln!("warning: {tool} is not installed; --check skipped")
                }
                Err(ToolError::Refused {
                    program, stderr, ..
                }) => {
                    return Outcome::Refused(format!(
                        "{program} rejected the generated ruleset:\n{stderr}"
                    ))
                }
                Err(e) => return Outcome::Refused(e.to_string()),
            }
        }
        outputs.push((ruleset.node.clone(), text));
    }
    let outcome = write_outputs(args, format, outputs);
    knc_compiler::compile::drop_in_background(compiled);
    outcome
}

/// Renders one ruleset; iptables output honours `--iptables-hooks`.
fn emit(format: Format, hooks: IptablesHooks, ruleset: &Ruleset) -> String {
    let hooks = match hooks {
        IptablesHooks::Insert => Hooks::Insert,
        IptablesHooks::Reinsert => Hooks::Reinsert,
        IptablesHooks::Omit => Hooks::Omit,
    };
    match format {
        Format::Iptables => iptables::emit_with(ruleset, Family::Ipv4, hooks),
        Format::Ip6tables => iptables::emit_with(ruleset, Family::Ipv6, hooks),
        _ => back::emit(format, ruleset),
    }
}

fn write_outputs(
    args: &CompileArgs,
    format: Format,
    outputs: Vec<(Option<String>, String)>,
) -> Outcome {
    if let Some(dir) = &args.out_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Outcome::Refused(format!("cannot create `{}`: {e}", dir.display()));
        }
        for (node, text) in &outputs {
            let name = node.as_deref().unwrap_or("any-node");
            if !is_safe_file_name(name) {
                return Outcome::Refused(format!(
                    "node name `{name}` cannot be used as a file name"
                ));
            }
            let path = dir.join(format!("{name}.{}", format.extension()));
            if let Err(e) = atomically(&path, text.as_bytes()) {
                return Outcome::Refused(format!("cannot write `{}`: {e}", path.display()));
            }
        }
        return Outcome::Success;
    }
    let text = outputs.into_iter().map(|(_, t)| t).collect::<String>();
    match &args.output {
        Some(path) => match atomically(path, text.as_bytes()) {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Refused(format!("cannot write `{}`: {e}", path.display())),
        },
        None => print_output(&text),
    }
}
