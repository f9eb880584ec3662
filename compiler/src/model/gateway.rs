//! Gateway API routes in the model: `TCPRoute` / `UDPRoute` backends with
//! weights, attached to a `Gateway` listener whose addresses and port are
//! the frontends. Built by [`crate::kinds`] (which resolves every
//! `parentRef` and reports the ones that attach to nothing); lowering
//! turns each [`AttachedRoute`] into IR entries (`crate::lower::gateway`).

use std::net::IpAddr;

use crate::ir::Protocol;
use crate::model::Origin;

/// Which route kind: it decides the listener protocol a route attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// `TCPRoute`: attaches to `TCP` listeners.
    Tcp,
    /// `UDPRoute`: attaches to `UDP` listeners.
    Udp,
}

impl RouteKind {
    /// The kind as written in manifests.
    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::Tcp => "TCPRoute",
            RouteKind::Udp => "UDPRoute",
        }
    }

    /// The listener protocol the route attaches to.
    pub fn protocol(self) -> Protocol {
        match self {
            RouteKind::Tcp => Protocol::Tcp,
            RouteKind::Udp => Protocol::Udp,
        }
    }
}

/// A Gateway: its addresses (IP ones only) and listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub namespace: String,
    pub name: String,
    /// `spec.addresses` (type `IPAddress` or none) and `status.addresses`
    /// together, each once, in the order first written.
    pub addresses: Vec<IpAddr>,
    pub listeners: Vec<Listener>,
}

/// One `spec.listeners[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub port: u16,
    /// `TCP` or `UDP`; `None` for the protocols of other route kinds
    /// (`HTTP`, `TLS`, …), which TCPRoute and UDPRoute never attach to.
    pub protocol: Option<Protocol>,
    /// `allowedRoutes.namespaces.from`.
    pub from: AllowedNamespaces,
    /// `allowedRoutes.kinds[].kind` (empty: the kinds of the protocol).
    pub kinds: Vec<String>,
}

/// Which namespaces' routes a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowedNamespaces {
    /// The Gateway's own namespace (the API's default).
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces matching a label selector: knc has no Namespace objects
    /// and accepts every namespace.
    Selector,
}

/// A TCPRoute or UDPRoute as written: its parents and backends.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    pub parents: Vec<ParentRef>,
    /// Every rule's backendRefs, in order (a TCPRoute or UDPRoute has one
    /// rule in practice; several are joined).
    pub backends: Vec<BackendRef>,
}

/// One `spec.parentRefs[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentRef {
    /// Its index, to point at it.
    pub index: usize,
    /// `kind` (default `Gateway`) with `group` (default
    /// `gateway.networking.k8s.io`): only Gateways are parents knc knows.
    pub is_gateway: bool,
    pub namespace: String,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<u16>,
}

/// One `backendRefs[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// `kind` Service (default) in the core group (default `""`): other
    /// kinds get no traffic.
    pub is_service: bool,
    pub namespace: String,
    pub name: String,
    /// The Service's port number (`port`, required for Services).
    pub port: u16,
    /// `weight` (default 1); 0 sends no traffic.
    pub weight: u32,
}

/// A route attached to one Gateway listener: what lowering turns into IR
/// entries (one per family with addresses).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachedRoute {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    /// The route's document.
    pub origin: Origin,
    /// `namespace/name` of the Gateway.
    pub gateway_namespace: String,
    pub gateway_name: String,
    pub listener: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub backends: Vec<BackendRef>,
}

impl AttachedRoute {
    /// The IR entry's name: the route's kind and name (`tcproute/web`),
    /// as kubectl names it, which no Service name can be (they have no
    /// `/`): a route's entries never collide with a Service's.
    pub fn entry_name(&self) -> String {
        format!("{}/{}", self.kind.kind().to_ascii_lowercase(), self.name)
    }

    /// The IR entry's port name: the Gateway and listener (`gw/tcp`;
    /// `namespace/gw/tcp` for a Gateway in another namespace).
    pub fn entry_port_name(&self) -> String {
        if self.gateway_namespace == self.namespace {
            format!("{}/{}", self.gateway_name, self.listener)
        } else {
            format!(
                "{}/{}/{}",
                self.gateway_namespace, self.gateway_name, self.listener
            )
        }
    }
}
