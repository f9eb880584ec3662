//! `knc explain`: what the compiled ruleset does with one new connection,
//! told from the IR (the same decisions every back end implements).

use std::fmt::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::ir::{
    selection, Backend, Entry, Family, Frontend, FrontendKind, LocalDetector, Protocol, Route,
    Ruleset, Selection, SetKind,
};

mod explanation;

pub use explanation::{
    explanation, Affinity, AffinityFrontend, Candidate, Connection, Explanation, MatchedFrontend,
    Reason, ServicePort, SourceVerdict, Verdict,
};

/// A connection to explain: destination, protocol and optionally the source.
#[derive(Debug, Clone)]
pub struct Query {
    pub to: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub from: Option<IpAddr>,
    /// The client is a process on this node: the `node` class whatever its
    /// source address (a local address need not be listed in the Node
    /// object, so the address alone cannot tell).
    pub from_this_node: bool,
    /// The interface the connection arrives on at this node: under an
    /// interface detector it decides whether the source is a pod.
    pub arrives_on: Option<String>,
}

/// Which source class a client falls in, as the rules tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceClass {
    Node,
    Pods,
    External,
}

impl SourceClass {
    /// The class as `ruleset`'s detector recognises it: under an interface
    /// detector by the interface a packet arrives on, which no address
    /// tells.
    fn describe(self, ruleset: &Ruleset) -> String {
        let interface = match &ruleset.local_detector {
            LocalDetector::Cidrs => None,
            LocalDetector::InterfacePrefix(prefix) => Some(format!("{prefix}*")),
            LocalDetector::Interface(name) => Some(name.clone()),
        };
        match (self, interface) {
            (SourceClass::Node, _) => "this node".into(),
            (SourceClass::Pods, None) => "a pod".into(),
            (SourceClass::External, None) => "outside the cluster".into(),
            (SourceClass::Pods, Some(i)) => {
                format!("a pod (arriving on an interface matching {i})")
            }
            (SourceClass::External, Some(i)) => {
                format!("outside the cluster (arriving on an interface not matching {i})")
            }
        }
    }
}

/// The source class of `from` in `ruleset`. Under an interface detector
/// an address other than the node's is [`SourceClass::External`] here;
/// [`explain`] shows both classes it may be, as only the interface tells.
pub fn classify(ruleset: &Ruleset, from: IpAddr) -> SourceClass {
    if ruleset.node_addresses.contains(&from) {
        SourceClass::Node
    } else if ruleset.cluster_cidrs.iter().any(|c| c.contains(&from)) {
        SourceClass::Pods
    } else {
        SourceClass::External
    }
}

/// Explains `query` against `ruleset` as readable text.
pub fn explain(ruleset: &Ruleset, query: &Query) -> String {
    let mut out = String::new();
    let target = match query.to {
        IpAddr::V4(ip) => format!("{ip}:{}/{}", query.port, query.protocol.as_str()),
        IpAddr::V6(ip) => format!("[{ip}]:{}/{}", query.port, query.protocol.as_str()),
    };
    let Some((service, frontend)) = find(ruleset, query) else {
        let _ = writeln!(out, "{target}: {}", unmatched(ruleset, query));
        return out;
    };
    let family = match service.family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    };
    let _ = if frontend.kind == FrontendKind::Gateway {
        // A route's entry: named `<kind>/<route>`, port `<gateway>/<listener>`.
        writeln!(
            out,
            "{target} is the Gateway address of listener `{}`, route `{}` ({family}).",
            service.port_name,
            crate::names::object_key(&service.namespace, &service.name),
        )
    } else {
        writeln!(
            out,
            "{target} is the {} of Service port `{}` ({family}).",
            kind_name(frontend.kind),
            service.display_name(),
        )
    };
    let classes = classes(ruleset, query);
    if !frontend.allowed_sources.is_empty() {
        let ranges: Vec<String> = frontend
            .allowed_sources
            .iter()
            .map(|r| r.to_string())
            .collect();
        let _ = writeln!(
            out,
            "Only sources in {} may connect (loadBalancerSourceRanges).",
            ranges.join(", ")
        );
        if let Some(from) = query.from {
            if !source_allowed(frontend, Some(from)) {
                let _ = writeln!(
                    out,
                    "From {from}: dropped, the source is outside those ranges."
                );
                return out;
            }
        }
    }
    for class in classes {
        let route = match class {
            SourceClass::Node => frontend.routing.node,
            SourceClass::Pods => frontend.routing.pods,
            SourceClass::External => frontend.routing.external,
        };
        let who = match query.from {
            Some(from) => format!("From {from}, {}", class.describe(ruleset)),
            None => format!("From {}", class.describe(ruleset)),
        };
        let _ = write!(out, "{who}: ");
        let _ = describe_route(&mut out, service, route, query.from);
    }
    out
}

