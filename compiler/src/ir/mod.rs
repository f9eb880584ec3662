//! The intermediate representation: what one node must do with Service
//! traffic, decided, and nothing about how a back end says it.
//!
//! # Contract
//!
//! The IR is the only thing back ends see. Lowering (`crate::lower`) builds it
//! from the cluster model for one node; every emitter (nftables text and
//! JSON, iptables-restore) is a pure function of it. The IR is serde
//! serialisable and printed by `knc compile --format ir`.
//!
//! * An **[`Entry`]** is one port of one Service in one IP family. A
//!   dual-stack Service with two ports becomes four entries. Everything in an
//!   entry (frontend addresses, backend addresses) is of that entry's family,
//!   so no rule can send IPv4 traffic to an IPv6 backend.
//! * A **[`Frontend`]** is an address and port where the Service is reached:
//!   its ClusterIP, an ExternalIP, a LoadBalancer ingress IP, or its NodePort
//!   (on every address of [`Ruleset::nodeport_scope`]). An entry lowered
//!   from a Gateway API TCPRoute or UDPRoute attached to a Gateway listener
//!   is named `<kind>/<route>` (`tcproute/web`, which no Service name can
//!   be), its port name is `<gateway>/<listener>`, and its frontends are
//!   the Gateway's addresses at the listener's port.
//! * A **backend set** is a list of [`Backend`]s: endpoint address, target
//!   port and a **weight**. A new connection picks a backend with
//!   probability `weight / sum(weights)`. Lowering gives Services' backends
//!   equal weights, and a route's backends the weights of its backendRefs
//!   split over their endpoints; emitters must honour any weights. Each entry carries two sets:
//!   [`BackendSets::cluster`] (every usable endpoint) and
//!   [`BackendSets::local`] (usable endpoints on this node).
//! * An entry's **[`Selection`]** says how a new connection picks among a
//!   set's backends: at random in proportion to the weights (the
//!   default), or by a hash of the client's source address into the slot
//!   table of [`selection`], so that one client always reaches the same
//!   backend on every node compiled from the same inputs.
//! * Each frontend says, per **source class**, what happens to a new
//!   connection ([`Routing`]): forward to one of the two sets (masqueraded or
//!   not), reject (ICMP unreachable / TCP reset), or drop. Source classes:
//!   `pods` (as [`Ruleset::local_detector`] says: source inside a
//!   [`Ruleset::cluster_cidrs`] range, or arrival on a pod interface),
//!   `node` (source is an address of this node), `external` (anything
//!   else). An emitter checks them in the
//!   order node, pods, external.
//!
//! # Invariants lowering guarantees
//!
//! [`validate`] checks every one of them that the data can show (each is an
//! [`Invariant`]); debug builds run it after lowering, and IR read back from
//! outside must pass it before an emitter sees it.
//!
//! * The ruleset is of this knc's format, [`VERSION`].
//! * Sorted and deduplicated everywhere: entries by (family, namespace,
//!   name, port name, protocol), frontends by (kind, address, port), backends
//!   by (address, port), and every list of addresses or ranges (cluster and
//!   Service CIDRs, ClusterIPs, node addresses, the NodePort scope, allowed
//!   sources) in its natural order. Output depends on nothing but the
//!   inputs' content.
//! * Frontend keys are unique across the ruleset: no two frontends share
//!   (family, address, protocol, port), NodePorts counting as one address.
//! * A `Forward` route never names an empty set; an empty set becomes
//!   `Reject` (no endpoints at all) or `Drop` (no node-local endpoints).
//! * Under [`LocalDetector::Cidrs`], when [`Ruleset::cluster_cidrs`] has
//!   nothing of an entry's family, `pods` equals `external` for every
//!   frontend of that entry: without a cluster CIDR pods cannot be told
//!   apart. Under an interface detector pods are told apart in both
//!   families, and [`Ruleset::cluster_cidrs`] is empty.
//! * An interface name in [`Ruleset::local_detector`] is 1 to 15 bytes of
//!   `[A-Za-z0-9_.-]`, so emitters may write it into a rule as it is.
//! * Weights are at least 1.
//! * One family per entry: every frontend address, backend address and
//!   allowed source of an entry is of the entry's family.
//! * A NodePort frontend has no address; every other frontend has one.
//!
//! Emitters, in turn, guarantee:
//!
//! * Hairpin: whatever the route, a connection whose chosen backend is its
//!   own source address is masqueraded (so replies come back through the
//!   node). Emitters implement this for every backend.
//! * Traffic to an address in [`Ruleset::cluster_ips`] on a port no entry
//!   serves is rejected; traffic to any other address inside
//!   [`Ruleset::service_cidrs`] is dropped.

