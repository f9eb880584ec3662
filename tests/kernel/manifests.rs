//! Manifest text for the kernel tests: the two Node objects every cluster
//! has, a Service builder ([`ServiceYaml`]) and EndpointSlice / Endpoints
//! builders.

use std::fmt::Display;

/// node1 (InternalIP 172.30.0.1, pods 10.244.1.0/24) and node2 (InternalIP
/// 172.30.0.2, pods 10.244.2.0/24).
pub fn nodes() -> String {
    node_pair(false)
}

/// The same two nodes, dual-stack: node1 also has InternalIP
/// fd00:172:30::1 (so NodePorts listen there), node2 fd00:172:30::2, and
/// both have an IPv6 pod CIDR fd00:10:244:N::/64.
pub fn nodes_dual() -> String {
    node_pair(true)
}

fn node_pair(dual: bool) -> String {
    [1, 2]
        .iter()
        .map(|n| {
            let (pod_cidrs, ipv6) = if dual {
                (
                    format!("[10.244.{n}.0/24, 'fd00:10:244:{n}::/64']"),
                    format!("  - type: InternalIP\n    address: fd00:172:30::{n}\n"),
                )
            } else {
                (format!("[10.244.{n}.0/24]"), String::new())
            };
            format!(
                "apiVersion: v1
kind: Node
metadata:
  name: node{n}
spec:
  podCIDR: 10.244.{n}.0/24
  podCIDRs: {pod_cidrs}
status:
  addresses:
  - type: InternalIP
    address: 172.30.0.{n}
{ipv6}  - type: Hostname
    address: node{n}
"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Joins YAML documents into one multi-document stream, Nodes first.
pub fn cluster(docs: &[&str]) -> String {
    cluster_with(&nodes(), docs)
}

/// Like [`cluster`], with the dual-stack Nodes ([`nodes_dual`]).
pub fn cluster_dual(docs: &[&str]) -> String {
    cluster_with(&nodes_dual(), docs)
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

/// One endpoint: address, node, conditions and an optional zone hint.
#[derive(Debug, Clone, Copy)]
pub struct Ep {
    ip: &'static str,
    node: &'static str,
    ready: bool,
    /// `serving` (absent when `None`) and `terminating`, written only when
    /// set.
    draining: Option<(Option<bool>, bool)>,
    zone: Option<&'static str>,
    /// A node hint (`hints.forNodes`), as PreferSameNode writes.
    for_node: Option<&'static str>,
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
        draining: None,
        zone: None,
        for_node: None,
    }
}

impl Ep {
    pub fn not_ready(self) -> Ep {
        Ep {
            ready: false,
            ..self
        }
    }

    /// Terminating and still serving (`ready: false, serving: true,
    /// terminating: true`).
    pub fn terminating(self) -> Ep {
        Ep {
            ready: false,
            draining: Some((Some(true), true)),
            ..self
        }
    }

    /// Terminating with no `serving` condition written (`ready: false,
    /// terminating: true`), as a controller that predates it writes.
    pub fn terminating_serving_unset(self) -> Ep {
        Ep {
            ready: false,
            draining: Some((None, true)),
            ..self
        }
    }

    /// Terminating and no longer serving (after [`Ep::terminating`]).
    pub fn not_serving(self) -> Ep {
        Ep {
            draining: Some((Some(false), true)),
            ..self
        }
    }

    /// With a topology hint `forZones: [zone]`.
    pub fn for_zone(self, zone: &'static str) -> Ep {
        Ep {
            zone: Some(zone),
            ..self
        }
    }

    /// Listed in the slice as on `node` whatever its address says: a pod
    /// that routes through node1 (so replies pass node1's connection
    /// tracking) yet counts as another node's endpoint.
    pub fn on_node(self, node: &'static str) -> Ep {
        Ep { node, ..self }
    }

    /// With a node hint `forNodes: [node]` (`trafficDistribution:
    /// PreferSameNode`).
    pub fn for_node(self, node: &'static str) -> Ep {
        Ep {
            for_node: Some(node),
            ..self
        }
    }
}

/// The one port most test Services have: `http`, TCP, target port 8080.
pub const HTTP: &[(&str, &str, u16)] = &[("http", "TCP", 8080)];

/// An EndpointSlice for `service`'s [`HTTP`] port.
pub fn http_slice(service: &str, eps: &[Ep]) -> String {
    slice(service, "x1", HTTP, eps)
}

/// Like [`http_slice`], with `addressType: IPv6`.
pub fn http_slice6(service: &str, eps: &[Ep]) -> String {
    slice6(service, "v6", HTTP, eps)
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
            "- addresses: [\"{}\"]\n  conditions:\n    ready: {}\n",
            e.ip, e.ready
        );
        if let Some((serving, terminating)) = e.draining {
            if let Some(serving) = serving {
                y += &format!("    serving: {serving}\n");
            }
            y += &format!("    terminating: {terminating}\n");
        }
        y += &format!("  nodeName: {}\n", e.node);
        if e.zone.is_some() || e.for_node.is_some() {
            y += "  hints:\n";
        }
        if let Some(zone) = e.zone {
            y += &format!("    forZones:\n    - name: {zone}\n");
        }
        if let Some(node) = e.for_node {
            y += &format!("    forNodes:\n    - name: {node}\n");
        }
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

/// A ClusterIP Service `name` on `ip` with the [`HTTP`] port: `http`, TCP
/// 80 to 8080.
pub fn http_service(name: &str, ip: &str) -> String {
    ServiceYaml::cluster_ip(name, ip).http().yaml()
}

/// A LoadBalancer Service `name` on ClusterIP `ip` and ingress IP `lb_ip`,
/// its `http` port on NodePort `node_port`, open to `range` only
/// (`loadBalancerSourceRanges`).
pub fn lb_with_source_ranges(
    name: &str,
    ip: &str,
    lb_ip: &str,
    node_port: u16,
    range: &str,
) -> String {
    ServiceYaml::cluster_ip(name, ip)
        .extra(&format!("  loadBalancerSourceRanges: [{range}]\n"))
        .http()
        .node_port(node_port)
        .load_balancer(lb_ip)
        .yaml()
}

/// A Service in `default`, built up from what a test needs and written out
/// by [`ServiceYaml::yaml`]:
///
/// ```ignore
/// ServiceYaml::cluster_ip("np", "10.96.0.30").http().node_port(30080).yaml()
/// ServiceYaml::cluster_ip("lb", "10.96.0.50")
///     .http()
///     .node_port(30050)
///     .load_balancer("203.0.113.10")
///     .extra("  externalTrafficPolicy: Local\n")
///     .yaml()
/// ```
#[derive(Debug, Clone)]
pub struct ServiceYaml {
    name: String,
    kind: &'static str,
    cluster_ips: Vec<String>,
    /// `ipFamilies` and `ipFamilyPolicy`, when not the IPv4 default.
    families: Option<(&'static str, &'static str)>,
    extra: String,
    ports: Vec<ServicePort>,
    ingress: Option<String>,
}

#[derive(Debug, Clone)]
struct ServicePort {
    name: String,
    protocol: &'static str,
    port: u16,
    target: String,
    node_port: Option<u16>,
}

impl ServiceYaml {
    /// A `type: ClusterIP` Service `name` on ClusterIP `ip`, no ports yet.
    pub fn cluster_ip(name: &str, ip: &str) -> ServiceYaml {
        ServiceYaml {
            name: name.to_owned(),
            kind: "ClusterIP",
            cluster_ips: vec![ip.to_owned()],
            families: None,
            extra: String::new(),
            ports: Vec::new(),
            ingress: None,
        }
    }

    /// Single-stack IPv6 (`ipFamilies: [IPv6]`): the ClusterIP is IPv6.
    pub fn ipv6(mut self) -> ServiceYaml {
        self.families = Some(("[IPv6]", "SingleStack"));
        self
    }

    /// Dual-stack (`RequireDualStack`, IPv4 first), `ip6` the second
    /// ClusterIP.
    pub fn dual_stack(mut self, ip6: &str) -> ServiceYaml {
        self.families = Some(("[IPv4, IPv6]", "RequireDualStack"));
        self.cluster_ips.push(ip6.to_owned());
        self
    }

    /// A TCP port `name`: `port` to `target` (a number or a port name).
    pub fn port(self, name: &str, port: u16, target: impl Display) -> ServiceYaml {
        self.with_port("TCP", name, port, target)
    }

    /// A UDP port `name`: `port` to `target` (a number or a port name).
    pub fn udp_port(self, name: &str, port: u16, target: impl Display) -> ServiceYaml {
        self.with_port("UDP", name, port, target)
    }

    /// The usual port: `http`, TCP 80 to 8080 (see [`HTTP`]).
    pub fn http(self) -> ServiceYaml {
        self.port("http", 80, 8080)
    }

    fn with_port(
        mut self,
        protocol: &'static str,
        name: &str,
        port: u16,
        target: impl Display,
    ) -> ServiceYaml {
        self.ports.push(ServicePort {
            name: name.to_owned(),
            protocol,
            port,
            target: target.to_string(),
            node_port: None,
        });
        self
    }

    /// Gives the last port added NodePort `node_port`; a ClusterIP Service
    /// becomes `type: NodePort`.
    pub fn node_port(mut self, node_port: u16) -> ServiceYaml {
        self.ports
            .last_mut()
            .expect("node_port after a port")
            .node_port = Some(node_port);
        if self.kind == "ClusterIP" {
            self.kind = "NodePort";
        }
        self
    }

    /// `type: LoadBalancer` with `ingress_ip` in its status.
    pub fn load_balancer(mut self, ingress_ip: &str) -> ServiceYaml {
        self.kind = "LoadBalancer";
        self.ingress = Some(ingress_ip.to_owned());
        self
    }

    /// `sessionAffinity: ClientIP` with a timeout of `timeout_seconds`.
    pub fn session_affinity(self, timeout_seconds: u32) -> ServiceYaml {
        self.extra(&format!(
            "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: {timeout_seconds}\n"
        ))
    }

    /// Further `spec` lines, indented as such (e.g.
    /// `"  externalIPs: [198.51.100.10]\n"`).
    pub fn extra(mut self, spec_lines: &str) -> ServiceYaml {
        self.extra.push_str(spec_lines);
        self
    }

    /// The Service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest text.
    pub fn yaml(&self) -> String {
        // IPv6 addresses are quoted (a flow sequence must not start a
        // mapping at their colons).
        let quote = |ip: &String| {
            if ip.contains(':') {
                format!("'{ip}'")
            } else {
                ip.clone()
            }
        };
        let ips: Vec<String> = self.cluster_ips.iter().map(quote).collect();
        let mut y = format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {}
  namespace: default
spec:
  type: {}
",
            self.name, self.kind
        );
        if let Some((families, policy)) = self.families {
            y += &format!("  ipFamilies: {families}\n  ipFamilyPolicy: {policy}\n");
        }
        y += &format!(
            "  clusterIP: {}\n  clusterIPs: [{}]\n",
            ips[0],
            ips.join(", ")
        );
        y += &self.extra;
        assert!(!self.ports.is_empty(), "Service {} has no ports", self.name);
        y += "  ports:\n";
        for p in &self.ports {
            y += &format!(
                "  - name: {}\n    protocol: {}\n    port: {}\n    targetPort: {}\n",
                p.name, p.protocol, p.port, p.target
            );
            if let Some(node_port) = p.node_port {
                y += &format!("    nodePort: {node_port}\n");
            }
        }
        if let Some(ip) = &self.ingress {
            y += &format!("status:\n  loadBalancer:\n    ingress:\n    - ip: {ip}\n");
        }
        y
    }
}

#[test]
fn node_pairs_are_the_documented_yaml() {
    let plain = nodes();
    let dual = nodes_dual();
    assert_eq!(plain.matches("kind: Node").count(), 2);
    assert!(plain.contains("  podCIDRs: [10.244.2.0/24]\nstatus:"));
    assert!(!plain.contains("fd00"));
    assert!(dual.contains("  - type: InternalIP\n    address: fd00:172:30::1\n  - type: Hostname\n    address: node1\n"));
    assert!(dual.contains("podCIDRs: [10.244.2.0/24, 'fd00:10:244:2::/64']"));
}
