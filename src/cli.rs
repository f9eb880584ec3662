//! Command-line surface of `knc` (design §2), parsed by clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use knc_compiler::compile::{
    parse_cidr_flag, parse_detect_local_mode, parse_interface_name, parse_nodeport_address, IpNet,
    NodeChoice, Settings,
};
use knc_compiler::ir::Protocol;
use knc_compiler::lower::ProxyMode;
use knc_compiler::model::{DetectLocalMode, NodePortAddress};

/// knc compiles Kubernetes Service networking (Services, EndpointSlices,
/// Endpoints, Nodes) into netfilter rulesets, offline and deterministically.
#[derive(Debug, Parser)]
#[command(name = "knc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Say more on standard error (skipped kinds, the chosen node, each
    /// reconcile round).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile manifests into a ruleset for one node (or every node with --out-dir).
    ///
    /// Reads Service, Endpoints, EndpointSlice, Node, ServiceCIDR and
    /// KubeProxyConfiguration objects, and Gateway API Gateways, TCPRoutes
    /// and UDPRoutes, from YAML (multi-document), JSON or `kind: List`
    /// files; other kinds are skipped. Prints one atomic `nft -f` transaction that replaces
    /// knc's own tables and touches nothing else.
    Compile(CompileArgs),
    /// Say what changes for traffic between two sets of manifests.
    ///
    /// Compiles OLD and NEW with the same options and reports, per node and
    /// Service port: frontends added or removed, backends added or removed
    /// and their changes of probability, frontends that start or stop
    /// rejecting or dropping a source class, traffic policy and masquerade
    /// changes, source ranges, session affinity. Without --node every node
    /// of the inputs is compared (one node-agnostic comparison when there
    /// are no Nodes). `--format nft` prints the nft transaction that turns
    /// OLD's ruleset into NEW's instead (for one node, as before). Exit 0
    /// when nothing changes for traffic, 1 when something does (or the
    /// input is invalid, with diagnostics on stderr and nothing on stdout),
    /// 2 usage error.
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
    /// range, addresses two Services claim, Services without a ClusterIP,
    /// Local-policy Services with no endpoint on some node, endpoints of
    /// another IP family, external IPs that are a node's or in a service
    /// CIDR).
    /// Exit 1 on errors, 0 otherwise, whatever the format. `--list` lists
    /// every code, `--explain CODE` documents one, `--format json|sarif`
    /// prints the diagnostics for tools on stdout.
    Lint(LintArgs),
    /// Compile for this node and apply the result to the kernel in one
    /// atomic transaction.
    ///
    /// When the live tables are exactly what knc last applied (recorded in
    /// --state-dir), the transaction holds only what changed; otherwise it
    /// replaces knc's tables whole. Nothing outside knc's own tables and
    /// chains is touched. Exit 0 applied, 1 invalid input, 2 usage error,
    /// 3 the node refused (a tool failed, the kernel rejected the
    /// transaction, the state lock is held); nothing is applied unless the
    /// exit status is 0.
    Apply(ApplyArgs),
    /// Keep this node's rules in step with the manifests: apply at start,
    /// soon after PATH changes, and at least every --interval.
    ///
    /// Each round reads one consistent snapshot of PATH (a directory
    /// swapped by symlink, as git-sync and ConfigMap volumes do, is never
    /// read half old, half new). Invalid input is logged and counted and
    /// the last good ruleset stays. Changes made to knc's tables by anyone
    /// else are repaired in the same round. SIGTERM and SIGINT finish the
    /// round in flight and exit 0, leaving the rules in place (use `knc
    /// cleanup` to remove them). Serves health-check NodePorts for
    /// `externalTrafficPolicy: Local` Services, and /metrics and /healthz
    /// on --metrics-addr.
    Reconcile(ReconcileArgs),
    /// Remove knc's tables (nft) and its chains and jumps (iptables), and
    /// nothing else. Succeeds when there is nothing to remove.
    Cleanup(CleanupArgs),
    /// Print a shell completion script for knc on standard output.
    ///
    /// bash: `knc completions bash > ~/.local/share/bash-completion/completions/knc`;
    /// zsh: `knc completions zsh > "${fpath[1]}/_knc"`; fish: `knc
    /// completions fish > ~/.config/fish/completions/knc.fish`.
    Completions(CompletionsArgs),
    /// Print knc's manual page (roff) on standard output, or one command's.
    ///
    /// `knc man | man -l -` reads it; `knc man > knc.1` installs it.
    /// `knc man compile` prints the page of `knc compile` (knc-compile(1)).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete knc in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command whose own page to print (knc-COMMAND(1)); without it,
    /// knc(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Which netfilter interface the runtime programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// `table ip knc` and `table ip6 knc`, through `nft -f`
    Nft,
    /// knc's KNC-* chains in `nat` and `filter`, through
    /// `iptables-restore --noflush` and `ip6tables-restore --noflush`
    Iptables,
}

