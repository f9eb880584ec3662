//! `knc compile`: manifests in, one ruleset per node out.

use std::path::Path;

use knc_compiler::back::iptables::{self, Hooks};
use knc_compiler::back::{self, Format};
use knc_compiler::ir::Family;
use knc_compiler::lower::{self, LowerError, Options, ProxyMode};
use knc_compiler::model::addr::parse_cidr;
use knc_compiler::model::{Cluster, NodePortAddress};

use crate::cli::{CompileArgs, CompileOptions, IptablesHooks, OutputFormat};
use crate::inputs;
use crate::outcome::{print_diagnostics, print_output, Outcome};
use crate::tool_check::{self, CheckResult};

pub fn run(args: &CompileArgs) -> Outcome {
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
    let mut options = match options(&args.options, mode) {
        Ok(options) => options,
        Err(message) => return Outcome::Usage(message),
    };
    let cluster = match analyse(&args.paths, args.verbose) {
        Ok(cluster) => cluster,
        Err(outcome) => return outcome,
    };
    let nodes: Vec<Option<String>> = match (&options.node, cluster.nodes.len(), &args.out_dir) {
        (Some(node), _, _) => vec![Some(node.clone())],
        (None, 0, _) => vec![None],
        (None, 1, _) => vec![cluster.nodes.keys().next().cloned()],
        (None, _, Some(_)) => cluster.nodes.keys().cloned().map(Some).collect(),
        (None, n, None) => {
            return Outcome::Usage(format!(
                "the inputs hold {n} Nodes ({}); choose one with --node NAME, or compile all with --out-dir DIR",
                cluster.nodes.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let mut outputs = Vec::new();
    for node in nodes {
        options.node = node.clone();
        if args.verbose {
            eprintln!(
                "compiling for {}",
                node.as_deref()
                    .unwrap_or("any node (no Node in the inputs)")
            );
        }
        let ruleset = match lower::lower(&cluster, &options) {
            Ok(ruleset) => ruleset,
            Err(LowerError::UnknownNode(name)) => {
                let known: Vec<String> = cluster.nodes.keys().map(|k| format!("`{k}`")).collect();
                return Outcome::Usage(format!(
                    "node `{name}` is not among the inputs' Nodes ({})",
                    if known.is_empty() {
                        "there are none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        };
        let text = emit(format, args.iptables_hooks, &ruleset);
        let checker = args.check.then(|| tool_check::checker(format)).flatten();
        if let Some((program, check_args)) = checker {
            match tool_check::check(program, check_args, &text) {
                CheckResult::Valid => {}
                CheckResult::ToolMissing(tool) => {
                    eprintln!("warning: {tool} is not installed; --check skipped")
                }
                CheckResult::Invalid(message) => {
                    return Outcome::Failed(format!(
                        "{program} rejected the generated ruleset:\n{message}"
                    ))
                }
            }
        }
        outputs.push((node, text));
    }
    write_outputs(args, format, outputs)
}

/// Renders one ruleset; iptables output honours `--iptables-hooks`.
fn emit(format: Format, hooks: IptablesHooks, ruleset: &knc_compiler::ir::Ruleset) -> String {
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

pub fn analyse(paths: &[std::path::PathBuf], verbose: bool) -> Result<Cluster, Outcome> {
    let (files, mut problems) = inputs::read(paths);
    let analysis = knc_compiler::analyse(&files);
    if verbose {
        let skipped: usize = analysis.skipped.values().sum();
        let kinds: Vec<String> = analysis
            .skipped
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        eprintln!(
            "read {} files; skipped {skipped} documents of other kinds{}",
            files.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        );
    }
    problems.extend(analysis.diagnostics);
    if !problems.iter().any(|d| d.is_error()) {
        print_diagnostics(&problems);
    }
    match analysis.cluster {
        Some(cluster) if !problems.iter().any(|d| d.is_error()) => Ok(cluster),
        _ => Err(Outcome::InvalidInput(problems)),
    }
}

/// Flags as the compiler's options; a malformed CIDR is a usage error.
pub fn options(flags: &CompileOptions, mode: ProxyMode) -> Result<Options, String> {
    let cidrs = |values: &[String], flag: &str| -> Result<Vec<_>, String> {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|v| {
                parse_cidr(v)
                    .ok_or_else(|| format!("--{flag} `{v}` is not a CIDR (like 10.244.0.0/16)"))
            })
            .collect()
    };
    let nodeport_addresses = flags
        .nodeport_addresses
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| match v.trim() {
            "primary" => Ok(NodePortAddress::Primary),
            other => parse_cidr(other).map(NodePortAddress::Cidr).ok_or_else(|| {
                format!("--nodeport-addresses `{other}` is neither a CIDR nor `primary`")
            }),
        })
        .collect::<Result<_, _>>()?;
    Ok(Options {
        node: flags.node.clone(),
        cluster_cidrs: cidrs(&flags.cluster_cidrs, "cluster-cidr")?,
        service_cidrs: cidrs(&flags.service_cidrs, "service-cidr")?,
        nodeport_addresses,
        masquerade_all: flags.masquerade_all,
        mode,
    })
}

fn write_outputs(
    args: &CompileArgs,
    format: Format,
    outputs: Vec<(Option<String>, String)>,
) -> Outcome {
    if let Some(dir) = &args.out_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Outcome::Failed(format!("cannot create `{}`: {e}", dir.display()));
        }
        for (node, text) in &outputs {
            let name = node.as_deref().unwrap_or("any-node");
            if !is_safe_file_name(name) {
                return Outcome::Failed(format!(
                    "node name `{name}` cannot be used as a file name"
                ));
            }
            let path = dir.join(format!("{name}.{}", format.extension()));
            if let Err(e) = write_atomically(&path, text) {
                return Outcome::Failed(format!("cannot write `{}`: {e}", path.display()));
            }
        }
        return Outcome::Success;
    }
    let text = outputs.into_iter().map(|(_, t)| t).collect::<String>();
    match &args.output {
        Some(path) => match write_atomically(path, &text) {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Failed(format!("cannot write `{}`: {e}", path.display())),
        },
        None => print_output(&text),
    }
}

/// Node names are DNS subdomains; anything else could escape the directory.
fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Writes through a temporary file and a rename, so readers never see half a ruleset.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}
