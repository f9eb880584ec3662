//! The traffic-policy matrix, in the spirit of kube-proxy's
//! `TestInternalExternalMasquerade` (pkg/proxy/nftables/proxier_test.go):
//! every source class × every destination kind × three Service variants,
//! with one endpoint on node1 and one on node2, probed with real packets.
//!
//! Each row says which endpoints may answer (`Both`, or only node1's
//! `Local` one) and what source the endpoint must see: the prober's `Own`
//! address, or a `Masq`ueraded one (a node1 address that is not the
//! prober's own). node1 probes from its non-Kubernetes address
//! [`NODE1_ALT`] (still a local address, so still the `node` class): the
//! masquerade rewrites it to [`NODE1`], so masquerading is visible in node
//! rows too. The table is kube-proxy's "base" case (a cluster CIDR known,
//! no masquerade-all); its comments mark where the result is not obvious.
//! [`MASQUERADE_ALL`] is the `externalTrafficPolicy: Local` variant again
//! under `--masquerade-all`, which in kube-proxy masquerades traffic to the
//! ClusterIP only.
//!
//! One topology per Service variant and back end (the tests run in
//! parallel), nine rows each.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::harness::{Backend, From, Pod, Topology, CLIENT, NODE1, NODE1_ALT, NODE1_LOCAL, SPREAD};
use crate::manifests::{cluster, ep, http_slice, ServiceYaml};
use crate::probe::Outcome;
use crate::{backend_tests, require_kernel};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Svc {
    /// Cluster traffic policies.
    Plain,
    /// `externalTrafficPolicy: Local`.
    EtpLocal,
    /// `internalTrafficPolicy: Local`.
    ItpLocal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    /// A pod on node1 (inside the cluster CIDR).
    Pod,
    /// node1 itself (the output hook).
    Node,
    /// The external client behind node1.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    ClusterIp,
    NodePort,
    LoadBalancer,
}

/// Which endpoints may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// node1's and node2's.
    Both,
    /// node1's only.
    Local,
}

/// What source the endpoint sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The prober's own address.
    Own,
    /// A node1 address other than the prober's own.
    Masq,
}

use Answer::*;
use Dst::*;
use Seen::*;
use Src::*;
use Svc::*;

/// (Service, source, destination, who answers, what source they see).
#[rustfmt::skip]
const MATRIX: &[(Svc, Src, Dst, Answer, Seen)] = &[
    (Plain,    Pod,      ClusterIp,    Both,  Own),
    // External destinations under Cluster policy are masqueraded whatever
    // the source, pods included.
    (Plain,    Pod,      NodePort,     Both,  Masq),
    (Plain,    Pod,      LoadBalancer, Both,  Masq),
    // The node is not in the cluster CIDR: masqueraded to a ClusterIP.
    (Plain,    Node,     ClusterIp,    Both,  Masq),
    (Plain,    Node,     NodePort,     Both,  Masq),
    (Plain,    Node,     LoadBalancer, Both,  Masq),
    // Off-cluster source to a ClusterIP: masqueraded.
    (Plain,    External, ClusterIp,    Both,  Masq),
    (Plain,    External, NodePort,     Both,  Masq),
    (Plain,    External, LoadBalancer, Both,  Masq),

    // externalTrafficPolicy does not apply to ClusterIPs.
    (EtpLocal, Pod,      ClusterIp,    Both,  Own),
    // Pods short-circuit to the cluster-wide set, as if the packet had
    // gone out to the load balancer and come back, but unmasqueraded.
    (EtpLocal, Pod,      NodePort,     Both,  Own),
    (EtpLocal, Pod,      LoadBalancer, Both,  Own),
    (EtpLocal, Node,     ClusterIp,    Both,  Masq),
    // The node short-circuits too, masqueraded (its source could be the
    // external address itself).
    (EtpLocal, Node,     NodePort,     Both,  Masq),
    (EtpLocal, Node,     LoadBalancer, Both,  Masq),
    (EtpLocal, External, ClusterIp,    Both,  Masq),
    // The point of the policy: node-local endpoints, client preserved.
    (EtpLocal, External, NodePort,     Local, Own),
    (EtpLocal, External, LoadBalancer, Local, Own),

    // internalTrafficPolicy picks node-local endpoints for ClusterIPs only
    // and does not change masquerading.
    (ItpLocal, Pod,      ClusterIp,    Local, Own),
    (ItpLocal, Pod,      NodePort,     Both,  Masq),
    (ItpLocal, Pod,      LoadBalancer, Both,  Masq),
    (ItpLocal, Node,     ClusterIp,    Local, Masq),
    (ItpLocal, Node,     NodePort,     Both,  Masq),
    (ItpLocal, Node,     LoadBalancer, Both,  Masq),
    (ItpLocal, External, ClusterIp,    Local, Masq),
    (ItpLocal, External, NodePort,     Both,  Masq),
    (ItpLocal, External, LoadBalancer, Both,  Masq),
];

