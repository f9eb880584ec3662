//! Lowering: the cluster model, seen from one node, becomes the IR.
//!
//! Every policy decision is made here, following kube-proxy's nftables
//! mode: which endpoints are usable (ready, else serving and terminating,
//! separately for the cluster-wide and the node-local set), topology hints,
//! which source classes go to which set, what is masqueraded, and when
//! traffic is rejected or dropped. Emitters only say it.

pub mod decisions;
mod endpoints;
pub mod gateway;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::ir::{
    Backend, BackendSets, Entry, Family, Frontend, FrontendKind, LocalDetector, NodePortScope,
    Protocol, Route, Routing, Ruleset, SetKind,
};
use crate::model::{self, Cluster, DetectLocalMode, NodePortAddress};

pub use decisions::Decision;

/// Which kube-proxy mode's settings apply (KubeProxyConfiguration keeps
/// `masqueradeAll` under `nftables:` or `iptables:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyMode {
    #[default]
    Nftables,
    Iptables,
}

/// Settings shared by every command that compiles, already parsed (the
/// binary's argument parser uses [`crate::compile::parse_cidr_flag`] and
/// friends). Empty lists and `false` mean "not given": the inputs'
/// KubeProxyConfiguration, then the defaults, apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub cluster_cidrs: Vec<IpNet>,
    pub service_cidrs: Vec<IpNet>,
    pub nodeport_addresses: Vec<NodePortAddress>,
    pub masquerade_all: bool,
    /// Which kube-proxy mode's configuration (`nftables:` or `iptables:`)
    /// the inputs' KubeProxyConfiguration is read in.
    pub mode: ProxyMode,
    /// `--detect-local-mode`; `None` when not given.
    pub detect_local_mode: Option<DetectLocalMode>,
    /// `--pod-interface-name-prefix` (a valid interface name); wins over
    /// `detectLocal.interfaceNamePrefix`.
    pub pod_interface_name_prefix: Option<String>,
    /// `--pod-bridge-interface` (a valid interface name); wins over
    /// `detectLocal.bridgeInterface`.
    pub pod_bridge_interface: Option<String>,
}

/// What to lower: the node, and the settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The node to compile for; `None` for a node-agnostic ruleset.
    pub node: Option<String>,
    pub settings: Settings,
}

/// Why lowering cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("node `{0}` is not among the inputs' Node objects")]
    UnknownNode(String),
}

/// Lowers the cluster for one node (or none) into the IR.
pub fn lower(cluster: &Cluster, options: &Options) -> Result<Ruleset, LowerError> {
    lower_with_decisions(cluster, options).map(|lowered| lowered.ruleset)
}

/// The IR for one node, and what lowering decided on the way that the IR
/// does not say (see [`decisions`]).
#[derive(Debug, Clone)]
pub struct Lowered {
    pub ruleset: Ruleset,
    /// In the order made: Services compiled to nothing, then frontends lost.
    pub decisions: Vec<Decision>,
}

/// The Node `options` compile for, which must be among the inputs.
fn chosen_node<'a>(
    cluster: &'a Cluster,
    options: &Options,
) -> Result<Option<&'a model::Node>, LowerError> {
    options
        .node
        .as_ref()
        .map(|name| {
            cluster
                .nodes
                .get(name)
                .ok_or_else(|| LowerError::UnknownNode(name.clone()))
        })
        .transpose()
}

/// Like [`lower`], keeping the decisions.
pub fn lower_with_decisions(cluster: &Cluster, options: &Options) -> Result<Lowered, LowerError> {
    let node = chosen_node(cluster, options)?;
    let context = Context::new(cluster, node, options);
    let mut services = context.services(&cluster.services);
    services.extend(context.routes(cluster));
    services.sort_by(|a, b| entry_key(a).cmp(&entry_key(b)));
    // Kubernetes refuses a Service whose ports share a name (two unnamed
    // ports, say), but the inputs may not have been through an API server:
    // the first such port keeps the entry, as the first claim keeps a
    // frontend below, so entry keys stay unique.
    services.dedup_by(|later, first| entry_key(later) == entry_key(first));
    let mut decisions = decisions::nothing_compiled(cluster);
    decisions.extend(decisions::drop_claimed_frontends(&mut services, cluster));
    let cluster_ips: BTreeSet<IpAddr> = cluster
        .services
        .iter()
        .flat_map(|s| s.cluster_ips.iter().copied())
        .collect();
    let ruleset = Ruleset {
        version: crate::ir::VERSION,
        node: node.map(|n| n.name.clone()),
        cluster_cidrs: context.cluster_cidrs.clone(),
        local_detector: context.local_detector.clone(),
        service_cidrs: service_cidrs(cluster, options),
        cluster_ips: cluster_ips.into_iter().collect(),
        node_addresses: context.node_addresses.clone(),
        nodeport_scope: context.nodeport_scope.clone(),
        services: services.into_iter().map(Arc::new).collect(),
    };
    #[cfg(debug_assertions)]
    if let Err(violations) = crate::ir::validate(&ruleset) {
        panic!("{}", broken_promises(&violations));
    }
    Ok(Lowered { ruleset, decisions })
}

