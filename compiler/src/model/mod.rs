//! The cluster model: Services joined with their endpoints, the nodes, and
//! the proxy configuration, in plain types that lowering can read without
//! knowing about YAML or k8s-openapi's optional-everything shapes.
//!
//! The model is built by [`crate::kinds::convert`], one conversion per
//! kind, which parses every field once and reports the values that fail.

pub mod addr;
pub mod gateway;
pub mod lint;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::front::{Document, Loaded};
use crate::ir::Protocol;

pub use crate::names::object_key;

/// Everything lowering needs, independent of input order.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Services sorted by (namespace, name), endpoints already joined.
    pub services: Vec<Service>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Settings read from KubeProxyConfiguration objects (flags override
    /// these when lowering).
    pub proxy_config: ProxyConfig,
    /// `spec.cidrs` of every ServiceCIDR object, in input order (lowering
    /// joins them with `--service-cidr`).
    pub service_cidrs: Vec<IpNet>,
    /// TCPRoutes and UDPRoutes attached to Gateway listeners, one per
    /// (route, Gateway, listener), sorted by route then listener.
    pub routes: Vec<gateway::AttachedRoute>,
}

impl Cluster {
    /// The index of Service `namespace/name` in [`Cluster::services`].
    pub fn service_index(&self, namespace: &str, name: &str) -> Option<usize> {
        self.services
            .binary_search_by(|s| (s.namespace.as_str(), s.name.as_str()).cmp(&(namespace, name)))
            .ok()
    }

    /// Service `namespace/name`, if the cluster has it.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.service_index(namespace, name)
            .map(|i| &self.services[i])
    }
}

/// What the inputs hold besides what gets rules, for lint: the Services
/// that get none (headless, ExternalName), every EndpointSlice and
/// Endpoints object with the Service it names, and the facts about
/// Services that only lint asks (selectors, where addresses are written).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// `namespace/name` of the Services that are not in the cluster
    /// (headless, ExternalName).
    pub other_services: std::collections::BTreeSet<String>,
    pub endpoints: Vec<EndpointsObject>,
    /// Services without a selector (absent or empty), ExternalName ones
    /// excepted: nothing in a cluster creates endpoints for them.
    pub selectorless: Vec<ServiceRef>,
    /// Every external IP and LoadBalancer ingress IP (except `ipMode:
    /// Proxy`) a Service lists, with the field it is written in.
    pub external_addresses: Vec<ExternalAddress>,
}

/// A Service named and located, for lint.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    /// `namespace/name`.
    pub key: String,
    pub origin: Origin,
}

/// One external address a Service lists: `spec.externalIPs[i]` or
/// `status.loadBalancer.ingress[i].ip`.
#[derive(Debug, Clone)]
pub struct ExternalAddress {
    pub service: ServiceRef,
    pub address: IpAddr,
    /// The field it is written in, to point at.
    pub path: String,
}

/// An EndpointSlice or Endpoints object, as lint sees it.
#[derive(Debug, Clone)]
pub struct EndpointsObject {
    pub origin: Origin,
    /// `EndpointSlice` or `Endpoints`.
    pub kind: &'static str,
    /// `namespace/name` of the Service it belongs to: a slice's
    /// `kubernetes.io/service-name` label, an Endpoints object's own name.
    pub service: Option<String>,
    /// The IP families of its endpoints, each with the field that says
    /// so: a slice's `addressType` (none for FQDN), an Endpoints object's
    /// addresses one by one.
    pub families: Vec<(String, crate::ir::Family)>,
}

/// kube-proxy settings found in the inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyConfig {
    pub cluster_cidrs: Vec<IpNet>,
    /// Entries of `nodePortAddresses`: CIDRs, or the word `primary`.
    pub nodeport_addresses: Vec<NodePortAddress>,
    /// `nftables.masqueradeAll`.
    pub masquerade_all_nftables: Option<bool>,
    /// `iptables.masqueradeAll`.
    pub masquerade_all_iptables: Option<bool>,
    /// `detectLocalMode`.
    pub detect_local_mode: Option<DetectLocalMode>,
    /// `detectLocal.interfaceNamePrefix`, a valid interface name.
    pub interface_name_prefix: Option<String>,
    /// `detectLocal.bridgeInterface`, a valid interface name.
    pub bridge_interface: Option<String>,
}

