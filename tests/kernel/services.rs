//! Service behaviour through `knc compile` output, loaded into node1 and
//! probed with real packets (issue #2).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{From, Pod, Topology, CLIENT, NODE1_LOCAL};
use crate::manifests::{cluster, endpoints, ep, slice};
use crate::require_kernel;

/// Attempts needed to see every one of two equally weighted endpoints
/// (all 30 landing on one has probability 2^-29).
const SPREAD: usize = 30;
/// A refusal must come this fast (a timeout takes a second).
const FAST: Duration = Duration::from_millis(500);

/// A ClusterIP Service `name` on `ip` with one TCP port 80 named `http` to
/// target port 8080.
fn web_service(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  type: ClusterIP
  clusterIP: {ip}
  clusterIPs: [{ip}]
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
"
    )
}

fn http_slice(service: &str, eps: &[crate::manifests::Ep]) -> String {
    slice(service, "abc12", &[("http", "TCP", 8080)], eps)
}

#[test]
fn clusterip_tcp_two_endpoints() {
    require_kernel!("clusterip_tcp_two_endpoints");
    let mut topo = Topology::build(
        "cip",
        &[
            Pod::new("web-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("web-b", "10.244.1.2").tcp(&[8080]),
            Pod::new("cli", "10.244.1.3"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &web_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    // From outside the cluster: both endpoints, masqueraded (an
    // off-cluster source to a ClusterIP when the cluster CIDR is known).
    topo.tcp(From::Client, "10.96.0.10:80", SPREAD)
        .assert_pods(&["web-a", "web-b"])
        .assert_port(8080)
        .assert_sources_within(&NODE1_LOCAL);
    // From a pod: both endpoints, source preserved.
    let cli = topo.pod_ip("cli");
    topo.tcp(From::Pod("cli"), "10.96.0.10:80", SPREAD)
        .assert_pods(&["web-a", "web-b"])
        .assert_sources_within(&[cli]);
    // From node1 itself (the output hook): both endpoints, with a node
    // address as source.
    topo.tcp(From::Node1, "10.96.0.10:80", SPREAD)
        .assert_pods(&["web-a", "web-b"])
        .assert_sources_within(&NODE1_LOCAL);
}

#[test]
fn udp_named_target_port() {
    require_kernel!("udp_named_target_port");
    // The pods also listen on 53, so an untranslated port answers (and
    // fails the port assertion) instead of timing out.
    let mut topo = Topology::build(
        "udpn",
        &[
            Pod::new("dns-a", "10.244.1.1").udp(&[53, 5353]),
            Pod::new("dns-b", "10.244.1.2").udp(&[53, 5353]),
        ],
    );
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: dns
  namespace: default
spec:
  clusterIP: 10.96.0.53
  ports:
  - name: dns
    protocol: UDP
    port: 53
    targetPort: dns
",
        &slice(
            "dns",
            "x1",
            &[("dns", "UDP", 5353)],
            &[ep("10.244.1.1"), ep("10.244.1.2")],
        ),
    ]));
    topo.udp(From::Client, "10.96.0.53:53", SPREAD)
        .assert_pods(&["dns-a", "dns-b"])
        .assert_port(5353);
}

#[test]
fn multi_port_service() {
    require_kernel!("multi_port_service");
    let mut topo = Topology::build(
        "mport",
        &[Pod::new("mp-a", "10.244.1.1").tcp(&[80, 8080, 9090, 9100])],
    );
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: mp
  namespace: default
spec:
  clusterIP: 10.96.0.20
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
  - name: metrics
    protocol: TCP
    port: 9090
    targetPort: metrics
",
        &slice(
            "mp",
            "x1",
            &[("http", "TCP", 8080), ("metrics", "TCP", 9100)],
            &[ep("10.244.1.1")],
        ),
    ]));
    topo.tcp(From::Client, "10.96.0.20:80", 5)
        .assert_pods(&["mp-a"])
        .assert_port(8080);
    topo.tcp(From::Client, "10.96.0.20:9090", 5)
        .assert_pods(&["mp-a"])
        .assert_port(9100);
}

#[test]
fn nodeport_from_external_client_is_masqueraded() {
    require_kernel!("nodeport_from_external_client_is_masqueraded");
    let mut topo = Topology::build("np", &[Pod::new("np-a", "10.244.1.1").tcp(&[8080])]);
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: np
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.0.30
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
    nodePort: 30080
",
        &http_slice("np", &[ep("10.244.1.1")]),
    ]));
    let probes = topo.tcp(From::Client, "172.30.0.1:30080", 5);
    probes
        .assert_pods(&["np-a"])
        .assert_port(8080)
        .assert_sources_within(&NODE1_LOCAL);
    assert!(!probes.sources().contains(&CLIENT));
    // NodePorts live on the node's primary IP only: node1's address on the
    // client link is not a Kubernetes node address, so there the port is
    // just a closed local port (reset by node1's own stack).
    topo.tcp(From::Client, "172.30.1.1:30080", 2)
        .assert_refused_within(FAST);
}