/// The `EtpLocal` rows under `--masquerade-all`. kube-proxy's
/// masqueradeAll is one rule matching the ClusterIP (and port) in the
/// Service's internal chain (pkg/proxy/nftables/proxier.go): every source
/// reaching the ClusterIP is masqueraded, pods too; traffic to the NodePort
/// and the LoadBalancer IP keeps the masquerade its traffic policy gives.
#[rustfmt::skip]
const MASQUERADE_ALL: &[(Svc, Src, Dst, Answer, Seen)] = &[
    // The one change: pods are masqueraded to a ClusterIP.
    (EtpLocal, Pod,      ClusterIp,    Both,  Masq),
    // Not to external destinations: the short-circuit stays unmasqueraded.
    (EtpLocal, Pod,      NodePort,     Both,  Own),
    (EtpLocal, Pod,      LoadBalancer, Both,  Own),
    (EtpLocal, Node,     ClusterIp,    Both,  Masq),
    (EtpLocal, Node,     NodePort,     Both,  Masq),
    (EtpLocal, Node,     LoadBalancer, Both,  Masq),
    (EtpLocal, External, ClusterIp,    Both,  Masq),
    // externalTrafficPolicy: Local keeps the client's address.
    (EtpLocal, External, NodePort,     Local, Own),
    (EtpLocal, External, LoadBalancer, Local, Own),
];

/// Addresses of each variant's Service: (ClusterIP, NodePort, LB IP).
fn addresses(svc: Svc) -> (&'static str, u16, &'static str) {
    match svc {
        Plain => ("10.96.9.1", 30901, "203.0.113.91"),
        EtpLocal => ("10.96.9.2", 30902, "203.0.113.92"),
        ItpLocal => ("10.96.9.3", 30903, "203.0.113.93"),
    }
}

fn service(svc: Svc) -> String {
    let (cluster_ip, node_port, lb_ip) = addresses(svc);
    let policy = match svc {
        Plain => "",
        EtpLocal => "  externalTrafficPolicy: Local\n",
        ItpLocal => "  internalTrafficPolicy: Local\n",
    };
    ServiceYaml::cluster_ip("mx", cluster_ip)
        .extra(policy)
        .http()
        .node_port(node_port)
        .load_balancer(lb_ip)
        .yaml()
}