/// How kube-proxy tells a Service's pod clients (the `pods` source class)
/// from external ones: `detectLocalMode` / `--detect-local-mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DetectLocalMode {
    /// Sources inside the cluster CIDRs (kube-proxy's default).
    #[default]
    ClusterCidr,
    /// Sources inside this node's own pod CIDRs (`spec.podCIDRs`): a pod on
    /// another node counts as an external client.
    NodeCidr,
    /// Packets arriving on an interface whose name starts with a prefix
    /// (`detectLocal.interfaceNamePrefix`, `--pod-interface-name-prefix`).
    InterfaceNamePrefix,
    /// Packets arriving on one bridge interface
    /// (`detectLocal.bridgeInterface`, `--pod-bridge-interface`).
    BridgeInterface,
}

/// One `--nodeport-addresses` / `nodePortAddresses` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePortAddress {
    /// The node's primary IPs (its InternalIPs, one per family).
    Primary,
    Cidr(IpNet),
}

/// A Node, as far as Service routing cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    /// InternalIP addresses in the order listed.
    pub internal_ips: Vec<IpAddr>,
    /// ExternalIP addresses.
    pub external_ips: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
    /// `topology.kubernetes.io/zone` label.
    pub zone: Option<String>,
}

/// The Service types that get rules (ExternalName and headless get none and
/// are dropped while building).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    ClusterIp,
    NodePort,
    LoadBalancer,
}

/// Where a model object came from: the index of its document in
/// [`crate::front::Loaded::documents`], so that later stages (lowering's
/// decisions, lint) can point at the object or one of its fields without
/// going back to the YAML. Resolving it costs nothing until a diagnostic
/// needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub document: usize,
}

impl Origin {
    /// The document this origin points at.
    pub fn in_loaded<'a>(&self, loaded: &'a Loaded) -> &'a Document {
        &loaded.documents[self.document]
    }
}

/// A Service with its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// The document the Service was read from.
    pub origin: Origin,
    pub service_type: ServiceType,
    /// `spec.clusterIPs` (or `spec.clusterIP`), one per family. Empty when
    /// none is allocated yet (a manifest as kept in Git): such a Service is
    /// in the model so that lowering can say it compiles nothing for it.
    pub cluster_ips: Vec<IpAddr>,
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`, except `ipMode: Proxy`.
    pub load_balancer_ips: Vec<IpAddr>,
    pub load_balancer_source_ranges: Vec<IpNet>,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity_timeout_seconds: Option<u32>,
    pub health_check_node_port: Option<u16>,
    /// How a new connection picks a backend (annotation
    /// `knc.dev/backend-selection`).
    pub selection: crate::ir::Selection,
    pub ports: Vec<ServicePort>,
    /// Endpoints from every EndpointSlice of the Service, or from its
    /// legacy Endpoints object when it has no slice.
    pub endpoints: Vec<Endpoint>,
}

/// One `spec.ports[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePort {
    /// Its index in `spec.ports`, to point at it.
    pub index: usize,
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
    pub target_port: TargetPort,
}

/// `targetPort`: a number, or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// One endpoint address with the ports its slice (or subset) declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: IpAddr,
    pub node_name: Option<String>,
    pub zone: Option<String>,
    /// `hints.forZones`, if the endpoint has hints.
    pub zone_hints: Option<Vec<String>>,
    /// `hints.forNodes` (written for `trafficDistribution: PreferSameNode`),
    /// if the endpoint has node hints.
    pub node_hints: Option<Vec<String>>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub ports: Vec<EndpointPort>,
}

/// A named port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

impl Service {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        object_key(&self.namespace, &self.name)
    }
}

impl Endpoint {
    /// The target port for a Service port, found the way kube-proxy does:
    /// the endpoint port named like the Service port; failing that (hand
    /// written slices), the one named like a named `targetPort`; failing
    /// that, a single unnamed port when the Service port is unnamed.
    pub fn port_for(&self, service_port: &ServicePort) -> Option<u16> {
        let same_protocol = |p: &&EndpointPort| p.protocol == service_port.protocol;
        let by_name = |name: &str| {
            self.ports
                .iter()
                .filter(same_protocol)
                .find(|p| p.name == name)
                .map(|p| p.port)
        };
        by_name(&service_port.name).or_else(|| match &service_port.target_port {
            TargetPort::Name(name) => by_name(name),
            TargetPort::Number(_) => None,
        })
    }
}