/// What `knc cleanup` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanupBackend {
    Nft,
    Iptables,
    All,
}

/// Options of the commands that change the node.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Files or directories to read, as for `compile`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub options: RequiredNodeOptions,

    /// The netfilter interface to program.
    #[arg(long, value_enum, default_value_t = BackendArg::Nft)]
    pub backend: BackendArg,

    /// Where knc keeps its lock and the record of what it last applied.
    /// Losing it costs one full replace, nothing else.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/knc")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Print the transaction that would be applied (on stdout) and change
    /// nothing, neither the kernel nor the state directory.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Longest time between two rounds (e.g. `500ms`, `10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Run one round and exit with `apply`'s status.
    #[arg(long)]
    pub once: bool,

    /// Serve /metrics (Prometheus) and /healthz on this address, e.g.
    /// `127.0.0.1:10249` or `:10249` (every address). Off by default.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// What to remove.
    #[arg(long, value_enum, default_value_t = CleanupBackend::All)]
    pub backend: CleanupBackend,

    /// The state directory whose record is forgotten with the rules.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/knc")]
    pub state_dir: PathBuf,
}

/// `500ms`, `10s`, `1m`, `1h`: a positive duration.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 500ms, 10s or 1m ({e})"))?;
    if duration.is_zero() {
        return Err("the interval must be longer than zero".into());
    }
    Ok(duration)
}

/// `IP:PORT`, `[IPv6]:PORT`, or `:PORT` for every address.
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    full.parse()
        .map_err(|_| format!("`{text}` is not IP:PORT (or :PORT, or [IPv6]:PORT)"))
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories to read, as for `compile`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// List every diagnostic code with its severity and a one-line summary,
    /// and read nothing.
    #[arg(long, conflicts_with = "explain")]
    pub list: bool,

    /// Print the documentation of one diagnostic code (`knc::port-range`,
    /// or just `port-range`): what it checks, why it matters, an example.
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,

    /// How to print the diagnostics: for people on stderr (text), or for
    /// tools on stdout (json, sarif).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
}

/// Output formats of `knc lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// rendered diagnostics with the source lines, on stderr
    Text,
    /// every diagnostic with its code, severity, message, help and
    /// file:line:column, as one JSON object on stdout
    Json,
    /// SARIF 2.1.0 on stdout, for code scanning (GitHub's upload-sarif
    /// annotates the pull request at each diagnostic's line)
    Sarif,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Files or directories to read, as for `compile`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// The destination: IP:PORT, optionally /tcp, /udp or /sctp (default
    /// tcp); IPv6 as [ADDR]:PORT.
    #[arg(long, value_name = "IP:PORT[/PROTO]", value_parser = parse_target)]
    pub to: (SocketAddr, Protocol),

    /// The client's address; without it every source class is explained.
    #[arg(long, value_name = "IP")]
    pub from: Option<std::net::IpAddr>,

    /// The client is a process on this node: explained as the node, also
    /// from a local address its Node object does not list.
    #[arg(long, conflicts_with = "in_interface")]
    pub from_this_node: bool,

    /// The interface the connection arrives on at the node. Under the
    /// InterfaceNamePrefix and BridgeInterface detect-local modes it tells
    /// a pod from an outside client, which no address can.
    #[arg(long, value_name = "NAME")]
    pub in_interface: Option<String>,

    #[command(flatten)]
    pub options: RequiredNodeOptions,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainOutput::Text)]
    pub output: ExplainOutput,
}

/// Output formats of `knc explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainOutput {
    /// sentences for people
    Text,
    /// the same decisions as JSON for tools (fields documented in README)
    Json,
}

/// `10.96.0.10:80`, `10.96.0.10:53/udp`, `[fd00::1]:80/tcp`.
fn parse_target(text: &str) -> Result<(SocketAddr, Protocol), String> {
    let (address, protocol) = match text.rsplit_once('/') {
        Some((address, protocol)) => (address, protocol),
        None => (text, "tcp"),
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(format!("protocol `{other}` is not tcp, udp or sctp")),
    };
    let address = address
        .parse()
        .map_err(|_| format!("`{text}` is not IP:PORT (IPv6 as [ADDR]:PORT)"))?;
    Ok((address, protocol))
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The manifests the node's current ruleset was compiled from.
    pub old: PathBuf,
    /// The manifests to compile now.
    pub new: PathBuf,

    #[command(flatten)]
    pub options: CompileOptions,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// Output formats of `knc diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// what changes for traffic, per node and Service port, as plain text
    Text,
    /// the same, as markdown ready to post as a pull-request comment
    Markdown,
    /// the same, as JSON for tools
    Json,
    /// the nft transaction from OLD's ruleset to NEW's, for one node
    /// (incremental when only elements changed, a full replace otherwise)
    Nft,
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
}

