//! IPv6 and dual stack through `knc compile` output, in the dual-stack
//! topology ([`Topology::build_dual_for`]: the IPv4 plan mirrored in
//! `fd00:…`, see the harness doc). With the iptables back end node1 gets
//! both the `--format iptables` and the `--format ip6tables` text.

use crate::harness::{
    Backend, From, Pod, Topology, CLIENT, CLIENT6, FAST, NODE1_LOCAL, NODE1_LOCAL6, SPREAD,
};
use crate::manifests::{cluster_dual, ep, http_slice6, slice, slice6, ServiceYaml, HTTP};
use crate::{backend_tests, require_kernel};

/// A single-stack IPv6 Service `name` on ClusterIP `ip`, port 80 → 8080,
/// with an optional NodePort.
fn svc6(name: &str, ip: &str, node_port: Option<u16>) -> String {
    let svc = ServiceYaml::cluster_ip(name, ip).ipv6().http();
    match node_port {
        Some(p) => svc.node_port(p),
        None => svc,
    }
    .yaml()
}

backend_tests!(ipv6_clusterip_tcp_two_endpoints);
fn ipv6_clusterip_tcp_two_endpoints(backend: Backend) {
    require_kernel!("ipv6_clusterip_tcp_two_endpoints");
    let mut topo = Topology::build_dual_for(
        backend,
        "v6cip",
        &[
            Pod::web("w6-a", "10.244.1.1"),
            Pod::web("w6-b", "10.244.2.1"),
            Pod::new("w6-cli", "10.244.1.3"),
        ],
    );
    topo.load_manifests(&cluster_dual(&[
        &svc6("web6", "fd00:10:96::10", None),
        &http_slice6("web6", &[ep("fd00:10:244:1::1"), ep("fd00:10:244:2::1")]),
    ]));
    // Off-cluster client: both endpoints, masqueraded to a node1 address.
    topo.assert_client_masqueraded(
        "[fd00:10:96::10]:80",
        SPREAD,
        &["w6-a", "w6-b"],
        &NODE1_LOCAL6,
    );
    // A pod: both endpoints, its own IPv6 address preserved.
    let cli = topo.pod_ip6("w6-cli");
    topo.tcp(From::Pod("w6-cli"), "[fd00:10:96::10]:80", SPREAD)
        .assert_pods(&["w6-a", "w6-b"])
        .assert_sources_within(&[cli]);
    // node1 itself (output hook).
    topo.tcp(From::Node1, "[fd00:10:96::10]:80", SPREAD)
        .assert_pods(&["w6-a", "w6-b"])
        .assert_sources_within(&NODE1_LOCAL6);
}

backend_tests!(ipv6_nodeport_from_client_is_masqueraded);
fn ipv6_nodeport_from_client_is_masqueraded(backend: Backend) {
    require_kernel!("ipv6_nodeport_from_client_is_masqueraded");
    let mut topo = Topology::build_dual_for(
        backend,
        "v6np",
        &[
            Pod::web("n6-a", "10.244.1.1"),
            Pod::web("n6-r", "10.244.2.1"),
        ],
    );
    topo.load_manifests(&cluster_dual(&[
        &svc6("np6", "fd00:10:96::30", Some(30630)),
        &http_slice6("np6", &[ep("fd00:10:244:1::1"), ep("fd00:10:244:2::1")]),
    ]));
    topo.assert_client_masqueraded(
        "[fd00:172:30::1]:30630",
        SPREAD,
        &["n6-a", "n6-r"],
        &NODE1_LOCAL6,
    );
    // A single-stack IPv6 Service has no IPv4 NodePort: the IPv4 node
    // address on the same port is not translated, and node1 has no socket
    // there, so it refuses.
    topo.tcp(From::Client, "172.30.0.1:30630", 1)
        .assert_refused_within(FAST);
}

