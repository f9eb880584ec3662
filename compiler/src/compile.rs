//! The one compile entry point every command shares: source files, the
//! command line's settings and a node choice in; one IR ruleset per chosen
//! node, or the located reasons why not, out.
//!
//! `compile`, `diff`, `explain`, `apply` and `reconcile` all go through
//! [`compile`], so node selection, option handling and the wording of their
//! errors are decided here once.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::front::{Diagnostic, Loaded, SourceFile};
use crate::ir::Ruleset;
use crate::lower::{self, LowerError, Options};
use crate::model::addr::parse_cidr;
use crate::model::{Cluster, DetectLocalMode, NodePortAddress};

pub use ipnet::IpNet;

pub use crate::lower::Settings;

/// Which node or nodes to compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChoice {
    /// This Node, which must be among the inputs.
    Named(String),
    /// The single Node of the inputs; a node-agnostic ruleset when there is
    /// none; a usage error when there are several.
    Inferred,
    /// Every Node of the inputs (a node-agnostic ruleset when there is none).
    Every,
    /// A node-agnostic ruleset whatever the inputs hold.
    Agnostic,
}

impl NodeChoice {
    /// `Named` when a name is given, `Inferred` otherwise.
    pub fn from_flag(node: Option<&str>) -> NodeChoice {
        node.map_or(NodeChoice::Inferred, |n| NodeChoice::Named(n.to_string()))
    }

    /// The choice that compiles exactly the node `ruleset` was compiled for.
    pub fn same_as(ruleset: &Ruleset) -> NodeChoice {
        ruleset
            .node
            .clone()
            .map_or(NodeChoice::Agnostic, NodeChoice::Named)
    }
}

/// A successful compile.
#[derive(Debug)]
pub struct Compiled {
    /// One ruleset per chosen node, in node-name order.
    pub rulesets: Vec<Ruleset>,
    /// Warnings found on the way (there are no errors, or this would be a
    /// [`Failure::Invalid`]).
    pub warnings: Vec<Diagnostic>,
    /// How many documents of other kinds were skipped, by kind.
    pub skipped: BTreeMap<String, usize>,
    /// The model the rulesets were lowered from.
    pub cluster: Arc<Cluster>,
}

impl Compiled {
    /// The one ruleset of a single-node choice.
    pub fn into_single(self) -> Ruleset {
        self.rulesets
            .into_iter()
            .next()
            .expect("a single-node choice compiles one ruleset")
    }
}

/// Why a compile produced nothing.
#[derive(Debug)]
pub enum Failure {
    /// The inputs are invalid: every problem found, located (exit 1).
    Invalid(Vec<Diagnostic>),
    /// The request cannot be met as asked (exit 2): an unknown node, or
    /// several Nodes and no choice among them.
    Usage(String),
}

/// Compiles `files` for the chosen node(s). `problems` are diagnostics the
/// caller found before (unreadable files); any error among them fails the
/// compile as invalid input, together with what the files themselves hold.
pub fn compile(
    files: &[SourceFile],
    problems: Vec<Diagnostic>,
    settings: &Settings,
    node: &NodeChoice,
) -> Result<Compiled, Failure> {
    let loaded = crate::front::load(files);
    let compiled = compile_loaded(&loaded, problems, settings, node).map(|(c, _)| c);
    drop_in_background(loaded);
    compiled
}

/// Drops `value` on a thread of its own: freeing a big cluster's objects
/// one by one takes a tenth of a second that the caller need not wait for
/// (and a command that exits next never pays). Dropped here when no
/// thread can be started.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("knc-drop".into())
        .spawn(move || drop(value));
}

/// [`compile`] of files already loaded; also says whether lowering gave a
/// contested frontend to one of its claimants.
pub(crate) fn compile_loaded(
    loaded: &Loaded,
    problems: Vec<Diagnostic>,
    settings: &Settings,
    node: &NodeChoice,
) -> Result<(Compiled, bool), Failure> {
    let analysis = crate::analyse_loaded(loaded);
    let mut diagnostics = problems;
    diagnostics.extend(analysis.diagnostics);
    let cluster = match analysis.cluster {
        Some(cluster) if !diagnostics.iter().any(Diagnostic::is_error) => cluster,
        _ => return Err(Failure::Invalid(diagnostics)),
    };
    let nodes = chosen_nodes(&cluster, node)?;
    let mut options = options(settings);
    let mut rulesets = Vec::with_capacity(nodes.len());
    let mut contested = false;
    for name in nodes {
        options.node = name;
        match lower::lower_with_decisions(&cluster, &options) {
            Ok(lowered) => {
                contested |= lowered
                    .decisions
                    .iter()
                    .any(|d| matches!(d, lower::Decision::FrontendLost { .. }));
                rulesets.push(lowered.ruleset);
            }
            Err(LowerError::UnknownNode(name)) => {
                return Err(Failure::Usage(unknown_node(&cluster, &name)))
            }
        }
    }
    let compiled = Compiled {
        rulesets,
        warnings: diagnostics,
        skipped: analysis.skipped,
        cluster: Arc::new(cluster),
    };
    Ok((compiled, contested))
}

/// Lowering options for `settings` (the node is filled in per node).
pub fn options(settings: &Settings) -> Options {
    Options {
        node: None,
        settings: settings.clone(),
    }
}