pub mod selection;
mod validate;

pub use validate::{validate, Invariant, Violation};

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The format version of the serialised IR, carried in
/// [`Ruleset::version`]. Bump it whenever the meaning or shape of the IR
/// changes; [`validate`] rejects a ruleset of any other version, so IR read
/// back from outside (the runtime's state record) is never misread.
pub const VERSION: u32 = 1;

/// Everything one node needs, for both IP families.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Format version, [`VERSION`] when built by this knc; IR serialised
    /// before versions existed reads as 0.
    #[serde(default)]
    pub version: u32,
    /// The node compiled for; `None` for a node-agnostic ruleset.
    pub node: Option<String>,
    /// Pod address ranges: sources inside are the `pods` class. The
    /// cluster CIDRs, or under `detectLocalMode: NodeCIDR` the node's own
    /// pod CIDRs.
    pub cluster_cidrs: Vec<IpNet>,
    /// How the `pods` source class is recognised (kube-proxy's
    /// `detectLocalMode`). Absent in serialised IR means
    /// [`LocalDetector::Cidrs`], the only detector before this field.
    #[serde(default, skip_serializing_if = "LocalDetector::is_cidrs")]
    pub local_detector: LocalDetector,
    /// Service address ranges: unallocated addresses inside are dropped.
    pub service_cidrs: Vec<IpNet>,
    /// Active ClusterIPs: unknown ports on them are rejected.
    pub cluster_ips: Vec<IpAddr>,
    /// Addresses of this node (sources of the `node` class come from
    /// these, and NodePorts listen on them when the scope says so).
    pub node_addresses: Vec<IpAddr>,
    /// Where NodePort frontends accept traffic.
    pub nodeport_scope: NodePortScope,
    /// One entry per Service port and IP family. Shared (`Arc`): a node
    /// agent's compile after an endpoint change reuses every entry that
    /// did not change, and copies of a ruleset are cheap.
    pub services: Vec<Arc<Entry>>,
}

impl Ruleset {
    /// The entry at `index`, to change (a copy of it when shared).
    pub fn entry_mut(&mut self, index: usize) -> &mut Entry {
        Arc::make_mut(&mut self.services[index])
    }

    /// A ruleset of this version holding only `services` for `node`: no
    /// CIDRs, no node addresses, NodePorts on any local address. For tests
    /// and tools that build IR by hand.
    pub fn with_services(node: Option<String>, services: Vec<Entry>) -> Ruleset {
        Ruleset {
            version: VERSION,
            node,
            cluster_cidrs: Vec::new(),
            local_detector: LocalDetector::Cidrs,
            service_cidrs: Vec::new(),
            cluster_ips: Vec::new(),
            node_addresses: Vec::new(),
            nodeport_scope: NodePortScope::AnyLocal,
            services: services.into_iter().map(Arc::new).collect(),
        }
    }
}

/// How the `pods` source class is recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum LocalDetector {
    /// Sources inside [`Ruleset::cluster_cidrs`] (`detectLocalMode`
    /// `ClusterCIDR` or `NodeCIDR`).
    #[default]
    Cidrs,
    /// Packets that arrived on an interface whose name starts with this
    /// prefix (`InterfaceNamePrefix`): nft `iifname "PREFIX*"`, iptables
    /// `-i PREFIX+`.
    InterfacePrefix(String),
    /// Packets that arrived on the interface of this name
    /// (`BridgeInterface`).
    Interface(String),
}