/// The source classes `query` is explained for: its source's class; under
/// an interface detector the arrival interface's class, or both classes an
/// address may be when it is not given; all three when nothing tells.
fn classes(ruleset: &Ruleset, query: &Query) -> Vec<SourceClass> {
    const ALL: [SourceClass; 3] = [SourceClass::Node, SourceClass::Pods, SourceClass::External];
    const ARRIVING: [SourceClass; 2] = [SourceClass::Pods, SourceClass::External];
    let local = query.from_this_node
        || query
            .from
            .is_some_and(|from| ruleset.node_addresses.contains(&from));
    if local {
        return vec![SourceClass::Node];
    }
    if !ruleset.local_detector.is_cidrs() {
        return match &query.arrives_on {
            Some(interface) if ruleset.local_detector.matches_interface(interface) => {
                vec![SourceClass::Pods]
            }
            Some(_) => vec![SourceClass::External],
            None if query.from.is_some() => ARRIVING.to_vec(),
            None => ALL.to_vec(),
        };
    }
    match (query.from, &query.arrives_on) {
        (Some(from), _) => vec![classify(ruleset, from)],
        (None, Some(_)) => ARRIVING.to_vec(),
        (None, None) => ALL.to_vec(),
    }
}

/// Whether `from` may use `frontend` (`loadBalancerSourceRanges`); an
/// unknown source may.
fn source_allowed(frontend: &Frontend, from: Option<IpAddr>) -> bool {
    match from {
        Some(from) if !frontend.allowed_sources.is_empty() => {
            frontend.allowed_sources.iter().any(|r| r.contains(&from))
        }
        _ => true,
    }
}

/// Selection share of each backend of `service`, in order: weight over
/// total weight for random selection (a zero weight counts as one, as the
/// back ends select), its share of the slot table for selection by
/// source-address hash.
fn shares(service: &Entry, backends: &[Backend]) -> Vec<f64> {
    if service.selection == Selection::SourceHash {
        let table = selection::slot_table(backends);
        return (0..backends.len())
            .map(|i| table.iter().filter(|&&b| b as usize == i).count() as f64 / table.len() as f64)
            .collect();
    }
    let total: u64 = backends.iter().map(|b| u64::from(b.weight.max(1))).sum();
    backends
        .iter()
        .map(|b| f64::from(b.weight.max(1)) / total as f64)
        .collect()
}