backend_tests!(ipv6_no_endpoints_is_refused_and_unallocated_dropped);
fn ipv6_no_endpoints_is_refused_and_unallocated_dropped(backend: Backend) {
    require_kernel!("ipv6_no_endpoints_is_refused_and_unallocated_dropped");
    let mut topo = Topology::build_dual_for(backend, "v6none", &[Pod::new("e6-cli", "10.244.1.1")]);
    topo.load_manifests(&cluster_dual(&[
        &svc6("empty6", "fd00:10:96::50", None),
        &http_slice6("empty6", &[]),
    ]));
    topo.assert_tcp_refused(
        &[From::Client, From::Pod("e6-cli")],
        "[fd00:10:96::50]:80",
        3,
    );
    // A port the ClusterIP does not serve: rejected too.
    topo.tcp(From::Client, "[fd00:10:96::50]:81", 1)
        .assert_refused_within(FAST);
    // An unallocated address in the IPv6 service CIDR: dropped.
    topo.tcp(From::Client, "[fd00:10:96::51]:80", 1)
        .assert_timeout();
}

backend_tests!(dual_stack_service_each_family_reaches_its_own_endpoints);
fn dual_stack_service_each_family_reaches_its_own_endpoints(backend: Backend) {
    require_kernel!("dual_stack_service_each_family_reaches_its_own_endpoints");
    // The IPv4 slice names pods d-4a and d-4b, the IPv6 slice pods d-6a and
    // d-6b (every pod has both addresses and listens on both), so an
    // answer says which family's endpoints the connection went to.
    let mut topo = Topology::build_dual_for(
        backend,
        "dual",
        &[
            Pod::web("d-4a", "10.244.1.1"),
            Pod::web("d-4b", "10.244.2.1"),
            Pod::web("d-6a", "10.244.1.2"),
            Pod::web("d-6b", "10.244.2.2"),
            Pod::new("d-cli", "10.244.1.3"),
        ],
    );
    topo.load_manifests(&cluster_dual(&[
        &ServiceYaml::cluster_ip("dual", "10.96.8.1")
            .dual_stack("fd00:10:96::8:1")
            .http()
            .node_port(30801)
            .yaml(),
        &slice("dual", "v4", HTTP, &[ep("10.244.1.1"), ep("10.244.2.1")]),
        &slice6(
            "dual",
            "v6",
            HTTP,
            &[ep("fd00:10:244:1::2"), ep("fd00:10:244:2::2")],
        ),
    ]));
    let (cli4, cli6) = (topo.pod_ip("d-cli"), topo.pod_ip6("d-cli"));
    // ClusterIPs from a pod: each family's own endpoints, the pod's own
    // address of that family seen.
    topo.tcp(From::Pod("d-cli"), "10.96.8.1:80", SPREAD)
        .assert_pods(&["d-4a", "d-4b"])
        .assert_sources_within(&[cli4]);
    topo.tcp(From::Pod("d-cli"), "[fd00:10:96::8:1]:80", SPREAD)
        .assert_pods(&["d-6a", "d-6b"])
        .assert_sources_within(&[cli6]);
    // NodePorts from the client, on node1's address of each family:
    // masqueraded to a node1 address of that family.
    topo.tcp(From::Client, "172.30.0.1:30801", SPREAD)
        .assert_pods(&["d-4a", "d-4b"])
        .assert_sources_within(&NODE1_LOCAL);
    topo.tcp(From::Client, "[fd00:172:30::1]:30801", SPREAD)
        .assert_pods(&["d-6a", "d-6b"])
        .assert_sources_within(&NODE1_LOCAL6);
    // The topology itself routes both families without knc: the client
    // reaches a pod directly with its own address.
    topo.tcp(From::Client, "[fd00:10:244:1::2]:8080", 1)
        .assert_pods(&["d-6a"])
        .assert_sources_within(&[CLIENT6]);
    topo.tcp(From::Client, "10.244.1.2:8080", 1)
        .assert_pods(&["d-6a"])
        .assert_sources_within(&[CLIENT]);
}

backend_tests!(ipv6_hairpin_lands_on_itself_masqueraded);
fn ipv6_hairpin_lands_on_itself_masqueraded(backend: Backend) {
    require_kernel!("ipv6_hairpin_lands_on_itself_masqueraded");
    let mut topo = Topology::build_dual_for(backend, "v6hair", &[Pod::web("h6-a", "10.244.1.1")]);
    topo.load_manifests(&cluster_dual(&[
        &svc6("hp6", "fd00:10:96::80", None),
        &http_slice6("hp6", &[ep("fd00:10:244:1::1")]),
    ]));
    let probes = topo.tcp(From::Pod("h6-a"), "[fd00:10:96::80]:80", 5);
    probes
        .assert_pods(&["h6-a"])
        .assert_sources_within(&NODE1_LOCAL6);
    assert!(!probes.sources().contains(&topo.pod_ip6("h6-a")));
}