#[test]
fn external_ip() {
    require_kernel!("external_ip");
    let mut topo = Topology::build("eip", &[Pod::new("eip-a", "10.244.1.1").tcp(&[8080])]);
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: eip
  namespace: default
spec:
  clusterIP: 10.96.0.40
  externalIPs: [198.51.100.10]
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
",
        &http_slice("eip", &[ep("10.244.1.1")]),
    ]));
    topo.tcp(From::Client, "198.51.100.10:80", 5)
        .assert_pods(&["eip-a"])
        .assert_port(8080)
        .assert_sources_within(&NODE1_LOCAL);
}

#[test]
fn load_balancer_ingress_ip() {
    require_kernel!("load_balancer_ingress_ip");
    let mut topo = Topology::build("lb", &[Pod::new("lb-a", "10.244.1.1").tcp(&[8080])]);
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: lb
  namespace: default
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
    nodePort: 30050
status:
  loadBalancer:
    ingress:
    - ip: 203.0.113.10
",
        &http_slice("lb", &[ep("10.244.1.1")]),
    ]));
    topo.tcp(From::Client, "203.0.113.10:80", 5)
        .assert_pods(&["lb-a"])
        .assert_port(8080)
        .assert_sources_within(&NODE1_LOCAL);
}

#[test]
fn no_endpoints_is_refused_fast() {
    require_kernel!("no_endpoints_is_refused_fast");
    let mut topo = Topology::build(
        "noep",
        &[
            Pod::new("ne-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("ne-cli", "10.244.1.2"),
        ],
    );
    // Without rules the ClusterIP goes to node1's dead-end default route:
    // a timeout, so a refusal below can only come from the ruleset.
    topo.tcp(From::Client, "10.96.0.60:80", 1).assert_timeout();
    topo.load_manifests(&cluster(&[
        "apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
spec:
  clusterIP: 10.96.0.60
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
  - name: dns
    protocol: UDP
    port: 53
    targetPort: 5353
",
        &slice(
            "empty",
            "x1",
            &[("http", "TCP", 8080), ("dns", "UDP", 5353)],
            &[],
        ),
        &web_service("busy", "10.96.0.61"),
        &http_slice("busy", &[ep("10.244.1.1")]),
    ]));
    topo.tcp(From::Client, "10.96.0.60:80", 3)
        .assert_refused_within(FAST);
    topo.tcp(From::Pod("ne-cli"), "10.96.0.60:80", 3)
        .assert_refused_within(FAST);
    topo.tcp(From::Node1, "10.96.0.60:80", 3)
        .assert_refused_within(FAST);
    topo.udp(From::Client, "10.96.0.60:53", 3)
        .assert_refused_within(FAST);
    // The ruleset is live: the Service next door answers, and a port it
    // does not serve on its active ClusterIP is rejected.
    topo.tcp(From::Client, "10.96.0.61:80", 3)
        .assert_pods(&["ne-a"]);
    topo.tcp(From::Client, "10.96.0.61:81", 3)
        .assert_refused_within(FAST);
}

#[test]
fn not_ready_endpoint_never_answers() {
    require_kernel!("not_ready_endpoint_never_answers");
    let mut topo = Topology::build(
        "nrdy",
        &[
            Pod::new("nr-up", "10.244.1.1").tcp(&[8080]),
            Pod::new("nr-down", "10.244.1.2").tcp(&[8080]),
        ],
    );
    // The not-ready pod's server is up: traffic sent to it would answer.
    topo.tcp(From::Client, "10.244.1.2:8080", 1)
        .assert_pods(&["nr-down"]);
    topo.load_manifests(&cluster(&[
        &web_service("nr", "10.96.0.70"),
        &http_slice("nr", &[ep("10.244.1.1"), ep("10.244.1.2").not_ready()]),
    ]));
    topo.tcp(From::Client, "10.96.0.70:80", SPREAD)
        .assert_pods(&["nr-up"]);
}

#[test]
fn hairpin_lands_on_itself_masqueraded() {
    require_kernel!("hairpin_lands_on_itself_masqueraded");
    let mut topo = Topology::build("hair", &[Pod::new("hp-a", "10.244.1.1").tcp(&[8080])]);
    topo.load_manifests(&cluster(&[
        &web_service("hp", "10.96.0.80"),
        &http_slice("hp", &[ep("10.244.1.1")]),
    ]));
    let probes = topo.tcp(From::Pod("hp-a"), "10.96.0.80:80", 5);
    probes
        .assert_pods(&["hp-a"])
        .assert_sources_within(&NODE1_LOCAL);
    assert!(!probes.sources().contains(&topo.pod_ip("hp-a")));
}

#[test]
fn legacy_endpoints_without_slices() {
    require_kernel!("legacy_endpoints_without_slices");
    let mut topo = Topology::build(
        "legacy",
        &[
            Pod::new("leg-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("leg-b", "10.244.1.2").tcp(&[8080]),
        ],
    );
    topo.load_manifests(&cluster(&[
        &web_service("leg", "10.96.0.90"),
        &endpoints(
            "leg",
            &[("http", "TCP", 8080)],
            &[ep("10.244.1.1"), ep("10.244.1.2")],
        ),
    ]));
    topo.tcp(From::Client, "10.96.0.90:80", SPREAD)
        .assert_pods(&["leg-a", "leg-b"])
        .assert_port(8080);
}

#[test]
fn endpoint_on_other_node() {
    require_kernel!("endpoint_on_other_node");
    let mut topo = Topology::build(
        "xnode",
        &[
            Pod::new("xn-r", "10.244.2.1").tcp(&[8080]),
            Pod::new("xn-cli", "10.244.1.1"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &web_service("xn", "10.96.0.100"),
        &http_slice("xn", &[ep("10.244.2.1")]),
    ]));
    topo.tcp(From::Client, "10.96.0.100:80", 5)
        .assert_pods(&["xn-r"])
        .assert_sources_within(&NODE1_LOCAL);
    let cli = topo.pod_ip("xn-cli");
    topo.tcp(From::Pod("xn-cli"), "10.96.0.100:80", 5)
        .assert_pods(&["xn-r"])
        .assert_sources_within(&[cli]);
}

fn tables(topo: &Topology) -> Vec<String> {
    let list = topo.nft(&["list", "tables"]);
    let tables: Vec<String> = list.lines().map(str::to_owned).collect();
    let unique: BTreeSet<&String> = tables.iter().collect();
    assert_eq!(unique.len(), tables.len(), "duplicate tables:\n{list}");
    tables
}

#[test]
fn reload_replaces_services_and_endpoints() {
    require_kernel!("reload_replaces_services_and_endpoints");
    let mut topo = Topology::build(
        "reload",
        &[
            Pod::new("rl-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("rl-b", "10.244.1.2").tcp(&[8080]),
            Pod::new("rl-c", "10.244.1.3").tcp(&[8080]),
            Pod::new("rl-r", "10.244.2.1").tcp(&[8080]),
        ],
    );
    topo.load_manifests(&cluster(&[
        &web_service("gone", "10.96.1.1"),
        &http_slice("gone", &[ep("10.244.1.1")]),
        &web_service("moving", "10.96.1.2"),
        &http_slice("moving", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    topo.tcp(From::Client, "10.96.1.1:80", 3)
        .assert_pods(&["rl-a"]);
    topo.tcp(From::Client, "10.96.1.2:80", SPREAD)
        .assert_pods(&["rl-a", "rl-b"]);
    let before = tables(&topo);

    topo.load_manifests(&cluster(&[
        &web_service("moving", "10.96.1.2"),
        &http_slice("moving", &[ep("10.244.1.3"), ep("10.244.2.1")]),
    ]));
    // An address inside the service CIDR that is no longer a ClusterIP is
    // dropped.
    topo.tcp(From::Client, "10.96.1.1:80", 2).assert_timeout();
    topo.tcp(From::Client, "10.96.1.2:80", SPREAD)
        .assert_pods(&["rl-c", "rl-r"]);
    assert_eq!(tables(&topo), before, "reload changed the set of tables");
}

#[test]
fn loading_twice_is_idempotent() {
    require_kernel!("loading_twice_is_idempotent");
    let mut topo = Topology::build(
        "twice",
        &[
            Pod::new("tw-a", "10.244.1.1").tcp(&[8080]),
            Pod::new("tw-b", "10.244.2.1").tcp(&[8080]),
        ],
    );
    // Somebody else's table: knc must leave it alone.
    topo.load_nft("table ip other {\n  chain keep {\n    type filter hook input priority 0; policy accept;\n  }\n}\n");
    let text = topo.compile(&cluster(&[
        &web_service("tw", "10.96.0.110"),
        &http_slice("tw", &[ep("10.244.1.1"), ep("10.244.2.1")]),
        "apiVersion: v1
kind: Service
metadata:
  name: tw-np
  namespace: default
spec:
  type: NodePort
  clusterIP: 10.96.0.111
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: 8080
    nodePort: 30111
",
        &http_slice("tw-np", &[ep("10.244.1.1")]),
    ]));
    topo.load_nft(&text);
    let once = topo.nft(&["list", "ruleset"]);
    topo.load_nft(&text);
    let twice = topo.nft(&["list", "ruleset"]);
    assert_eq!(
        once, twice,
        "ruleset changed by loading the same file again"
    );
    assert!(
        tables(&topo).iter().any(|t| t == "table ip other"),
        "knc's ruleset removed a table it does not own:\n{twice}"
    );
    topo.tcp(From::Client, "10.96.0.110:80", SPREAD)
        .assert_pods(&["tw-a", "tw-b"]);
    topo.tcp(From::Client, "172.30.0.1:30111", 3)
        .assert_pods(&["tw-a"]);
}