fn describe_route(
    out: &mut String,
    service: &Entry,
    route: Route,
    from: Option<IpAddr>,
) -> fmt::Result {
    match route {
        Route::Reject => writeln!(
            out,
            "refused (TCP reset, ICMP unreachable otherwise): no usable endpoints."
        ),
        Route::Drop => writeln!(
            out,
            "dropped: no usable endpoint on this node for a node-local traffic policy."
        ),
        Route::Forward { set, masquerade } => {
            let backends = service.backends.get(set);
            let hashed = service.selection == Selection::SourceHash;
            writeln!(
                out,
                "{}sent to one of {} {} backend{}{}:",
                if masquerade {
                    "masqueraded to the node's address and "
                } else {
                    "source kept, "
                },
                backends.len(),
                match set {
                    SetKind::Cluster => "cluster-wide",
                    SetKind::Local => "node-local",
                },
                if backends.len() == 1 { "" } else { "s" },
                if hashed {
                    ", by source-address hash"
                } else {
                    ""
                }
            )?;
            let table = if hashed {
                selection::slot_table(backends)
            } else {
                Vec::new()
            };
            for (backend, share) in backends.iter().zip(shares(service, backends)) {
                let share = 100.0 * share;
                write!(out, "    {:<28} {share:5.1} %", endpoint(backend))?;
                if from == Some(backend.address) {
                    write!(out, "  (the client itself: hairpin, masqueraded)")?;
                }
                writeln!(out)?;
            }
            if let (true, Some(from)) = (hashed, from) {
                let size = table.len() as u32;
                let slot = selection::slot_of(from, size);
                let chosen = &backends[table[slot as usize] as usize];
                write!(
                    out,
                    "  {from} hashes to slot {slot} of {size}: always {}",
                    endpoint(chosen)
                )?;
                // The iptables back end's table is smaller (`-m cluster`).
                let small = selection::slot_table_of(backends, selection::SMALL_TABLE_SIZE);
                let slot = selection::slot_of(from, selection::SMALL_TABLE_SIZE);
                let there = &backends[small[slot as usize] as usize];
                if there != chosen {
                    write!(out, " ({} with the iptables back end)", endpoint(there))?;
                }
                writeln!(out, ".")?;
            }
            if let Some(timeout) = service.affinity_timeout_seconds {
                writeln!(out, "  {}", affinity_scope(service, timeout))?;
            }
            Ok(())
        }
    }
}

/// `A:port`, or `[A]:port` for IPv6.
fn endpoint(backend: &Backend) -> String {
    match backend.address {
        IpAddr::V4(ip) => format!("{ip}:{}", backend.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", backend.port),
    }
}

/// What session affinity remembers, as every back end implements it: a
/// client per Service port (entry), whichever of its addresses the client
/// uses, kept apart for the cluster-wide and the node-local backends when
/// the port routes to both (a node-local route never goes to a backend
/// remembered on another node).
pub fn affinity_scope(service: &Entry, timeout: u32) -> String {
    let addresses: Vec<String> = service
        .frontends
        .iter()
        .map(|f| match (f.kind, f.address) {
            (FrontendKind::NodePort, _) | (_, None) => format!("NodePort {}", f.port),
            (kind, Some(IpAddr::V4(ip))) => format!("{} {ip}:{}", kind_name(kind), f.port),
            (kind, Some(IpAddr::V6(ip))) => format!("{} [{ip}]:{}", kind_name(kind), f.port),
        })
        .collect();
    let apart = if sets_remembered_apart(service) {
        "; the cluster-wide and the node-local backends are remembered apart"
    } else {
        ""
    };
    format!(
        "Session affinity (ClientIP, {timeout} s): a client keeps its backend whichever address \
         of this Service port it uses ({}){apart}.",
        addresses.join(", ")
    )
}

/// Whether some frontend of `service` routes to the cluster-wide and some
/// to the node-local backends, so affinity remembers a client per set.
fn sets_remembered_apart(service: &Entry) -> bool {
    let forwards = |set: SetKind| {
        service.frontends.iter().any(|f| {
            [f.routing.node, f.routing.pods, f.routing.external]
                .iter()
                .any(|r| matches!(r, Route::Forward { set: s, .. } if *s == set))
        })
    };
    forwards(SetKind::Cluster) && forwards(SetKind::Local)
}

fn kind_name(kind: FrontendKind) -> &'static str {
    match kind {
        FrontendKind::ClusterIp => "ClusterIP",
        FrontendKind::ExternalIp => "external IP",
        FrontendKind::LoadBalancer => "LoadBalancer IP",
        FrontendKind::NodePort => "NodePort",
        FrontendKind::Gateway => "Gateway address",
    }
}