/// The dual-stack Nodes with no IPv6 InternalIP; `ipv6_external` instead
/// lists node1's IPv6 Kubernetes address as an ExternalIP.
fn nodes_without_ipv6_internal_ip(ipv6_external: bool) -> String {
    let nodes = crate::manifests::nodes_dual()
        .replace("  - type: InternalIP\n    address: fd00:172:30::1\n", "")
        .replace("  - type: InternalIP\n    address: fd00:172:30::2\n", "");
    if ipv6_external {
        nodes.replace(
            "    address: 172.30.0.1\n",
            "    address: 172.30.0.1\n  - type: ExternalIP\n    address: fd00:172:30::1\n",
        )
    } else {
        nodes
    }
}

fn dual_nodeport_yaml() -> String {
    ServiceYaml::cluster_ip("npdual", "10.96.9.1")
        .dual_stack("fd00:10:96::9:1")
        .http()
        .node_port(30901)
        .yaml()
}

backend_tests!(ipv6_nodeport_listens_everywhere_without_ipv6_node_address);
fn ipv6_nodeport_listens_everywhere_without_ipv6_node_address(backend: Backend) {
    require_kernel!("ipv6_nodeport_listens_everywhere_without_ipv6_node_address");
    // The Node lists only its IPv4 InternalIP: as kube-proxy, IPv6 NodePorts
    // then listen on every local IPv6 address of node1 (`::/0`), IPv4 ones
    // on the InternalIP only.
    let mut topo = Topology::build_dual_for(
        backend,
        "v6npall",
        &[Pod::web("a-4", "10.244.1.1"), Pod::web("a-6", "10.244.1.2")],
    );
    topo.load_manifests(&crate::manifests::cluster_with(
        &nodes_without_ipv6_internal_ip(false),
        &[
            &dual_nodeport_yaml(),
            &slice("npdual", "v4", HTTP, &[ep("10.244.1.1")]),
            &slice6("npdual", "v6", HTTP, &[ep("fd00:10:244:1::2")]),
        ],
    ));
    topo.tcp(From::Client, "[fd00:172:30::1]:30901", 3)
        .assert_pods(&["a-6"])
        .assert_sources_within(&NODE1_LOCAL6);
    topo.tcp(From::Client, "[fd00:172:30:1::1]:30901", 3)
        .assert_pods(&["a-6"])
        .assert_sources_within(&NODE1_LOCAL6);
    topo.tcp(From::Client, "172.30.0.1:30901", 3)
        .assert_pods(&["a-4"])
        .assert_sources_within(&NODE1_LOCAL);
    // IPv4 keeps its scope: node1's other IPv4 address is not a NodePort
    // address, and node1 has no socket there.
    topo.tcp(From::Client, "172.30.1.1:30901", 1)
        .assert_refused_within(FAST);
}

backend_tests!(ipv6_nodeport_on_node_external_ip_without_internal_ip);
fn ipv6_nodeport_on_node_external_ip_without_internal_ip(backend: Backend) {
    require_kernel!("ipv6_nodeport_on_node_external_ip_without_internal_ip");
    // No IPv6 InternalIP but an IPv6 ExternalIP: that is node1's primary
    // IPv6 address (kube-proxy's GetNodeHostIPs), the only one IPv6
    // NodePorts listen on.
    let mut topo = Topology::build_dual_for(backend, "v6npext", &[Pod::web("x-6", "10.244.1.2")]);
    topo.load_manifests(&crate::manifests::cluster_with(
        &nodes_without_ipv6_internal_ip(true),
        &[
            &dual_nodeport_yaml(),
            &slice("npdual", "v4", HTTP, &[ep("10.244.1.2")]),
            &slice6("npdual", "v6", HTTP, &[ep("fd00:10:244:1::2")]),
        ],
    ));
    topo.tcp(From::Client, "[fd00:172:30::1]:30901", 3)
        .assert_pods(&["x-6"])
        .assert_sources_within(&NODE1_LOCAL6);
    topo.tcp(From::Client, "[fd00:172:30:1::1]:30901", 1)
        .assert_refused_within(FAST);
}
