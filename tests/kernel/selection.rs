//! Which endpoints a connection may reach, probed with real packets:
//! topology hints (zone and node), the ready / serving-terminating fallback decided
//! separately for the cluster-wide and node-local sets, endpoint
//! conditions as kube-proxy reads them (absent `serving`, one endpoint per
//! repeated address), and
//! loadBalancerSourceRanges as seen from node1 itself and from pods.

use crate::harness::{Backend, From, Pod, Topology, CLIENT, SPREAD};
use crate::manifests::{
    cluster, cluster_with, ep, http_service, http_slice, lb_with_source_ranges, nodes, slice,
    ServiceYaml, HTTP,
};
use crate::{backend_tests, require_kernel};

backend_tests!(topology_hints_for_this_zone);
fn topology_hints_for_this_zone(backend: Backend) {
    require_kernel!("topology_hints_for_this_zone");
    let mut topo = Topology::build_for(
        backend,
        "zones",
        &[
            Pod::web("z-1a", "10.244.1.1"),
            Pod::web("z-2a", "10.244.2.1"),
            Pod::web("z-2b", "10.244.2.2"),
            Pod::new("z-cli", "10.244.1.3"),
        ],
    );
    let plain = nodes();
    let nodes = plain.replacen(
        "  name: node1\n",
        "  name: node1\n  labels:\n    topology.kubernetes.io/zone: zone-a\n",
        1,
    );
    assert_ne!(nodes, plain, "zone label not added");
    let a = |ip: &'static str| ep(ip).for_zone("zone-a");
    let b = |ip: &'static str| ep(ip).for_zone("zone-b");
    topo.load_manifests(&cluster_with(
        &nodes,
        &[
            // Every ready endpoint hinted, two for zone-a: only those.
            &http_service("hinted", "10.96.10.1"),
            &http_slice(
                "hinted",
                &[a("10.244.1.1"), a("10.244.2.1"), b("10.244.2.2")],
            ),
            // One ready endpoint without hints: hints are ignored.
            &http_service("partial", "10.96.10.2"),
            &http_slice(
                "partial",
                &[a("10.244.1.1"), a("10.244.2.1"), ep("10.244.2.2")],
            ),
            // Every endpoint hinted, none for zone-a: hints are ignored.
            &http_service("elsewhere", "10.96.10.3"),
            &http_slice(
                "elsewhere",
                &[b("10.244.1.1"), b("10.244.2.1"), b("10.244.2.2")],
            ),
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

backend_tests!(node_hints_for_this_node);
fn node_hints_for_this_node(backend: Backend) {
    require_kernel!("node_hints_for_this_node");
    let mut topo = Topology::build_for(
        backend,
        "nodehint",
        &[
            Pod::web("n-1a", "10.244.1.1"),
            Pod::web("n-2a", "10.244.2.1"),
            Pod::web("n-2b", "10.244.2.2"),
            Pod::new("n-cli", "10.244.1.3"),
        ],
    );
    let plain = nodes();
    let nodes = plain.replacen(
        "  name: node1\n",
        "  name: node1\n  labels:\n    topology.kubernetes.io/zone: zone-a\n",
        1,
    );
    assert_ne!(nodes, plain, "zone label not added");
    // As PreferSameNode writes them: each endpoint hinted for its own node
    // and its zone (10.244.2.1 is on node2 in zone-a).
    let same = [
        ep("10.244.1.1").for_node("node1").for_zone("zone-a"),
        ep("10.244.2.1").for_node("node2").for_zone("zone-a"),
        ep("10.244.2.2").for_node("node2").for_zone("zone-b"),
    ];
    topo.load_manifests(&cluster_with(
        &nodes,
        &[
            // Every ready endpoint has a node hint, one for node1: only it
            // (node hints before zone hints).
            &http_service("samenode", "10.96.10.30"),
            &http_slice("samenode", &same),
            // One ready endpoint without a node hint: node hints are
            // ignored, and there are no zone hints.
            &http_service("partial", "10.96.10.31"),
            &http_slice(
                "partial",
                &[
                    ep("10.244.1.1").for_node("node1"),
                    ep("10.244.2.1").for_node("node2"),
                    ep("10.244.2.2"),
                ],
            ),
            // Node hints, none for node1: zone hints as before.
            &http_service("zones", "10.96.10.32"),
            &http_slice(
                "zones",
                &[
                    ep("10.244.1.1").for_node("node2").for_zone("zone-a"),
                    ep("10.244.2.1").for_node("node2").for_zone("zone-a"),
                    ep("10.244.2.2").for_node("node2").for_zone("zone-b"),
                ],
            ),
            // Node hints, none for node1, no zone hints: every endpoint.
            &http_service("elsewhere", "10.96.10.33"),
            &http_slice(
                "elsewhere",
                &[
                    ep("10.244.1.1").for_node("node2"),
                    ep("10.244.2.1").for_node("node2"),
                    ep("10.244.2.2").for_node("node2"),
                ],
            ),
        ],
    ));
    for from in [From::Pod("n-cli"), From::Client] {
        topo.tcp(from, "10.96.10.30:80", SPREAD)
            .assert_pods(&["n-1a"]);
        topo.tcp(from, "10.96.10.31:80", SPREAD * 2)
            .assert_pods(&["n-1a", "n-2a", "n-2b"]);
        topo.tcp(from, "10.96.10.32:80", SPREAD)
            .assert_pods(&["n-1a", "n-2a"]);
        topo.tcp(from, "10.96.10.33:80", SPREAD * 2)
            .assert_pods(&["n-1a", "n-2a", "n-2b"]);
    }
}

backend_tests!(fallback_to_terminating_is_decided_per_set);
fn fallback_to_terminating_is_decided_per_set(backend: Backend) {
    require_kernel!("fallback_to_terminating_is_decided_per_set");
    let mut topo = Topology::build_for(
        backend,
        "perset",
        &[
            Pod::web("s-term", "10.244.1.1"),
            Pod::web("s-gone", "10.244.1.2"),
            Pod::web("s-unready", "10.244.1.3"),
            Pod::web("s-ready", "10.244.2.1"),
            Pod::new("s-cli", "10.244.1.4"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("split", "10.96.10.10")
            .extra("  externalTrafficPolicy: Local\n")
            .http()
            .node_port(31010)
            .yaml(),
        &http_slice(
            "split",
            &[
                ep("10.244.1.1").terminating(),
                ep("10.244.1.2").terminating().not_serving(),
                ep("10.244.1.3").not_ready(),
                ep("10.244.2.1"),
            ],
        ),
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

backend_tests!(endpoint_conditions_as_kube_proxy_reads_them);
fn endpoint_conditions_as_kube_proxy_reads_them(backend: Backend) {
    require_kernel!("endpoint_conditions_as_kube_proxy_reads_them");
    let mut topo = Topology::build_for(
        backend,
        "conds",
        &[
            Pod::web("c-drain", "10.244.1.1"),
            Pod::web("c-reused", "10.244.1.2"),
            Pod::web("c-other", "10.244.2.1"),
            Pod::new("c-cli", "10.244.1.4"),
        ],
    );
    // 10.244.1.2: an old pod's terminating (still serving) entry and a new,
    // not yet ready pod's entry with the same address, in two slices.
    let old = ep("10.244.1.2").terminating();
    let new = ep("10.244.1.2").not_ready();
    topo.load_manifests(&cluster(&[
        // A draining pod whose controller writes no `serving`: absent means
        // serving, so it is the fallback (the other pod is not ready).
        &http_service("unset", "10.96.10.20"),
        &http_slice(
            "unset",
            &[
                ep("10.244.1.1").terminating_serving_unset(),
                ep("10.244.2.1").not_ready(),
            ],
        ),
        // The reused address is one endpoint with the new pod's
        // conditions, whichever slice comes first: only the other
        // draining pod serves.
        &http_service("reused", "10.96.10.21"),
        &slice("reused", "a", HTTP, &[old, ep("10.244.2.1").terminating()]),
        &slice("reused", "b", HTTP, &[new]),
        &http_service("reused-rev", "10.96.10.22"),
        &slice("reused-rev", "a", HTTP, &[new]),
        &slice(
            "reused-rev",
            "b",
            HTTP,
            &[old, ep("10.244.2.1").terminating()],
        ),
        // Nothing else: no usable endpoint at all, so connections are
        // refused rather than sent to the pod that is not ready.
        &http_service("replaced", "10.96.10.23"),
        &slice("replaced", "a", HTTP, &[old]),
        &slice("replaced", "b", HTTP, &[new]),
    ]));
    for from in [From::Pod("c-cli"), From::Client] {
        topo.tcp(from, "10.96.10.20:80", SPREAD)
            .assert_pods(&["c-drain"]);
        topo.tcp(from, "10.96.10.21:80", SPREAD)
            .assert_pods(&["c-other"]);
        topo.tcp(from, "10.96.10.22:80", SPREAD)
            .assert_pods(&["c-other"]);
    }
    topo.assert_tcp_refused(&[From::Pod("c-cli"), From::Client], "10.96.10.23:80", 3);
}

backend_tests!(source_ranges_seen_from_node_and_pods);
fn source_ranges_seen_from_node_and_pods(backend: Backend) {
    require_kernel!("source_ranges_seen_from_node_and_pods");
    let mut topo = Topology::build_for(
        backend,
        "lbnode",
        &[
            Pod::web("r-a", "10.244.1.1"),
            Pod::new("r-cli", "10.244.1.2"),
        ],
    );
    let ep = |svc: &str| http_slice(svc, &[ep("10.244.1.1")]);
    topo.load_manifests(&cluster(&[
        // node1's own address 172.30.0.1 lies in the range.
        &lb_with_source_ranges(
            "nodes",
            "10.96.11.1",
            "203.0.113.41",
            31101,
            "172.30.0.0/24",
        ),
        &ep("nodes"),
        // Neither node1 nor the pods nor the client.
        &lb_with_source_ranges("none", "10.96.11.2", "203.0.113.42", 31102, "192.0.2.0/24"),
        &ep("none"),
        // The pods' range.
        &lb_with_source_ranges("pods", "10.96.11.3", "203.0.113.43", 31103, "10.244.0.0/16"),
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