/// The Service port and frontend a connection reaches, if any: an address
/// frontend first, then a NodePort on a node address.
fn find<'a>(ruleset: &'a Ruleset, query: &Query) -> Option<(&'a Entry, &'a Frontend)> {
    let candidates = ruleset
        .services
        .iter()
        .map(|s| &**s)
        .filter(|s| s.protocol == query.protocol && s.family == Family::of(&query.to))
        .flat_map(|s| s.frontends.iter().map(move |f| (s, f)));
    let mut nodeport = None;
    for (service, frontend) in candidates {
        if frontend.port != query.port {
            continue;
        }
        if frontend.kind == FrontendKind::NodePort {
            if nodeport_accepts(ruleset, query.to) {
                nodeport = Some((service, frontend));
            }
        } else if frontend.address == Some(query.to) {
            return Some((service, frontend));
        }
    }
    nodeport
}

fn nodeport_accepts(ruleset: &Ruleset, to: IpAddr) -> bool {
    ruleset.nodeport_scope.accepts(&to)
}

fn unmatched(ruleset: &Ruleset, query: &Query) -> String {
    match unmatched_verdict(ruleset, query) {
        Verdict::Rejected { .. } => {
            "refused: an active ClusterIP, but no Service port listens there.".to_string()
        }
        Verdict::Dropped { .. } => {
            "dropped: inside a service CIDR, but no Service has this address.".to_string()
        }
        _ => {
            "not a Service address or NodePort here; knc's rules let it pass untouched.".to_string()
        }
    }
}

