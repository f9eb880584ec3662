//! Manifest text for the kernel tests: the two Node objects every cluster
//! has, and EndpointSlice / Endpoints builders (Services are written out
//! literally in each test, where their shape is the point).

/// node1 (InternalIP 172.30.0.1, pods 10.244.1.0/24) and node2 (InternalIP
/// 172.30.0.2, pods 10.244.2.0/24).
pub const NODES: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: node1
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24]
status:
  addresses:
  - type: InternalIP
    address: 172.30.0.1
  - type: Hostname
    address: node1
---
apiVersion: v1
kind: Node
metadata:
  name: node2
spec:
  podCIDR: 10.244.2.0/24
  podCIDRs: [10.244.2.0/24]
status:
  addresses:
  - type: InternalIP
    address: 172.30.0.2
  - type: Hostname
    address: node2
";

/// The same two nodes, dual-stack: node1 also has InternalIP
/// fd00:172:30::1 (so NodePorts listen there), node2 fd00:172:30::2, and
/// both have an IPv6 pod CIDR.
pub const NODES_DUAL: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: node1
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, 'fd00:10:244:1::/64']
status:
  addresses:
  - type: InternalIP
    address: 172.30.0.1
  - type: InternalIP
    address: fd00:172:30::1
  - type: Hostname
    address: node1
---
apiVersion: v1
kind: Node
metadata:
  name: node2
spec:
  podCIDR: 10.244.2.0/24
  podCIDRs: [10.244.2.0/24, 'fd00:10:244:2::/64']
status:
  addresses:
  - type: InternalIP
    address: 172.30.0.2
  - type: InternalIP
    address: fd00:172:30::2
  - type: Hostname
    address: node2
";

/// Joins YAML documents into one multi-document stream, Nodes first.
pub fn cluster(docs: &[&str]) -> String {
    cluster_with(NODES, docs)
}

/// Like [`cluster`], with the dual-stack Nodes ([`NODES_DUAL`]).
pub fn cluster_dual(docs: &[&str]) -> String {
    cluster_with(NODES_DUAL, docs)
}

/// Joins YAML documents after the given Node objects.
pub fn cluster_with(nodes: &str, docs: &[&str]) -> String {
    let mut out = nodes.to_owned();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(doc.trim_start_matches('\n'));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One endpoint: address, node, readiness.
#[derive(Debug, Clone, Copy)]
pub struct Ep {
    ip: &'static str,
    node: &'static str,
    ready: bool,
}

/// A ready endpoint; its node follows from its address (10.244.N.x or
/// fd00:10:244:N::x).
pub fn ep(ip: &'static str) -> Ep {
    let node = if ip.starts_with("10.244.2.") || ip.starts_with("fd00:10:244:2:") {
        "node2"
    } else {
        "node1"
    };
    Ep {
        ip,
        node,
        ready: true,
    }
}

impl Ep {
    pub fn not_ready(self) -> Ep {
        Ep {
            ready: false,
            ..self
        }
    }
}

/// An EndpointSlice `<service>-<suffix>` for `service` in `default` with
/// ports `(name, protocol, port)`.
pub fn slice(service: &str, suffix: &str, ports: &[(&str, &str, u16)], eps: &[Ep]) -> String {
    typed_slice("IPv4", service, suffix, ports, eps)
}

/// Like [`slice`], with `addressType: IPv6`.
pub fn slice6(service: &str, suffix: &str, ports: &[(&str, &str, u16)], eps: &[Ep]) -> String {
    typed_slice("IPv6", service, suffix, ports, eps)
}

fn typed_slice(
    address_type: &str,
    service: &str,
    suffix: &str,
    ports: &[(&str, &str, u16)],
    eps: &[Ep],
) -> String {
    let mut y = format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-{suffix}
  namespace: default
  labels:
    kubernetes.io/service-name: {service}
addressType: {address_type}
ports:
"
    );
    for (name, proto, port) in ports {
        y += &format!("- name: \"{name}\"\n  protocol: {proto}\n  port: {port}\n");
    }
    if eps.is_empty() {
        y += "endpoints: []\n";
    } else {
        y += "endpoints:\n";
    }
    for e in eps {
        y += &format!(
            "- addresses: [\"{}\"]\n  conditions:\n    ready: {}\n  nodeName: {}\n",
            e.ip, e.ready, e.node
        );
    }
    y
}

/// A legacy Endpoints object for `service` with ready addresses `eps` and
/// ports `(name, protocol, port)`.
pub fn endpoints(service: &str, ports: &[(&str, &str, u16)], eps: &[Ep]) -> String {
    let mut y = format!(
        "apiVersion: v1
kind: Endpoints
metadata:
  name: {service}
  namespace: default
subsets:
- addresses:
"
    );
    for e in eps {
        y += &format!("  - ip: {}\n    nodeName: {}\n", e.ip, e.node);
    }
    y += "  ports:\n";
    for (name, proto, port) in ports {
        y += &format!("  - name: \"{name}\"\n    protocol: {proto}\n    port: {port}\n");
    }
    y
}