fn chosen_nodes(cluster: &Cluster, choice: &NodeChoice) -> Result<Vec<Option<String>>, Failure> {
    let names = || cluster.nodes.keys().cloned();
    Ok(match choice {
        NodeChoice::Named(name) if cluster.nodes.contains_key(name) => vec![Some(name.clone())],
        NodeChoice::Named(name) => return Err(Failure::Usage(unknown_node(cluster, name))),
        NodeChoice::Agnostic => vec![None],
        NodeChoice::Every | NodeChoice::Inferred if cluster.nodes.is_empty() => vec![None],
        NodeChoice::Every => names().map(Some).collect(),
        NodeChoice::Inferred if cluster.nodes.len() == 1 => vec![names().next()],
        NodeChoice::Inferred => {
            return Err(Failure::Usage(format!(
                "the inputs hold {} Nodes ({}); choose one with --node NAME",
                cluster.nodes.len(),
                quoted_list(names())
            )))
        }
    })
}

fn unknown_node(cluster: &Cluster, name: &str) -> String {
    let known = if cluster.nodes.is_empty() {
        "there are none".to_string()
    } else {
        quoted_list(cluster.nodes.keys().cloned())
    };
    format!("node `{name}` is not among the inputs' Nodes ({known})")
}

fn quoted_list(names: impl Iterator<Item = String>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one `--cluster-cidr` / `--service-cidr` value (clap value parser).
pub fn parse_cidr_flag(text: &str) -> Result<IpNet, String> {
    parse_cidr(text).ok_or_else(|| format!("`{text}` is not a CIDR (like 10.244.0.0/16)"))
}

/// Parses one `--nodeport-addresses` value: a CIDR or `primary`.
pub fn parse_nodeport_address(text: &str) -> Result<NodePortAddress, String> {
    match text.trim() {
        "primary" => Ok(NodePortAddress::Primary),
        other => parse_cidr(other)
            .map(NodePortAddress::Cidr)
            .ok_or_else(|| format!("`{other}` is neither a CIDR nor `primary`")),
    }
}

/// Parses `--detect-local-mode`, kube-proxy's four modes.
pub fn parse_detect_local_mode(text: &str) -> Result<DetectLocalMode, String> {
    match text.trim() {
        "ClusterCIDR" => Ok(DetectLocalMode::ClusterCidr),
        "NodeCIDR" => Ok(DetectLocalMode::NodeCidr),
        "InterfaceNamePrefix" => Ok(DetectLocalMode::InterfaceNamePrefix),
        "BridgeInterface" => Ok(DetectLocalMode::BridgeInterface),
        other => Err(format!(
            "`{other}` is not a local-detection mode (`ClusterCIDR`, `NodeCIDR`, \
             `InterfaceNamePrefix` or `BridgeInterface`)"
        )),
    }
}

/// Parses `--pod-interface-name-prefix` / `--pod-bridge-interface`: the
/// name is written into rules as it is, so only 1 to 15 of
/// `[A-Za-z0-9_.-]` ([`crate::ir::valid_interface_name`]) is accepted.
pub fn parse_interface_name(text: &str) -> Result<String, String> {
    if crate::ir::valid_interface_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an interface name (1 to 15 letters, digits, `_`, `.` or `-`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> Vec<SourceFile> {
        vec![SourceFile::new("in.yaml", text)]
    }

    const TWO_NODES: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: b}\n";

    fn usage(result: Result<Compiled, Failure>) -> String {
        match result {
            Err(Failure::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    /// Interface names from flags go into rules as they are: anything that
    /// could change a rule's structure is refused.
    #[test]
    fn interface_name_flags_are_checked() {
        assert_eq!(parse_interface_name("cali"), Ok("cali".to_string()));
        assert_eq!(
            parse_interface_name("br-1.10_x"),
            Ok("br-1.10_x".to_string())
        );
        for bad in [
            "cali\"; drop",
            "",
            "a b",
            "cali*",
            "0123456789abcdef",
            "eth0\n",
        ] {
            assert!(parse_interface_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_detect_local_mode("InterfaceNamePrefix"),
            Ok(DetectLocalMode::InterfaceNamePrefix)
        );
        assert_eq!(
            parse_detect_local_mode("BridgeInterface"),
            Ok(DetectLocalMode::BridgeInterface)
        );
    }

    #[test]
    fn several_nodes_need_a_choice() {
        let inputs = files(TWO_NODES);
        let message = usage(compile(
            &inputs,
            vec![],
            &Settings::default(),
            &NodeChoice::Inferred,
        ));
        assert_eq!(
            message,
            "the inputs hold 2 Nodes (`a`, `b`); choose one with --node NAME"
        );
        let every = compile(&inputs, vec![], &Settings::default(), &NodeChoice::Every).unwrap();
        let nodes: Vec<_> = every.rulesets.iter().map(|r| r.node.clone()).collect();
        assert_eq!(nodes, vec![Some("a".into()), Some("b".into())]);
    }

    #[test]
    fn an_unknown_node_is_named_with_the_known_ones() {
        let message = usage(compile(
            &files(TWO_NODES),
            vec![],
            &Settings::default(),
            &NodeChoice::Named("c".into()),
        ));
        assert_eq!(
            message,
            "node `c` is not among the inputs' Nodes (`a`, `b`)"
        );
    }

    #[test]
    fn no_node_compiles_node_agnostic() {
        let compiled = compile(
            &files(""),
            vec![],
            &Settings::default(),
            &NodeChoice::Inferred,
        )
        .unwrap();
        assert_eq!(compiled.into_single().node, None);
    }

    #[test]
    fn flag_values_parse() {
        assert!(parse_cidr_flag("10.0.0.0/8").is_ok());
        assert_eq!(
            parse_cidr_flag("10.0.0.0").unwrap_err(),
            "`10.0.0.0` is not a CIDR (like 10.244.0.0/16)"
        );
        assert_eq!(
            parse_nodeport_address("primary"),
            Ok(NodePortAddress::Primary)
        );
        assert!(parse_nodeport_address("nope").is_err());
    }
}