/// What [`lower`] gives for `cluster`, worked out from `old` (what it gave
/// before) by lowering again only the Services `keys`, when only their
/// endpoints changed since. `Ok(None)` when the shortcut cannot promise the
/// same result: a frontend of theirs would be contested (the caller knows
/// whether `old` had contested frontends, and does not ask then).
pub fn relower(
    cluster: &Cluster,
    options: &Options,
    old: &Ruleset,
    keys: &BTreeSet<(String, String)>,
) -> Result<Option<Ruleset>, LowerError> {
    let node = chosen_node(cluster, options)?;
    // A route's backends come from Services' endpoints: with routes,
    // lower everything again.
    if old.node.as_ref() != node.map(|n| &n.name) || !cluster.routes.is_empty() {
        return Ok(None);
    }
    let context = Context::new(cluster, node, options);
    let mut fresh: Vec<Entry> = keys
        .iter()
        .filter_map(|(ns, name)| Some(context.service(cluster.service(ns, name)?)))
        .flatten()
        .collect();
    fresh.sort_by(|a, b| entry_key(a).cmp(&entry_key(b)));
    fresh.dedup_by(|later, first| entry_key(later) == entry_key(first));
    let changed = |e: &Entry| {
        keys.iter()
            .any(|(ns, name)| *ns == e.namespace && *name == e.name)
    };
    let claims = |entries: &mut dyn Iterator<Item = &Entry>| {
        let mut all: Vec<_> = entries
            .flat_map(|e| {
                e.frontends
                    .iter()
                    .map(move |f| (e.family, f.address, f.kind, e.protocol, f.port))
            })
            .collect();
        all.sort();
        all
    };
    let before = claims(&mut old.services.iter().map(|e| &**e).filter(|e| changed(e)));
    if claims(&mut fresh.iter()) != before {
        return Ok(None);
    }
    let mut services: Vec<Arc<Entry>> = old
        .services
        .iter()
        .filter(|e| !changed(e))
        .cloned()
        .chain(fresh.into_iter().map(Arc::new))
        .collect();
    services.sort_by(|a, b| entry_key(a).cmp(&entry_key(b)));
    let ruleset = Ruleset {
        services,
        version: old.version,
        node: old.node.clone(),
        cluster_cidrs: old.cluster_cidrs.clone(),
        local_detector: old.local_detector.clone(),
        service_cidrs: old.service_cidrs.clone(),
        cluster_ips: old.cluster_ips.clone(),
        node_addresses: old.node_addresses.clone(),
        nodeport_scope: old.nodeport_scope.clone(),
    };
    #[cfg(debug_assertions)]
    if let Err(violations) = crate::ir::validate(&ruleset) {
        panic!("{}", broken_promises(&violations));
    }
    Ok(Some(ruleset))
}

/// The service CIDRs: `--service-cidr`'s and every ServiceCIDR object's,
/// together. The flag stands for the API server's
/// `--service-cluster-ip-range`, from which it creates the default
/// ServiceCIDR (`kubernetes`); objects added later extend it, so knc takes
/// the union whichever the inputs hold. Overlapping and adjacent ranges
/// (a ServiceCIDR extending the default one is common) are merged: nft
/// refuses overlapping elements in an interval set.
fn service_cidrs(cluster: &Cluster, options: &Options) -> Vec<IpNet> {
    let all: Vec<IpNet> = options
        .settings
        .service_cidrs
        .iter()
        .chain(&cluster.service_cidrs)
        .copied()
        .collect();
    sorted(IpNet::aggregate(&all))
}