/// Greatest common divisor (0 with 0 is 0): weights are reduced by it.
pub(crate) fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// [`gcd`] of two `u64`s.
pub(crate) fn gcd64(a: u64, b: u64) -> u64 {
    gcd(a.into(), b.into()) as u64
}

impl LocalDetector {
    /// Whether this is [`LocalDetector::Cidrs`].
    pub fn is_cidrs(&self) -> bool {
        matches!(self, LocalDetector::Cidrs)
    }

    /// Whether packets arriving on `interface` come from pods under this
    /// detector (never under [`LocalDetector::Cidrs`], which asks the
    /// address instead).
    pub fn matches_interface(&self, interface: &str) -> bool {
        match self {
            LocalDetector::Cidrs => false,
            LocalDetector::InterfacePrefix(prefix) => interface.starts_with(prefix.as_str()),
            LocalDetector::Interface(name) => interface == name,
        }
    }

    /// Whether the `pods` class can be told apart in `family`, given the
    /// ruleset's cluster CIDRs.
    pub fn knows_pods(&self, cluster_cidrs: &[IpNet], family: Family) -> bool {
        match self {
            LocalDetector::Cidrs => cluster_cidrs
                .iter()
                .any(|c| Family::of(&c.addr()) == family),
            LocalDetector::InterfacePrefix(_) | LocalDetector::Interface(_) => true,
        }
    }
}

/// Whether `name` may name a network interface in the IR (and so be written
/// into a rule as it is): 1 to 15 bytes of `[A-Za-z0-9_.-]`. Linux allows
/// more, but nothing that needs quoting.
pub fn valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Which destination addresses NodePorts accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "cidrs")]
pub enum NodePortScope {
    /// Any address local to the node except loopback (node-agnostic output).
    AnyLocal,
    /// Addresses local to the node that lie inside one of these ranges (the
    /// node's primary IPs as /32 and /128, or `--nodeport-addresses`). A
    /// match-all range (`0.0.0.0/0`, `::/0`) makes its family listen as
    /// `AnyLocal` does: every local address of that family but loopback.
    LocalIn(Vec<IpNet>),
}

/// Where NodePorts of one family accept traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyScope<'a> {
    /// Any local address of the family except loopback.
    AnyLocal,
    /// Local addresses inside these ranges (no NodePort rule when empty).
    In(Vec<&'a IpNet>),
}

impl NodePortScope {
    /// The scope for `family`'s NodePorts.
    pub fn for_family(&self, family: Family) -> FamilyScope<'_> {
        match self {
            NodePortScope::AnyLocal => FamilyScope::AnyLocal,
            NodePortScope::LocalIn(nets) => {
                let nets: Vec<&IpNet> = nets
                    .iter()
                    .filter(|n| Family::of(&n.addr()) == family)
                    .collect();
                if nets.iter().any(|n| n.prefix_len() == 0) {
                    FamilyScope::AnyLocal
                } else {
                    FamilyScope::In(nets)
                }
            }
        }
    }

    /// Whether a NodePort accepts traffic sent to `to` (a local address).
    pub fn accepts(&self, to: &IpAddr) -> bool {
        match self.for_family(Family::of(to)) {
            FamilyScope::AnyLocal => !to.is_loopback(),
            FamilyScope::In(nets) => nets.iter().any(|n| n.contains(to)),
        }
    }
}

/// IP family of an entry and of everything in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// Transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// An entry: one port of one Service in one family, with its frontends and
/// backends. (Not the model's `ServicePort`, which is family-less.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub family: Family,
    pub namespace: String,
    pub name: String,
    /// The Service port's `name` (empty when the Service has one unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    pub frontends: Vec<Frontend>,
    pub backends: BackendSets,
    /// `sessionAffinity: ClientIP`: seconds a client sticks to its backend.
    /// Emitters remember a client per entry (the Service port in one
    /// family), whichever of its frontends the client uses, as kube-proxy
    /// does; a route to [`BackendSets::local`] only ever finds a remembered
    /// backend of that set.
    pub affinity_timeout_seconds: Option<u32>,
    /// Port the runtime serves the ETP Local health check on.
    pub health_check_node_port: Option<u16>,
    /// How a new connection picks a backend of a set (annotation
    /// `knc.dev/backend-selection`). Absent in serialised IR means
    /// [`Selection::Random`], the only way before this field.
    #[serde(default, skip_serializing_if = "Selection::is_random")]
    pub selection: Selection,
}

