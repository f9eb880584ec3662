//! Which endpoints a connection may reach, probed with real packets:
//! topology hints, the ready / serving-terminating fallback decided
//! separately for the cluster-wide and node-local sets, and
//! loadBalancerSourceRanges as seen from node1 itself and from pods.

use crate::harness::{Backend, From, Pod, Topology, CLIENT};
use crate::manifests::{cluster, cluster_with, NODES};
use crate::{backend_tests, require_kernel};

const SPREAD: usize = 30;

fn svc(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  clusterIP: {ip}
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
"
    )
}

/// An EndpointSlice for `service` whose endpoints are written out
/// literally (`endpoints` is the YAML list under `endpoints:`).
fn raw_slice(service: &str, endpoints: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-x1
  namespace: default
  labels:
    kubernetes.io/service-name: {service}
addressType: IPv4
ports:
- name: http
  protocol: TCP
  port: 8080
endpoints:
{endpoints}"
    )
}

fn hinted(ip: &str, node: &str, zone: Option<&str>) -> String {
    let hints = zone.map_or(String::new(), |z| {
        format!("  hints:\n    forZones:\n    - name: {z}\n")
    });
    format!("- addresses: [{ip}]\n  conditions: {{ready: true}}\n  nodeName: {node}\n{hints}")
}

backend_tests!(topology_hints_for_this_zone);
fn topology_hints_for_this_zone(backend: Backend) {
    require_kernel!("topology_hints_for_this_zone");
    let mut topo = Topology::build_for(
        backend,
        "zones",
        &[
            Pod::new("z-1a", "10.244.1.1").tcp(&[8080]),
            Pod::new("z-2a", "10.244.2.1").tcp(&[8080]),
            Pod::new("z-2b", "10.244.2.2").tcp(&[8080]),
            Pod::new("z-cli", "10.244.1.3"),
        ],
    );
    let nodes = NODES.replacen(
        "  name: node1\n",
        "  name: node1\n  labels:\n    topology.kubernetes.io/zone: zone-a\n",
        1,
    );
    assert_ne!(nodes, NODES, "zone label not added");
    let eps = |third: Option<&str>| {
        hinted("10.244.1.1", "node1", Some("zone-a"))
            + &hinted("10.244.2.1", "node2", Some("zone-a"))
            + &hinted("10.244.2.2", "node2", third)
    };
    let all_b = hinted("10.244.1.1", "node1", Some("zone-b"))
        + &hinted("10.244.2.1", "node2", Some("zone-b"))
        + &hinted("10.244.2.2", "node2", Some("zone-b"));
    topo.load_manifests(&cluster_with(
        &nodes,
        &[
            // Every ready endpoint hinted, two for zone-a: only those.
            &svc("hinted", "10.96.10.1"),
            &raw_slice("hinted", &eps(Some("zone-b"))),
            // One ready endpoint without hints: hints are ignored.
            &svc("partial", "10.96.10.2"),
            &raw_slice("partial", &eps(None)),
            // Every endpoint hinted, none for zone-a: hints are ignored.
            &svc("elsewhere", "10.96.10.3"),
            &raw_slice("elsewhere", &all_b),
        ],
    ));
    for from in [From::Pod("z-cli"), From::Client] {
        topo.tcp(from, "10.96.10.1:80", SPREAD)
            .assert_pods(&["z-1a", "z-2a"]);
        topo.tcp(from, "10.96.10.2:80", SPREAD * 2)
            .assert_pods(&["z-1a", "z-2a", "z-2b"]);
        topo.tcp(from, "10.96.10.3:80", SPREAD * 2)
            .assert_pods(&["z-1a", "z-2a", "z-2b"]);
    }
}

