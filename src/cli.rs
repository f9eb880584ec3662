//! Command-line surface of `knc` (design §2), parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// knc compiles Kubernetes Service networking (Services, EndpointSlices,
/// Endpoints, Nodes) into netfilter rulesets, offline and deterministically.
#[derive(Debug, Parser)]
#[command(name = "knc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile manifests into a ruleset for one node (or every node with --out-dir).
    ///
    /// Reads Service, Endpoints, EndpointSlice, Node and KubeProxyConfiguration
    /// objects from YAML (multi-document), JSON or `kind: List` files; other
    /// kinds are skipped. Prints one atomic `nft -f` transaction that replaces
    /// knc's own tables and touches nothing else.
    Compile(CompileArgs),
    /// Print the nft transaction that turns OLD's ruleset into NEW's.
    ///
    /// Both inputs are compiled for the same node with the same options.
    /// When only Services' frontends and endpoints changed, the output is an
    /// incremental update (`add element` / `delete element`, and new or
    /// unused chains and maps), to apply with `nft -f` on top of OLD's
    /// ruleset; when anything structural changed, it is NEW's full ruleset,
    /// which replaces knc's tables atomically. The first line says which.
    Diff(DiffArgs),
    /// Explain what the node's ruleset does with one new connection.
    ///
    /// Compiles the inputs for the node, finds the Service port whose
    /// ClusterIP, external IP, LoadBalancer IP or NodePort the destination
    /// is, and says per source (this node, a pod, outside the cluster, or
    /// the one given with --from) whether the connection is masqueraded,
    /// which backends may receive it and how likely each is, or why it is
    /// refused or dropped.
    Explain(ExplainArgs),
    /// Check manifests: every validation error, plus warnings for valid but
    /// suspicious configurations (Services without endpoints, endpoints of
    /// no Service, ports no endpoint carries, NodePorts outside the default
    /// range, addresses two Services claim). Exit 1 on errors, 0 otherwise.
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories to read, as for `compile`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Files or directories to read, as for `compile`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// The destination: IP:PORT, optionally /tcp, /udp or /sctp (default
    /// tcp); IPv6 as [ADDR]:PORT.
    #[arg(long, value_name = "IP:PORT[/PROTO]")]
    pub to: String,

    /// The client's address; without it every source class is explained.
    #[arg(long, value_name = "IP")]
    pub from: Option<std::net::IpAddr>,

    #[command(flatten)]
    pub options: CompileOptions,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The manifests the node's current ruleset was compiled from.
    pub old: PathBuf,
    /// The manifests to compile now.
    pub new: PathBuf,

    #[command(flatten)]
    pub options: CompileOptions,

    /// Say more on standard error.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// nftables text for `nft -f`
    Nft,
    /// nftables JSON for `nft -j -f` (not available yet: see README)
    NftJson,
    /// iptables-restore input for IPv4
    Iptables,
    /// ip6tables-restore input for IPv6
    Ip6tables,
    /// the intermediate representation, as JSON
    Ir,
}

/// See `--iptables-hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IptablesHooks {
    Insert,
    Reinsert,
    Omit,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Files or directories to read (directories recursively: *.yaml, *.yml,
    /// *.json, in sorted order); `-` reads standard input.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub options: CompileOptions,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Nft)]
    pub format: OutputFormat,

    /// Write the output to FILE instead of standard output.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "out_dir"
    )]
    pub output: Option<PathBuf>,

    /// Write one file per node, DIR/<node>.<format extension>.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Validate the output with `nft --check -f -` (or `iptables-restore
    /// --test`) when the tool is installed, and report its own error with
    /// the line.
    #[arg(long)]
    pub check: bool,

    /// How iptables output installs the jumps from built-in chains:
    /// `insert` for a first load or plain iptables-restore, `reinsert`
    /// (delete, then insert) for `--noflush` reloads, `omit` for none.
    #[arg(long, value_enum, default_value_t = IptablesHooks::Insert)]
    pub iptables_hooks: IptablesHooks,

    /// Say more on standard error (skipped kinds, chosen node).
    #[arg(short, long)]
    pub verbose: bool,
}

/// Options shared by every command that compiles.
#[derive(Debug, Args, Clone, Default)]
pub struct CompileOptions {
    /// The Node to compile for. Default: the single Node in the inputs, or a
    /// node-agnostic ruleset when there is none.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// Pod CIDR of the cluster (repeat for dual stack). Sources inside are
    /// pods; others reaching a ClusterIP are masqueraded. Default: the
    /// KubeProxyConfiguration's clusterCIDR, else the Nodes' podCIDRs.
    #[arg(long = "cluster-cidr", value_name = "CIDR")]
    pub cluster_cidrs: Vec<String>,

    /// Service CIDR (repeat for dual stack): unallocated addresses inside are dropped.
    #[arg(long = "service-cidr", value_name = "CIDR")]
    pub service_cidrs: Vec<String>,

    /// Where NodePorts listen: CIDRs of local addresses, or `primary` for the
    /// node's InternalIPs (the default).
    #[arg(long = "nodeport-addresses", value_name = "CIDR|primary")]
    pub nodeport_addresses: Vec<String>,

    /// Masquerade all Service traffic.
    #[arg(long)]
    pub masquerade_all: bool,
}