/// How a new connection picks one backend of a set.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// At random, with probability `weight / sum(weights)` (kube-proxy's way).
    #[default]
    Random,
    /// By a hash of the client's source address into a slot table
    /// ([`selection::slot_table`], [`selection::slot_of`]): a client always
    /// reaches the same backend, and removing a backend moves only the
    /// clients it had.
    SourceHash,
}

impl Selection {
    /// Whether this is [`Selection::Random`].
    pub fn is_random(&self) -> bool {
        matches!(self, Selection::Random)
    }
}

impl Entry {
    /// `namespace/name:port` as kube-proxy names a service port.
    pub fn display_name(&self) -> String {
        crate::names::service_port(&self.namespace, &self.name, &self.port_name)
    }
}

/// Where a Service port is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontend {
    pub kind: FrontendKind,
    /// The destination address; `None` for NodePorts (see
    /// [`Ruleset::nodeport_scope`]).
    pub address: Option<IpAddr>,
    pub port: u16,
    /// Sources allowed to use this frontend (`loadBalancerSourceRanges`);
    /// empty means everyone. Others are dropped.
    pub allowed_sources: Vec<IpNet>,
    pub routing: Routing,
}

/// What kind of address a frontend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrontendKind {
    ClusterIp,
    ExternalIp,
    LoadBalancer,
    NodePort,
    /// A Gateway API Gateway address, at a listener's port, for a TCPRoute
    /// or UDPRoute (the entry is named after the route). Routed as a
    /// LoadBalancer IP under `externalTrafficPolicy: Cluster`.
    Gateway,
}

/// What a new connection to a frontend does, by source class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Routing {
    /// Connections from an address of this node.
    pub node: Route,
    /// Connections from inside a cluster CIDR.
    pub pods: Route,
    /// Connections from anywhere else.
    pub external: Route,
}

/// The fate of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Route {
    /// Send to a backend of `set`, rewriting the source to the node's
    /// address when `masquerade`.
    Forward { set: SetKind, masquerade: bool },
    /// Refuse: ICMP port unreachable, TCP reset.
    Reject,
    /// Discard silently.
    Drop,
}

/// Which of an entry's two backend sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetKind {
    Cluster,
    Local,
}

/// The two backend sets of an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSets {
    /// Usable endpoints anywhere in the cluster.
    pub cluster: Vec<Backend>,
    /// Usable endpoints on this node.
    pub local: Vec<Backend>,
}

impl BackendSets {
    pub fn get(&self, kind: SetKind) -> &[Backend] {
        match kind {
            SetKind::Cluster => &self.cluster,
            SetKind::Local => &self.local,
        }
    }
}

/// One endpoint address and target port, with its selection weight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A match-all range listens as `AnyLocal` does: never on loopback.
    #[test]
    fn match_all_scope_excludes_loopback() {
        let scope = NodePortScope::LocalIn(vec![
            "172.30.0.1/32".parse().unwrap(),
            "::/0".parse().unwrap(),
        ]);
        assert_eq!(scope.for_family(Family::Ipv6), FamilyScope::AnyLocal);
        assert!(scope.accepts(&"fd00::1".parse().unwrap()));
        assert!(!scope.accepts(&"::1".parse().unwrap()));
        assert!(scope.accepts(&"172.30.0.1".parse().unwrap()));
        assert!(!scope.accepts(&"172.30.0.2".parse().unwrap()));
        let all4 = NodePortScope::LocalIn(vec!["0.0.0.0/0".parse().unwrap()]);
        assert!(!all4.accepts(&"127.0.0.1".parse().unwrap()));
        assert!(all4.accepts(&"10.0.0.1".parse().unwrap()));
        assert!(!all4.accepts(&"fd00::1".parse().unwrap()));
    }
}