/// Lowering broke the IR's contract: a bug in knc, never in the input.
#[cfg(debug_assertions)]
fn broken_promises(violations: &[crate::ir::Violation]) -> String {
    let mut message = String::from("lowering produced IR that breaks its invariants:");
    for violation in violations {
        message.push_str("\n  ");
        message.push_str(&violation.to_string());
    }
    message
}

/// The order and identity of IR entries.
fn entry_key(e: &Entry) -> (Family, &str, &str, &str, Protocol) {
    (e.family, &e.namespace, &e.name, &e.port_name, e.protocol)
}

fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// What every Service of one compilation shares.
struct Context<'a> {
    node: Option<&'a model::Node>,
    cluster_cidrs: Vec<IpNet>,
    local_detector: LocalDetector,
    node_addresses: Vec<IpAddr>,
    nodeport_scope: NodePortScope,
    masquerade_all: bool,
}

impl<'a> Context<'a> {
    fn new(cluster: &'a Cluster, node: Option<&'a model::Node>, options: &Options) -> Self {
        let config = &cluster.proxy_config;
        // The ranges whose sources are the `pods` class. Under NodeCIDR
        // (kube-proxy's detector by the node's own pod CIDRs) they are this
        // node's podCIDRs, and none without a node or without podCIDRs:
        // kube-proxy then tells no pods apart. Otherwise flags win over
        // KubeProxyConfiguration, which wins over the nodes' pod CIDRs. The
        // same ranges decide the `pods` class and which sources to a
        // ClusterIP are masqueraded, as kube-proxy uses one detector for both.
        let detect_local_mode = options
            .settings
            .detect_local_mode
            .or(config.detect_local_mode)
            .unwrap_or_default();
        // Under the interface modes pods are what arrives on the named
        // interface(s), flags winning over `detectLocal`, and no range is
        // the pods class. Without a name kube-proxy refuses the
        // configuration; knc (which reported a bad name already) tells no
        // pods apart, as kube-proxy's no-op detector does.
        let interface =
            |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        let local_detector = match detect_local_mode {
            DetectLocalMode::InterfaceNamePrefix => interface(
                &options.settings.pod_interface_name_prefix,
                &config.interface_name_prefix,
            )
            .map(LocalDetector::InterfacePrefix),
            DetectLocalMode::BridgeInterface => interface(
                &options.settings.pod_bridge_interface,
                &config.bridge_interface,
            )
            .map(LocalDetector::Interface),
            DetectLocalMode::ClusterCidr | DetectLocalMode::NodeCidr => Some(LocalDetector::Cidrs),
        };
        let cluster_cidrs = if !matches!(local_detector, Some(LocalDetector::Cidrs)) {
            Vec::new()
        } else if detect_local_mode == DetectLocalMode::NodeCidr {
            node.map(|n| sorted(n.pod_cidrs.iter().copied()))
                .unwrap_or_default()
        } else if !options.settings.cluster_cidrs.is_empty() {
            sorted(options.settings.cluster_cidrs.iter().copied())
        } else if !config.cluster_cidrs.is_empty() {
            sorted(config.cluster_cidrs.iter().copied())
        } else {
            sorted(
                cluster
                    .nodes
                    .values()
                    .flat_map(|n| n.pod_cidrs.iter().copied()),
            )
        };
        let masquerade_all = options.settings.masquerade_all
            || match options.settings.mode {
                ProxyMode::Nftables => config.masquerade_all_nftables,
                ProxyMode::Iptables => config.masquerade_all_iptables,
            }
            .unwrap_or(false);
        let nodeport_addresses = if !options.settings.nodeport_addresses.is_empty() {
            &options.settings.nodeport_addresses
        } else {
            &config.nodeport_addresses
        };
        let node_addresses = node
            .map(|n| sorted(n.internal_ips.iter().chain(&n.external_ips).copied()))
            .unwrap_or_default();
        Context {
            node,
            cluster_cidrs,
            local_detector: local_detector.unwrap_or(LocalDetector::Cidrs),
            node_addresses,
            nodeport_scope: nodeport_scope(node, nodeport_addresses),
            masquerade_all,
        }
    }

    /// Whether the `pods` class can be told apart in `family`.
    fn has_cluster_cidr(&self, family: Family) -> bool {
        self.local_detector.knows_pods(&self.cluster_cidrs, family)
    }

