//! The change model of a semantic diff: per node, per Service port, what
//! changes for traffic. Built by [`super::compare`], printed by the
//! renderers; serialised as it is for `knc diff --format json`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::ir::{Family, FrontendKind, Protocol, Selection, SetKind};

/// Everything that changes between two sets of manifests, node by node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// One item per node found on either side, in node-name order (a single
    /// node-agnostic item when neither side has Nodes). Nodes where nothing
    /// changes are kept, with no changes, so a reader sees they were checked.
    pub nodes: Vec<NodeChanges>,
}

impl Review {
    /// Whether anything changes for traffic on any node.
    pub fn is_empty(&self) -> bool {
        self.nodes.iter().all(NodeChanges::is_empty)
    }
}

/// What changes on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeChanges {
    /// The node; `None` for node-agnostic rulesets (no Node in the inputs).
    pub node: Option<String>,
    /// Whether the node is on both sides, or only one.
    pub presence: Presence,
    /// Node-wide settings that change (they affect every Service port).
    pub settings: Vec<SettingChange>,
    /// Service ports that change, in (family, namespace, name, port name,
    /// protocol) order.
    pub ports: Vec<ServicePortChange>,
}

impl NodeChanges {
    /// Whether nothing changes for traffic on this node.
    pub fn is_empty(&self) -> bool {
        self.presence == Presence::Both && self.settings.is_empty() && self.ports.is_empty()
    }
}

/// On which side something exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// On both sides: compared.
    Both,
    /// Only in NEW: everything it has is added.
    Added,
    /// Only in OLD: everything it had is removed.
    Removed,
}

/// A node-wide setting of the ruleset, rendered as text on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    pub setting: Setting,
    pub old: String,
    pub new: String,
}

/// The node-wide settings that decide traffic beyond single Service ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// Which sources count as pods (cluster CIDRs or the interface detector).
    PodSources,
    /// Service CIDRs: unallocated addresses inside are dropped.
    ServiceCidrs,
    /// This node's addresses (the `node` source class).
    NodeAddresses,
    /// Where NodePorts accept traffic.
    NodePortScope,
}

/// What changes for one Service port in one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePortChange {
    pub namespace: String,
    pub name: String,
    /// The Service port's name; empty for a Service's one unnamed port.
    pub port_name: String,
    pub family: Family,
    pub protocol: Protocol,
    /// Whether the port is on both sides, or new, or gone.
    pub presence: Presence,
    /// The changes, frontends first, then backends, routes and policies.
    pub changes: Vec<Change>,
}

impl ServicePortChange {
    /// `namespace/name:port` as kube-proxy names a Service port.
    pub fn display_name(&self) -> String {
        crate::names::service_port(&self.namespace, &self.name, &self.port_name)
    }
}

/// Where a Service port is reached: a frontend's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FrontendRef {
    pub kind: FrontendKind,
    /// `None` for a NodePort (it listens on the node's NodePort addresses).
    pub address: Option<IpAddr>,
    pub port: u16,
}

/// The chance a new connection picks a backend: `slots` out of `total`, as
/// the nft back end's random selection has it (weights reduced to slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    pub slots: u32,
    pub total: u32,
}

impl Share {
    /// The share in percent.
    pub fn percent(self) -> f64 {
        100.0 * f64::from(self.slots) / f64::from(self.total.max(1))
    }

    /// Whether two shares are the same probability (`1/2` equals `2/4`).
    pub fn same_as(self, other: Share) -> bool {
        u64::from(self.slots) * u64::from(other.total)
            == u64::from(other.slots) * u64::from(self.total)
    }
}

/// A class of connection source, as the rules tell them apart (explain's).
pub use crate::explain::SourceClass;

/// How a new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// ICMP unreachable or TCP reset: no usable endpoints.
    Reject,
    /// Silently discarded: no node-local endpoint under a Local policy.
    Drop,
}

/// One change to one Service port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    /// A new address (or NodePort) where the port is reached, with the
    /// source classes it refuses from the start (empty: it forwards all).
    FrontendAdded {
        frontend: FrontendRef,
        rejects: Vec<SourceClass>,
        drops: Vec<SourceClass>,
    },
    /// An address (or NodePort) that no longer reaches the port.
    FrontendRemoved { frontend: FrontendRef },
    /// A backend joins a set that some frontend routes to.
    BackendAdded {
        set: SetKind,
        address: IpAddr,
        port: u16,
        share: Share,
    },
    /// A backend leaves a set that some frontend routed to.
    BackendRemoved {
        set: SetKind,
        address: IpAddr,
        port: u16,
        share: Share,
    },
    /// A backend stays but is picked with another probability.
    BackendShare {
        set: SetKind,
        address: IpAddr,
        port: u16,
        old: Share,
        new: Share,
    },
    /// What a frontend does with connections from some source classes.
    Route {
        frontend: FrontendRef,
        classes: Vec<SourceClass>,
        route: RouteChange,
    },
    /// `loadBalancerSourceRanges` of a frontend (empty: everyone).
    SourceRanges {
        frontend: FrontendRef,
        old: Vec<IpNet>,
        new: Vec<IpNet>,
    },
    /// `sessionAffinity: ClientIP` timeout in seconds (`None`: off).
    Affinity { old: Option<u32>, new: Option<u32> },
    /// How a new connection picks a backend (`knc.dev/backend-selection`).
    Selection { old: Selection, new: Selection },
    /// The health-check NodePort of `externalTrafficPolicy: Local`.
    HealthCheckNodePort { old: Option<u16>, new: Option<u16> },
}

/// How a frontend's handling of one source class changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RouteChange {
    /// Forwarded before; refused now.
    StartsRefusing { refusal: Refusal },
    /// Refused before; forwarded now.
    StopsRefusing { refusal: Refusal },
    /// Refused both times, but differently.
    RefusalChanged { old: Refusal, new: Refusal },
    /// Forwarded to the other backend set: a traffic policy change
    /// (`Local` sends to node-local backends only).
    BackendSet { old: SetKind, new: SetKind },
    /// Masquerading (source rewritten to the node's address) switched.
    Masquerade { masquerade: bool },
}