backend_tests!(fallback_to_terminating_is_decided_per_set);
fn fallback_to_terminating_is_decided_per_set(backend: Backend) {
    require_kernel!("fallback_to_terminating_is_decided_per_set");
    let mut topo = Topology::build_for(
        backend,
        "perset",
        &[
            Pod::new("s-term", "10.244.1.1").tcp(&[8080]),
            Pod::new("s-gone", "10.244.1.2").tcp(&[8080]),
            Pod::new("s-unready", "10.244.1.3").tcp(&[8080]),
            Pod::new("s-ready", "10.244.2.1").tcp(&[8080]),
            Pod::new("s-cli", "10.244.1.4"),
        ],
    );
    let eps = "\
- addresses: [10.244.1.1]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node1
- addresses: [10.244.1.2]
  conditions: {ready: false, serving: false, terminating: true}
  nodeName: node1
- addresses: [10.244.1.3]
  conditions: {ready: false}
  nodeName: node1
- addresses: [10.244.2.1]
  conditions: {ready: true}
  nodeName: node2
";
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: split
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.10.10
  externalTrafficPolicy: Local
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
    nodePort: 31010
",
        &raw_slice("split", eps),
    ]));
    // Cluster-wide: a ready endpoint exists (on node2), so the terminating
    // one is not used.
    topo.tcp(From::Client, "10.96.10.10:80", SPREAD)
        .assert_pods(&["s-ready"]);
    // Node-local (external traffic under Local policy): node1 has no ready
    // endpoint, so it falls back to its serving, terminating one; the
    // client's address is preserved.
    topo.tcp(From::Client, "172.30.0.1:31010", SPREAD)
        .assert_pods(&["s-term"])
        .assert_sources_within(&[CLIENT]);
    // A pod short-circuits to the cluster-wide set.
    topo.tcp(From::Pod("s-cli"), "172.30.0.1:31010", SPREAD)
        .assert_pods(&["s-ready"]);
}

backend_tests!(source_ranges_seen_from_node_and_pods);
fn source_ranges_seen_from_node_and_pods(backend: Backend) {
    require_kernel!("source_ranges_seen_from_node_and_pods");
    let mut topo = Topology::build_for(
        backend,
        "lbnode",
        &[
            Pod::new("r-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("r-cli", "10.244.1.2"),
        ],
    );
    let lb = |name: &str, ip: &str, lb_ip: &str, np: u16, range: &str| {
        format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  type: LoadBalancer
  clusterIP: {ip}
  loadBalancerSourceRanges: [{range}]
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
    nodePort: {np}
status:
  loadBalancer:
    ingress:
    - ip: {lb_ip}
"
        )
    };
    let ep = |svc: &str| raw_slice(svc, &hinted("10.244.1.1", "node1", None));
    topo.load_manifests(&cluster(&[
        // node1's own address 172.30.0.1 lies in the range.
        &lb(
            "nodes",
            "10.96.11.1",
            "203.0.113.41",
            31101,
            "172.30.0.0/24",
        ),
        &ep("nodes"),
        // Neither node1 nor the pods nor the client.
        &lb("none", "10.96.11.2", "203.0.113.42", 31102, "192.0.2.0/24"),
        &ep("none"),
        // The pods' range.
        &lb("pods", "10.96.11.3", "203.0.113.43", 31103, "10.244.0.0/16"),
        &ep("pods"),
    ]));
    topo.tcp(From::Node1, "203.0.113.41:80", 3)
        .assert_pods(&["r-a"]);
    topo.tcp(From::Client, "203.0.113.41:80", 1)
        .assert_timeout();
    topo.tcp(From::Node1, "203.0.113.42:80", 1).assert_timeout();
    topo.tcp(From::Pod("r-cli"), "203.0.113.42:80", 1)
        .assert_timeout();
    topo.tcp(From::Pod("r-cli"), "203.0.113.43:80", 3)
        .assert_pods(&["r-a"]);
    topo.tcp(From::Client, "203.0.113.43:80", 1)
        .assert_timeout();
    // NodePorts are not filtered, whoever asks.
    topo.tcp(From::Client, "172.30.0.1:31102", 3)
        .assert_pods(&["r-a"]);
    topo.tcp(From::Pod("r-cli"), "172.30.0.1:31102", 3)
        .assert_pods(&["r-a"]);
}