    /// The entries of `services`, in their order; big clusters are lowered
    /// by a few threads (each Service on its own: the result is the same).
    fn services(&self, services: &[model::Service]) -> Vec<Entry> {
        const PARALLEL_FROM: usize = 2048;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let one_run = |run: &[model::Service]| -> Vec<Entry> {
            run.iter().flat_map(|svc| self.service(svc)).collect()
        };
        if threads < 2 || services.len() < PARALLEL_FROM {
            return one_run(services);
        }
        let share = services.len().div_ceil(threads);
        let runs: Option<Vec<Vec<Entry>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = services
                .chunks(share)
                .map(|run| scope.spawn(move || one_run(run)))
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        });
        match runs {
            Some(runs) => runs.into_iter().flatten().collect(),
            None => one_run(services),
        }
    }

    /// The entries of every attached Gateway API route.
    fn routes(&self, cluster: &Cluster) -> Vec<Entry> {
        let node_name = self.node.map(|n| n.name.as_str());
        let zone = self.node.and_then(|n| n.zone.as_deref());
        cluster
            .routes
            .iter()
            .flat_map(|route| gateway::entries(cluster, route, node_name, zone))
            .collect()
    }

    /// One IR entry per port and family of the Service.
    fn service(&self, svc: &model::Service) -> Vec<Entry> {
        let mut out = Vec::new();
        for cluster_ip in &svc.cluster_ips {
            let family = Family::of(cluster_ip);
            for port in &svc.ports {
                out.push(self.entry(svc, port, *cluster_ip, family));
            }
        }
        out
    }

    fn entry(
        &self,
        svc: &model::Service,
        port: &model::ServicePort,
        cluster_ip: IpAddr,
        family: Family,
    ) -> Entry {
        let node_name = self.node.map(|n| n.name.as_str());
        let zone = self.node.and_then(|n| n.zone.as_deref());
        let candidates = endpoints::candidates(svc, port, family, node_name);
        let chosen = endpoints::categorize(&candidates, node_name, zone);
        let backends = BackendSets {
            cluster: to_backends(&chosen.cluster),
            local: to_backends(&chosen.local),
        };
        let fate = |set: SetKind, masquerade: bool| {
            if !backends.get(set).is_empty() {
                Route::Forward { set, masquerade }
            } else if chosen.has_any {
                Route::Drop
            } else {
                Route::Reject
            }
        };
        let cidr_known = self.has_cluster_cidr(family);

        let internal_set = if svc.internal_policy_local {
            SetKind::Local
        } else {
            SetKind::Cluster
        };
        // Off-cluster sources (and the node itself) are masqueraded to a
        // ClusterIP only when pods can be told apart by a cluster CIDR.
        // masqueradeAll masquerades every source to the ClusterIP, pods
        // too; it is kube-proxy's one rule matching the cluster IP itself,
        // so NodePort, external and LoadBalancer traffic keep the
        // masquerade their traffic policy gives.
        let all = self.masquerade_all;
        let internal = Routing {
            node: fate(internal_set, all || cidr_known),
            pods: fate(internal_set, all),
            external: fate(internal_set, all || cidr_known),
        };
        let external = if svc.external_policy_local {
            let local = fate(SetKind::Local, false);
            Routing {
                // The node's own traffic and pods short-circuit to the
                // cluster-wide set; the node's is masqueraded because its
                // source would be the external address itself.
                node: fate(SetKind::Cluster, true),
                pods: if cidr_known {
                    fate(SetKind::Cluster, false)
                } else {
                    local
                },
                external: local,
            }
        } else {
            let all = fate(SetKind::Cluster, true);
            Routing {
                node: all,
                pods: all,
                external: all,
            }
        };

        let mut frontends = vec![Frontend {
            kind: FrontendKind::ClusterIp,
            address: Some(cluster_ip),
            port: port.port,
            allowed_sources: Vec::new(),
            routing: internal,
        }];
        let same_family = |ip: &&IpAddr| Family::of(ip) == family;
        for ip in svc.external_ips.iter().filter(same_family) {
            frontends.push(Frontend {
                kind: FrontendKind::ExternalIp,
                address: Some(*ip),
                port: port.port,
                allowed_sources: Vec::new(),
                routing: external,
            });
        }
        let allowed_sources = self.allowed_sources(svc, family);
        for ip in svc.load_balancer_ips.iter().filter(same_family) {
            frontends.push(Frontend {
                kind: FrontendKind::LoadBalancer,
                address: Some(*ip),
                port: port.port,
                allowed_sources: allowed_sources.clone(),
                routing: external,
            });
        }
        if let Some(node_port) = port.node_port {
            frontends.push(Frontend {
                kind: FrontendKind::NodePort,
                address: None,
                port: node_port,
                allowed_sources: Vec::new(),
                routing: external,
            });
        }
        frontends.sort_by_key(|a| (a.kind, a.address, a.port));
        frontends.dedup_by(|a, b| (a.kind, a.address, a.port) == (b.kind, b.address, b.port));

        Entry {
            family,
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
            port_name: port.name.clone(),
            protocol: port.protocol,
            frontends,
            backends,
            affinity_timeout_seconds: svc.affinity_timeout_seconds,
            health_check_node_port: svc
                .external_policy_local
                .then_some(svc.health_check_node_port)
                .flatten(),
            selection: svc.selection,
        }
    }

    /// `loadBalancerSourceRanges` of one family. When a node address lies
    /// in a range, the LoadBalancer IPs themselves are allowed too: a node
    /// reaching a VIP that is local to it uses the VIP as its source.
    fn allowed_sources(&self, svc: &model::Service, family: Family) -> Vec<IpNet> {
        let ranges: Vec<IpNet> = svc
            .load_balancer_source_ranges
            .iter()
            .filter(|r| Family::of(&r.addr()) == family)
            .copied()
            .collect();
        if ranges.is_empty() {
            return ranges;
        }
        let node_inside = self
            .node_addresses
            .iter()
            .any(|a| ranges.iter().any(|r| r.contains(a)));
        let extra = svc
            .load_balancer_ips
            .iter()
            .filter(|ip| node_inside && Family::of(ip) == family)
            .map(|ip| IpNet::from(*ip));
        sorted(ranges.iter().copied().chain(extra))
    }
}