/// Probes the rows of `table` for `svc`, with the Service compiled with
/// the `knc compile` settings `flags`.
fn run(
    backend: Backend,
    svc: Svc,
    id: &str,
    table: &[(Svc, Src, Dst, Answer, Seen)],
    flags: &[&str],
) {
    let rows: Vec<_> = table.iter().filter(|r| r.0 == svc).collect();
    assert_eq!(rows.len(), 9, "every source × destination, once");
    let mut topo = Topology::build_for(
        backend,
        id,
        &[
            Pod::web("mx-1", "10.244.1.1"),
            Pod::web("mx-2", "10.244.2.1"),
            Pod::new("mx-cli", "10.244.1.2"),
        ],
    );
    topo.load_manifests_flags(
        &cluster(&[
            &service(svc),
            &http_slice("mx", &[ep("10.244.1.1"), ep("10.244.2.1")]),
        ]),
        flags,
    );
    let (cluster_ip, node_port, lb_ip) = addresses(svc);
    let mut failures = Vec::new();
    for &&(_, src, dst, answer, seen) in &rows {
        let target = match dst {
            ClusterIp => format!("{cluster_ip}:80"),
            NodePort => format!("{NODE1}:{node_port}"),
            LoadBalancer => format!("{lb_ip}:80"),
        };
        let (own, probes): (IpAddr, _) = match src {
            Pod => (
                topo.pod_ip("mx-cli"),
                topo.tcp(From::Pod("mx-cli"), &target, SPREAD),
            ),
            Node => (
                NODE1_ALT,
                topo.tcp_from(From::Node1, NODE1_ALT, &target, SPREAD),
            ),
            External => (CLIENT, topo.tcp(From::Client, &target, SPREAD)),
        };
        let want_pods: BTreeSet<String> = match answer {
            Both => ["mx-1", "mx-2"].map(String::from).into(),
            Local => ["mx-1"].map(String::from).into(),
        };
        let all_answered = probes
            .attempts
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Answered { .. }));
        let sources = probes.sources();
        let sources_ok = !sources.is_empty()
            && sources.iter().all(|s| match seen {
                Own => *s == own,
                Masq => *s != own && NODE1_LOCAL.contains(s),
            });
        if !all_answered || probes.pods() != want_pods || !sources_ok {
            failures.push(format!(
                "{backend:?} {svc:?} {flags:?} {src:?} -> {dst:?}: want {answer:?} {want_pods:?} seeing {seen:?} \
                 (own {own}); got pods {:?} sources {sources:?}\n{probes:?}",
                probes.pods()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} matrix rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

backend_tests!(matrix_plain);
fn matrix_plain(backend: Backend) {
    require_kernel!("matrix_plain");
    run(backend, Plain, "mxpl", MATRIX, &[]);
}

backend_tests!(matrix_external_policy_local);
fn matrix_external_policy_local(backend: Backend) {
    require_kernel!("matrix_external_policy_local");
    run(backend, EtpLocal, "mxetp", MATRIX, &[]);
}

backend_tests!(matrix_internal_policy_local);
fn matrix_internal_policy_local(backend: Backend) {
    require_kernel!("matrix_internal_policy_local");
    run(backend, ItpLocal, "mxitp", MATRIX, &[]);
}

backend_tests!(matrix_masquerade_all_external_policy_local);
fn matrix_masquerade_all_external_policy_local(backend: Backend) {
    require_kernel!("matrix_masquerade_all_external_policy_local");
    run(
        backend,
        EtpLocal,
        "mxma",
        MASQUERADE_ALL,
        &["--masquerade-all"],
    );
}

/// The table itself is not vacuous: it holds both kinds of source and
/// both kinds of answer, for pods, the node and the external client.
#[test]
fn matrix_table_covers_both_outcomes() {
    for src in [Pod, Node, External] {
        let seen: BTreeSet<_> = MATRIX
            .iter()
            .filter(|r| r.1 == src && r.0 != Plain)
            .map(|r| format!("{:?}", r.4))
            .collect();
        let answers: BTreeSet<_> = MATRIX
            .iter()
            .filter(|r| r.1 == src)
            .map(|r| format!("{:?}", r.3))
            .collect();
        assert_eq!(answers.len(), 2, "{src:?} rows all answer alike");
        if src != Node {
            assert_eq!(seen.len(), 2, "{src:?} rows all see the same source");
        }
    }
    assert_eq!(MATRIX.len(), 27);
}

/// `detectLocalMode: NodeCIDR` (kube-proxy's detector by the node's own
/// podCIDRs, `cmd/kube-proxy/app/server_linux.go` `getLocalDetectors`):
/// a pod on node2 (10.244.2.0/24, not node1's podCIDR) is an external
/// client of node1. Reaching node1's `externalTrafficPolicy: Local`
/// NodePort it gets only node1's endpoint, with its own address kept, and
/// reaching the ClusterIP it is masqueraded, as an off-cluster source is.
/// Under `ClusterCIDR` (the default) the same pod is the `pods` class:
/// the NodePort short-circuits to both endpoints, and the ClusterIP keeps
/// its address. A pod on node1 is a pod under both modes. The "node2"
/// endpoint lives behind node1 (listed with `nodeName: node2`), so that
/// replies to the node2 client pass node1's connection tracking.
fn detect_local(backend: Backend, id: &str, flags: &[&str], node_cidr: bool) {
    let (topo, cluster_ip, node_port) = detect_local_topology(backend, id, flags);
    let (both, local) = detect_local_pods();
    let rows = pod_rows(&cluster_ip, node_port, &both, &local, node_cidr);
    assert_detect_rows(&topo, backend, flags, &rows);
}

/// The rows of the two pods: mx-cli on node1 is always a pod; mx-cli2 on
/// node2 is one unless `node2_external` (then it gets only node1's
/// endpoint on the NodePort and is masqueraded to the ClusterIP).
fn pod_rows<'a>(
    cluster_ip: &str,
    node_port: u16,
    both: &'a BTreeSet<String>,
    local: &'a BTreeSet<String>,
    node2_external: bool,
) -> Vec<(From<'static>, String, &'a BTreeSet<String>, bool)> {
    vec![
        (
            From::Pod("mx-cli"),
            format!("{NODE1}:{node_port}"),
            both,
            true,
        ),
        (From::Pod("mx-cli"), format!("{cluster_ip}:80"), both, true),
        (
            From::Pod("mx-cli2"),
            format!("{NODE1}:{node_port}"),
            if node2_external { local } else { both },
            true,
        ),
        (
            From::Pod("mx-cli2"),
            format!("{cluster_ip}:80"),
            both,
            !node2_external,
        ),
    ]
}

/// The detectLocalMode topology: an ETP Local Service with one endpoint
/// on node1 (mx-1) and one listed on node2 but living behind node1 (mx-3),
/// clients mx-cli on node1 and mx-cli2 on node2; returns the ClusterIP and
/// NodePort.
fn detect_local_topology(backend: Backend, id: &str, flags: &[&str]) -> (Topology, String, u16) {
    let mut topo = Topology::build_for(
        backend,
        id,
        &[
            Pod::web("mx-1", "10.244.1.1"),
            Pod::web("mx-3", "10.244.1.3"),
            Pod::new("mx-cli", "10.244.1.2"),
            Pod::new("mx-cli2", "10.244.2.2"),
        ],
    );
    topo.load_manifests_flags(
        &cluster(&[
            &service(EtpLocal),
            &http_slice("mx", &[ep("10.244.1.1"), ep("10.244.1.3").on_node("node2")]),
        ]),
        flags,
    );
    let (cluster_ip, node_port, _) = addresses(EtpLocal);
    (topo, cluster_ip.to_string(), node_port)
}

/// Both endpoints, and node1's only.
fn detect_local_pods() -> (BTreeSet<String>, BTreeSet<String>) {
    (
        ["mx-1", "mx-3"].map(String::from).into(),
        ["mx-1"].map(String::from).into(),
    )
}

/// Every row: (from, target, who must answer, whether the source address
/// is kept rather than masqueraded to node1's).
fn assert_detect_rows(
    topo: &Topology,
    backend: Backend,
    flags: &[&str],
    rows: &[(From<'_>, String, &BTreeSet<String>, bool)],
) {
    let mut failures = Vec::new();
    for (from, target, want_pods, keeps_source) in rows {
        let (own, label) = match from {
            From::Pod(name) => (topo.pod_ip(name), name.to_string()),
            _ => (CLIENT, "client".to_string()),
        };
        let probes = topo.tcp(*from, target, SPREAD);
        let answered = probes
            .attempts
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Answered { .. }));
        let sources = probes.sources();
        let sources_ok = !sources.is_empty()
            && sources.iter().all(|s| {
                if *keeps_source {
                    *s == own
                } else {
                    *s != own && NODE1_LOCAL.contains(s)
                }
            });
        if !answered || &probes.pods() != *want_pods || !sources_ok {
            failures.push(format!(
                "{backend:?} {flags:?} {label} -> {target}: want {want_pods:?} keeping source \
                 {keeps_source}; got pods {:?} sources {sources:?}\n{probes:?}",
                probes.pods()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

backend_tests!(detect_local_node_cidr);
fn detect_local_node_cidr(backend: Backend) {
    require_kernel!("detect_local_node_cidr");
    detect_local(backend, "dlnc", &["--detect-local-mode", "NodeCIDR"], true);
}

backend_tests!(detect_local_cluster_cidr);
fn detect_local_cluster_cidr(backend: Backend) {
    require_kernel!("detect_local_cluster_cidr");
    detect_local(backend, "dlcc", &[], false);
}

/// `detectLocalMode: InterfaceNamePrefix` (kube-proxy's detector by input
/// interface, `pkg/proxy/util/localdetector.go`): packets arriving on an
/// interface named `cali*` (the node-side veths of node1's pods) are the
/// pods class; the external client arrives on `cl` and is external, and so
/// is a pod on node2 (10.244.2.2, inside the cluster CIDR the harness
/// passes), which arrives on `n2`: under a CIDR detector it would be a pod,
/// so its rows hold only when the interface decides. A pod on node1
/// reaching node1's `externalTrafficPolicy: Local` NodePort is
/// short-circuited to every endpoint, source kept, and reaches the
/// ClusterIP unmasqueraded; the client and the node2 pod get only node1's
/// endpoint on the NodePort, source kept, and are masqueraded to the
/// ClusterIP.
fn detect_local_interface(backend: Backend, id: &str, flags: &[&str]) {
    let (topo, cluster_ip, node_port) = detect_local_topology(backend, id, flags);
    let (both, local) = detect_local_pods();
    let mut rows = pod_rows(&cluster_ip, node_port, &both, &local, true);
    rows.push((From::Client, format!("{NODE1}:{node_port}"), &local, true));
    rows.push((From::Client, format!("{cluster_ip}:80"), &both, false));
    assert_detect_rows(&topo, backend, flags, &rows);
}

backend_tests!(detect_local_interface_prefix);
fn detect_local_interface_prefix(backend: Backend) {
    require_kernel!("detect_local_interface_prefix");
    detect_local_interface(
        backend,
        "dlip",
        &[
            "--detect-local-mode",
            "InterfaceNamePrefix",
            "--pod-interface-name-prefix",
            "cali",
        ],
    );
}

backend_tests!(detect_local_bridge_interface);
/// `detectLocalMode: BridgeInterface` with the one interface `cali2`, the
/// node-side veth of the client pod mx-cli (10.244.1.2): the same rows as
/// under `InterfaceNamePrefix`, mx-cli a pod by that interface alone.
fn detect_local_bridge_interface(backend: Backend) {
    require_kernel!("detect_local_bridge_interface");
    detect_local_interface(
        backend,
        "dlbi",
        &[
            "--detect-local-mode",
            "BridgeInterface",
            "--pod-bridge-interface",
            "cali2",
        ],
    );
}