/// What happens to a connection that reaches no frontend: refused on an
/// active ClusterIP, dropped elsewhere in a service CIDR, untouched
/// otherwise.
fn unmatched_verdict(ruleset: &Ruleset, query: &Query) -> Verdict {
    if ruleset.cluster_ips.contains(&query.to) {
        Verdict::Rejected {
            reason: Reason::NoServicePort,
        }
    } else if ruleset.service_cidrs.iter().any(|c| c.contains(&query.to)) {
        Verdict::Dropped {
            reason: Reason::UnallocatedServiceAddress,
        }
    } else {
        Verdict::NoFrontend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{BackendSets, NodePortScope, Routing};

    pub(super) fn ruleset() -> Ruleset {
        let forward = |set, masquerade| Route::Forward { set, masquerade };
        let backend = |a: &str| Backend {
            address: a.parse().unwrap(),
            port: 8080,
            weight: 1,
        };
        Ruleset {
            version: crate::ir::VERSION,
            node: Some("node1".into()),
            cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
            local_detector: crate::ir::LocalDetector::Cidrs,
            service_cidrs: vec!["10.96.0.0/16".parse().unwrap()],
            cluster_ips: vec!["10.96.0.1".parse().unwrap()],
            node_addresses: vec!["172.30.0.1".parse().unwrap()],
            nodeport_scope: NodePortScope::LocalIn(vec!["172.30.0.1/32".parse().unwrap()]),
            services: vec![std::sync::Arc::new(Entry {
                family: Family::Ipv4,
                namespace: "default".into(),
                name: "web".into(),
                port_name: "http".into(),
                protocol: Protocol::Tcp,
                frontends: vec![
                    Frontend {
                        kind: FrontendKind::ClusterIp,
                        address: Some("10.96.0.1".parse().unwrap()),
                        port: 80,
                        allowed_sources: vec![],
                        routing: Routing {
                            node: forward(SetKind::Cluster, true),
                            pods: forward(SetKind::Cluster, false),
                            external: forward(SetKind::Cluster, true),
                        },
                    },
                    Frontend {
                        kind: FrontendKind::NodePort,
                        address: None,
                        port: 30080,
                        allowed_sources: vec![],
                        routing: Routing {
                            node: forward(SetKind::Cluster, true),
                            pods: forward(SetKind::Cluster, false),
                            external: forward(SetKind::Local, false),
                        },
                    },
                ],
                backends: BackendSets {
                    cluster: vec![backend("10.244.1.1"), backend("10.244.2.1")],
                    local: vec![backend("10.244.1.1")],
                },
                affinity_timeout_seconds: None,
                health_check_node_port: Some(31000),
                selection: Default::default(),
            })],
        }
    }

    pub(super) fn query(to: &str, port: u16, from: Option<&str>) -> Query {
        Query {
            to: to.parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
            from: from.map(|f| f.parse().unwrap()),
            from_this_node: false,
            arrives_on: None,
        }
    }

    #[test]
    fn sources_are_classified_like_the_rules_do() {
        let rs = ruleset();
        assert_eq!(
            classify(&rs, "172.30.0.1".parse().unwrap()),
            SourceClass::Node
        );
        assert_eq!(
            classify(&rs, "10.244.7.7".parse().unwrap()),
            SourceClass::Pods
        );
        assert_eq!(
            classify(&rs, "192.0.2.1".parse().unwrap()),
            SourceClass::External
        );
    }

    #[test]
    fn a_nodeport_from_outside_goes_to_local_backends_unmasqueraded() {
        let text = explain(&ruleset(), &query("172.30.0.1", 30080, Some("192.0.2.1")));
        assert!(
            text.contains("is the NodePort of Service port `default/web:http`"),
            "{text}"
        );
        assert!(
            text.contains("source kept, sent to one of 1 node-local backend:"),
            "{text}"
        );
        assert!(text.contains("10.244.1.1:8080"), "{text}");
        assert!(!text.contains("10.244.2.1"), "{text}");
    }

    /// Under an interface detector no address tells a pod: a source that
    /// is not the node gets both answers, each saying which interfaces.
    #[test]
    fn an_interface_detector_is_explained_by_interface() {
        let mut rs = ruleset();
        rs.cluster_cidrs.clear();
        rs.local_detector = LocalDetector::InterfacePrefix("cali".into());
        assert_eq!(crate::ir::validate(&rs), Ok(()));
        let text = explain(&rs, &query("172.30.0.1", 30080, Some("10.244.7.7")));
        assert!(
            text.contains("From 10.244.7.7, a pod (arriving on an interface matching cali*): "),
            "{text}"
        );
        assert!(
            text.contains(
                "From 10.244.7.7, outside the cluster (arriving on an interface not matching \
                 cali*): source kept, sent to one of 1 node-local backend:"
            ),
            "{text}"
        );
        let text = explain(&rs, &query("172.30.0.1", 30080, Some("172.30.0.1")));
        assert_eq!(text.matches("From ").count(), 1, "{text}");
    }

    /// What the address cannot tell, the query can: a process on the node
    /// from an unlisted local address, and the interface a connection
    /// arrives on under an interface detector.
    #[test]
    fn the_node_and_the_arrival_interface_decide_the_class() {
        let mut rs = ruleset();
        let mut q = query("10.96.0.1", 80, Some("172.30.1.1"));
        assert_eq!(classes(&rs, &q), vec![SourceClass::External]);
        q.from_this_node = true;
        assert_eq!(classes(&rs, &q), vec![SourceClass::Node]);

        rs.cluster_cidrs.clear();
        rs.local_detector = LocalDetector::InterfacePrefix("cali".into());
        let mut q = query("10.96.0.1", 80, Some("10.244.7.7"));
        assert_eq!(
            classes(&rs, &q),
            vec![SourceClass::Pods, SourceClass::External]
        );
        q.arrives_on = Some("cali7".into());
        assert_eq!(classes(&rs, &q), vec![SourceClass::Pods]);
        q.arrives_on = Some("eth0".into());
        assert_eq!(classes(&rs, &q), vec![SourceClass::External]);
        rs.local_detector = LocalDetector::Interface("cni0".into());
        assert_eq!(classes(&rs, &q), vec![SourceClass::External]);
        q.arrives_on = Some("cni0".into());
        assert_eq!(classes(&rs, &q), vec![SourceClass::Pods]);
    }

    /// A client reaching itself through the Service comes back
    /// masqueraded whatever its class's masquerade says.
    #[test]
    fn a_client_that_is_a_backend_is_told_it_hairpins() {
        let rs = ruleset();
        let text = explain(&rs, &query("10.96.0.1", 80, Some("10.244.1.1")));
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("10.244.1.1:8080")
                    && l.ends_with("50.0 %  (the client itself: hairpin, masqueraded)")),
            "{text}"
        );
        let e = explanation(&rs, &query("10.96.0.1", 80, Some("10.244.1.1")));
        let Verdict::Forwarded { backends, .. } = &e.sources[0].verdict else {
            panic!("{e:#?}");
        };
        assert_eq!(
            backends.iter().map(|b| b.hairpin).collect::<Vec<_>>(),
            vec![true, false]
        );
    }

    #[test]
    fn affinity_is_explained_per_service_port_and_set() {
        let mut rs = ruleset();
        rs.entry_mut(0).affinity_timeout_seconds = Some(600);
        let text = explain(&rs, &query("10.96.0.1", 80, Some("10.244.7.7")));
        assert!(
            text.contains(
                "  Session affinity (ClientIP, 600 s): a client keeps its backend whichever \
                 address of this Service port it uses (ClusterIP 10.96.0.1:80, NodePort 30080); \
                 the cluster-wide and the node-local backends are remembered apart.\n"
            ),
            "{text}"
        );
        rs.entry_mut(0).frontends.pop();
        let text = explain(&rs, &query("10.96.0.1", 80, None));
        assert!(text.contains("(ClusterIP 10.96.0.1:80).\n"), "{text}");
    }

    /// Source-hash selection names the client's backend, the one the slot
    /// table gives the client's slot, and each backend's share of slots.
    #[test]
    fn source_hash_names_the_clients_backend() {
        let mut rs = ruleset();
        rs.entry_mut(0).selection = Selection::SourceHash;
        let from: IpAddr = "10.244.7.7".parse().unwrap();
        let text = explain(&rs, &query("10.96.0.1", 80, Some("10.244.7.7")));
        assert!(text.contains(", by source-address hash:\n"), "{text}");
        let backends = &rs.services[0].backends.cluster;
        let table = selection::slot_table(backends);
        let slot = selection::slot_of(from, 251);
        let chosen = endpoint(&backends[table[slot as usize] as usize]);
        assert!(
            text.contains(&format!(
                "  10.244.7.7 hashes to slot {slot} of 251: always {chosen}"
            )),
            "{text}"
        );
        let without = explain(&rs, &query("10.96.0.1", 80, None));
        assert!(!without.contains("hashes to slot"), "{without}");
    }

    #[test]
    fn every_source_class_is_explained_without_from() {
        let text = explain(&ruleset(), &query("10.96.0.1", 80, None));
        assert_eq!(text.matches("From ").count(), 3, "{text}");
        assert!(text.contains("50.0 %"), "{text}");
    }

    #[test]
    fn unmatched_destinations_say_what_happens() {
        let rs = ruleset();
        assert!(explain(&rs, &query("10.96.0.1", 81, None)).contains("refused"));
        assert!(explain(&rs, &query("10.96.3.3", 80, None)).contains("dropped"));
        assert!(explain(&rs, &query("192.0.2.9", 80, None)).contains("untouched"));
        assert!(explain(&rs, &query("172.30.0.9", 30080, None)).contains("untouched"));
    }
}