/// Options shared by every command that compiles.
#[derive(Debug, Args, Clone, Default)]
pub struct CompileOptions {
    /// The Node to compile for. Default: the single Node in the inputs, or a
    /// node-agnostic ruleset when there is none.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    #[command(flatten)]
    pub settings: SettingsArgs,
}

impl CompileOptions {
    pub fn node_choice(&self) -> NodeChoice {
        NodeChoice::from_flag(self.node.as_deref())
    }
}

/// Options of the commands that must know the node: `explain`, `apply`,
/// `reconcile`.
#[derive(Debug, Args, Clone, Default)]
pub struct RequiredNodeOptions {
    /// The Node to compile for (a Node object among the inputs).
    #[arg(long, value_name = "NAME", required = true)]
    pub node: String,

    #[command(flatten)]
    pub settings: SettingsArgs,
}

impl RequiredNodeOptions {
    pub fn node_choice(&self) -> NodeChoice {
        NodeChoice::Named(self.node.clone())
    }
}

/// The compiler settings every compiling command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct SettingsArgs {
    /// Pod CIDR of the cluster (repeat, or separate with commas, for dual
    /// stack). Sources inside are pods; others reaching a ClusterIP are
    /// masqueraded. Default: the KubeProxyConfiguration's clusterCIDR, else
    /// the Nodes' podCIDRs.
    #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = parse_cidr_flag, value_delimiter = ',')]
    pub cluster_cidrs: Vec<IpNet>,

    /// Service CIDR (repeat for dual stack): unallocated addresses inside are dropped.
    /// Added to the `spec.cidrs` of the inputs' ServiceCIDR objects.
    #[arg(long = "service-cidr", value_name = "CIDR", value_parser = parse_cidr_flag, value_delimiter = ',')]
    pub service_cidrs: Vec<IpNet>,

    /// Where NodePorts listen: CIDRs of local addresses, or `primary` for the
    /// node's primary IPs (per family its InternalIP, else its ExternalIP; the
    /// default). A family with none listens on all its local addresses.
    #[arg(long = "nodeport-addresses", value_name = "CIDR|primary", value_parser = parse_nodeport_address, value_delimiter = ',')]
    pub nodeport_addresses: Vec<NodePortAddress>,

    /// Masquerade all traffic to Service ClusterIPs, pods' too (kube-proxy's
    /// masqueradeAll). NodePort, external and LoadBalancer IP traffic keeps
    /// the masquerade its traffic policy gives.
    #[arg(long)]
    pub masquerade_all: bool,

    /// Which sources are pods (kube-proxy's detectLocalMode): `ClusterCIDR`,
    /// those inside the cluster CIDRs (the default); `NodeCIDR`, those
    /// inside this node's own podCIDRs, so pods on other nodes are external
    /// clients; `InterfaceNamePrefix`, packets arriving on an interface
    /// whose name starts with --pod-interface-name-prefix; `BridgeInterface`,
    /// packets arriving on --pod-bridge-interface. Default: the
    /// KubeProxyConfiguration's detectLocalMode.
    #[arg(
        long = "detect-local-mode",
        value_name = "ClusterCIDR|NodeCIDR|InterfaceNamePrefix|BridgeInterface",
        value_parser = parse_detect_local_mode
    )]
    pub detect_local_mode: Option<DetectLocalMode>,

    /// Pods' interface name prefix for `InterfaceNamePrefix` (such as
    /// `cali`; 1 to 15 of `A-Z a-z 0-9 _ . -`). Default: the
    /// KubeProxyConfiguration's detectLocal.interfaceNamePrefix.
    #[arg(long = "pod-interface-name-prefix", value_name = "PREFIX", value_parser = parse_interface_name)]
    pub pod_interface_name_prefix: Option<String>,

    /// Pods' bridge interface for `BridgeInterface` (such as `cni0`; 1 to 15
    /// of `A-Z a-z 0-9 _ . -`). Default: the KubeProxyConfiguration's
    /// detectLocal.bridgeInterface.
    #[arg(long = "pod-bridge-interface", value_name = "NAME", value_parser = parse_interface_name)]
    pub pod_bridge_interface: Option<String>,
}

impl SettingsArgs {
    /// The compiler's settings, reading KubeProxyConfiguration as `mode` does.
    pub fn settings(&self, mode: ProxyMode) -> Settings {
        Settings {
            cluster_cidrs: self.cluster_cidrs.clone(),
            service_cidrs: self.service_cidrs.clone(),
            nodeport_addresses: self.nodeport_addresses.clone(),
            masquerade_all: self.masquerade_all,
            mode,
            detect_local_mode: self.detect_local_mode,
            pod_interface_name_prefix: self.pod_interface_name_prefix.clone(),
            pod_bridge_interface: self.pod_bridge_interface.clone(),
        }
    }
}