fn to_backends(chosen: &[endpoints::Candidate]) -> Vec<Backend> {
    sorted(chosen.iter().map(|c| Backend {
        address: c.address,
        port: c.port,
        weight: 1,
    }))
}

/// Where NodePorts listen: the configured CIDRs and the node's primary IPs
/// (per family its first InternalIP, else its first ExternalIP, as
/// kube-proxy's `GetNodeHostIPs`); any local address when nothing is known.
/// A family left without a range listens on every local address of that
/// family, as kube-proxy's `NewNodePortAddresses` adds `0.0.0.0/0` or
/// `::/0` for it.
fn nodeport_scope(node: Option<&model::Node>, addresses: &[NodePortAddress]) -> NodePortScope {
    let mut nets = BTreeSet::new();
    let primary_wanted = addresses.is_empty() || addresses.contains(&NodePortAddress::Primary);
    for address in addresses {
        if let NodePortAddress::Cidr(net) = address {
            nets.insert(*net);
        }
    }
    if primary_wanted {
        if let Some(node) = node {
            for family in [Family::Ipv4, Family::Ipv6] {
                let of_family = |ip: &&IpAddr| Family::of(ip) == family;
                let primary = node.internal_ips.iter().find(of_family);
                if let Some(ip) = primary.or_else(|| node.external_ips.iter().find(of_family)) {
                    nets.insert(IpNet::from(*ip));
                }
            }
        }
    }
    if nets.is_empty() {
        return NodePortScope::AnyLocal;
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        if !nets.iter().any(|n| Family::of(&n.addr()) == family) {
            nets.insert(match family {
                Family::Ipv4 => IpNet::V4(Default::default()),
                Family::Ipv6 => IpNet::V6(Default::default()),
            });
        }
    }
    NodePortScope::LocalIn(nets.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use crate::front::SourceFile;
    use crate::ir::LocalDetector;
    use crate::model::DetectLocalMode;
    use ipnet::IpNet;

    /// Two unnamed TCP ports would make two entries with one key; the
    /// first port keeps it (and the IR stays valid).
    #[test]
    fn ports_sharing_a_name_make_one_entry() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\n\
                    spec:\n  clusterIP: 10.96.0.1\n  ports:\n  - {port: 80}\n  - {port: 81}\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", text)]);
        let cluster = analysis.cluster.expect("accepted by the model today");
        let ruleset = super::lower(&cluster, &Default::default()).unwrap();
        assert_eq!(crate::ir::validate(&ruleset), Ok(()));
        assert_eq!(ruleset.services.len(), 1);
        assert_eq!(ruleset.services[0].frontends[0].port, 80);
    }

    /// masqueradeAll, as in kube-proxy, masquerades every source reaching
    /// the ClusterIP and leaves the NodePort to its traffic policy: an
    /// external client of an `externalTrafficPolicy: Local` NodePort keeps
    /// its address.
    #[test]
    fn masquerade_all_covers_the_cluster_ip_only() {
        use crate::ir::{FrontendKind, Route};
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\n\
                    spec: {podCIDR: 10.244.1.0/24}\n\
                    status: {addresses: [{type: InternalIP, address: 172.30.0.1}]}\n---\n\
                    apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\n\
                    spec:\n  type: NodePort\n  clusterIP: 10.96.0.1\n\
                    \x20 externalTrafficPolicy: Local\n\
                    \x20 ports:\n  - {name: http, port: 80, nodePort: 30080}\n---\n\
                    apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
                    metadata: {name: a-1, namespace: default, labels: {kubernetes.io/service-name: a}}\n\
                    addressType: IPv4\nports: [{name: http, port: 8080}]\n\
                    endpoints: [{addresses: [10.244.1.1], nodeName: node1}]\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", text)]);
        assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
        let cluster = analysis.cluster.unwrap();
        let options = super::Options {
            node: Some("node1".into()),
            settings: super::Settings {
                masquerade_all: true,
                ..Default::default()
            },
        };
        let ruleset = super::lower(&cluster, &options).unwrap();
        let frontend = |kind| {
            ruleset.services[0]
                .frontends
                .iter()
                .find(|f| f.kind == kind)
                .unwrap()
                .routing
        };
        let masqueraded = |route: Route| {
            matches!(
                route,
                Route::Forward {
                    masquerade: true,
                    ..
                }
            )
        };
        let cluster_ip = frontend(FrontendKind::ClusterIp);
        assert!(masqueraded(cluster_ip.pods) && masqueraded(cluster_ip.external));
        let node_port = frontend(FrontendKind::NodePort);
        assert!(!masqueraded(node_port.pods) && !masqueraded(node_port.external));
        assert!(masqueraded(node_port.node));
    }

    /// `detectLocalMode: NodeCIDR` makes the node's own podCIDRs the pods
    /// class, whatever `clusterCIDR` says; the flag wins over the file.
    #[test]
    fn detect_local_mode_node_cidr_uses_the_nodes_pod_cidrs() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
                    clusterCIDR: 10.244.0.0/16\ndetectLocalMode: NodeCIDR\n---\n\
                    apiVersion: v1\nkind: Node\nmetadata: {name: node1}\n\
                    spec: {podCIDR: 10.244.1.0/24}\n---\n\
                    apiVersion: v1\nkind: Node\nmetadata: {name: node2}\n\
                    spec: {podCIDR: 10.244.2.0/24}\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", text)]);
        assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
        let cluster = analysis.cluster.unwrap();
        let cidrs = |node: Option<&str>, mode| {
            let options = super::Options {
                node: node.map(String::from),
                settings: super::Settings {
                    detect_local_mode: mode,
                    ..Default::default()
                },
            };
            let ruleset = super::lower(&cluster, &options).unwrap();
            ruleset
                .cluster_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(cidrs(Some("node2"), None), ["10.244.2.0/24"]);
        assert_eq!(
            cidrs(Some("node2"), Some(DetectLocalMode::ClusterCidr)),
            ["10.244.0.0/16"]
        );
        assert!(cidrs(None, None).is_empty(), "no node, no pods class");
    }

    /// The interface modes read their name from `detectLocal`, flags
    /// winning, and leave no range as the pods class; without a name no
    /// pods are told apart.
    #[test]
    fn detect_local_interface_modes() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
                    clusterCIDR: 10.244.0.0/16\ndetectLocalMode: InterfaceNamePrefix\n\
                    detectLocal: {interfaceNamePrefix: cali, bridgeInterface: cni0}\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", text)]);
        assert!(!analysis.has_errors(), "{:#?}", analysis.diagnostics);
        let cluster = analysis.cluster.unwrap();
        let lowered = |settings: super::Settings| {
            let options = super::Options {
                node: None,
                settings,
            };
            super::lower(&cluster, &options).unwrap()
        };
        let file = lowered(super::Settings::default());
        assert_eq!(
            file.local_detector,
            LocalDetector::InterfacePrefix("cali".into())
        );
        assert!(file.cluster_cidrs.is_empty());
        let flag = lowered(super::Settings {
            pod_interface_name_prefix: Some("veth".into()),
            ..Default::default()
        });
        assert_eq!(
            flag.local_detector,
            LocalDetector::InterfacePrefix("veth".into())
        );
        let bridge = lowered(super::Settings {
            detect_local_mode: Some(DetectLocalMode::BridgeInterface),
            ..Default::default()
        });
        assert_eq!(
            bridge.local_detector,
            LocalDetector::Interface("cni0".into())
        );
        let cidr = lowered(super::Settings {
            detect_local_mode: Some(DetectLocalMode::ClusterCidr),
            ..Default::default()
        });
        assert_eq!(cidr.local_detector, LocalDetector::Cidrs);
        assert_eq!(
            cidr.cluster_cidrs,
            vec!["10.244.0.0/16".parse::<IpNet>().unwrap()]
        );

        let unnamed =
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
                       clusterCIDR: 10.244.0.0/16\ndetectLocalMode: BridgeInterface\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", unnamed)]);
        let ruleset = super::lower(&analysis.cluster.unwrap(), &Default::default()).unwrap();
        assert_eq!(ruleset.local_detector, LocalDetector::Cidrs);
        assert!(ruleset.cluster_cidrs.is_empty(), "no name, no pods class");
    }

    /// `--service-cidr` and ServiceCIDR objects together, overlapping
    /// ranges merged (nft refuses overlapping interval elements).
    #[test]
    fn service_cidrs_are_the_union_of_flags_and_objects() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: a}\n\
                    spec:\n  cidrs: [10.96.0.0/12, 'fd00:10:96::/112']\n---\n\
                    apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: b}\n\
                    spec:\n  cidrs: [10.200.0.0/16]\n";
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", text)]);
        let cluster = analysis.cluster.expect("valid");
        let options = super::Options {
            node: None,
            settings: super::Settings {
                service_cidrs: vec![
                    "10.96.0.0/16".parse().unwrap(),
                    "10.201.0.0/16".parse().unwrap(),
                ],
                ..Default::default()
            },
        };
        let ruleset = super::lower(&cluster, &options).unwrap();
        let got: Vec<String> = ruleset
            .service_cidrs
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(got, ["10.96.0.0/12", "10.200.0.0/15", "fd00:10:96::/112"]);
    }

    fn node(internal: &[&str], external: &[&str]) -> crate::model::Node {
        crate::model::Node {
            name: "node1".into(),
            internal_ips: internal.iter().map(|ip| ip.parse().unwrap()).collect(),
            external_ips: external.iter().map(|ip| ip.parse().unwrap()).collect(),
            pod_cidrs: Vec::new(),
            zone: None,
        }
    }

    fn scope(node: Option<&crate::model::Node>, addresses: &[&str]) -> Vec<String> {
        use crate::model::NodePortAddress;
        let addresses: Vec<NodePortAddress> = addresses
            .iter()
            .map(|a| match *a {
                "primary" => NodePortAddress::Primary,
                cidr => NodePortAddress::Cidr(cidr.parse().unwrap()),
            })
            .collect();
        match super::nodeport_scope(node, &addresses) {
            crate::ir::NodePortScope::AnyLocal => vec!["any".into()],
            crate::ir::NodePortScope::LocalIn(nets) => nets.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// A family without a configured range listens everywhere (kube-proxy's
    /// `NewNodePortAddresses`); a Node without an InternalIP of a family
    /// uses its ExternalIP (`GetNodeHostIPs`).
    #[test]
    fn nodeport_scope_per_family() {
        let v4 = node(&["172.30.0.1"], &["203.0.113.1", "fd00::9"]);
        assert_eq!(scope(Some(&v4), &[]), ["172.30.0.1/32", "fd00::9/128"]);
        let only_v4 = node(&["172.30.0.1"], &[]);
        assert_eq!(scope(Some(&only_v4), &[]), ["172.30.0.1/32", "::/0"]);
        assert_eq!(scope(None, &["fd00::/8"]), ["0.0.0.0/0", "fd00::/8"]);
        assert_eq!(scope(None, &[]), ["any"]);
        assert_eq!(scope(Some(&node(&[], &[])), &[]), ["any"]);
    }
}
