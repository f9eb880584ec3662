//! Service semantics beyond the issue #2 list (design §3), probed with
//! real packets: traffic policies, session affinity, the terminating
//! fallback and LoadBalancer source ranges.

use crate::harness::{Backend, From, Pod, Topology, CLIENT, SPREAD};
use crate::manifests::{cluster, ep, http_service, http_slice, lb_with_source_ranges, ServiceYaml};
use crate::{backend_tests, require_kernel};

/// A NodePort Service `name` on `ip` with the `http` port on `node_port`
/// and `extra_spec` lines.
fn np_svc(name: &str, ip: &str, node_port: u16, extra_spec: &str) -> String {
    ServiceYaml::cluster_ip(name, ip)
        .extra(extra_spec)
        .http()
        .node_port(node_port)
        .yaml()
}

backend_tests!(external_traffic_policy_local);
fn external_traffic_policy_local(backend: Backend) {
    require_kernel!("external_traffic_policy_local");
    let mut topo = Topology::build_for(
        backend,
        "etpl",
        &[
            Pod::web("etp-l", "10.244.1.1"),
            Pod::web("etp-r", "10.244.2.1"),
        ],
    );
    let local = "  externalTrafficPolicy: Local\n";
    topo.load_manifests(&cluster(&[
        &np_svc("here", "10.96.2.1", 30201, local),
        &http_slice("here", &[ep("10.244.1.1"), ep("10.244.2.1")]),
        &np_svc("away", "10.96.2.2", 30202, local),
        &http_slice("away", &[ep("10.244.2.1")]),
    ]));
    // Only the node-local endpoint, and the client's address preserved.
    topo.tcp(From::Client, "172.30.0.1:30201", SPREAD)
        .assert_pods(&["etp-l"])
        .assert_sources_within(&[CLIENT]);
    // No local endpoint: external traffic is dropped...
    topo.tcp(From::Client, "172.30.0.1:30202", 1)
        .assert_timeout();
    // ...while the ClusterIP still reaches the cluster-wide set.
    topo.tcp(From::Client, "10.96.2.2:80", 3)
        .assert_pods(&["etp-r"]);
}

backend_tests!(internal_traffic_policy_local);
fn internal_traffic_policy_local(backend: Backend) {
    require_kernel!("internal_traffic_policy_local");
    let mut topo = Topology::build_for(
        backend,
        "itpl",
        &[
            Pod::web("itp-l", "10.244.1.1"),
            Pod::web("itp-r", "10.244.2.1"),
            Pod::new("itp-cli", "10.244.1.2"),
        ],
    );
    let local = "  internalTrafficPolicy: Local\n";
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("mixed", "10.96.3.1")
            .extra(local)
            .http()
            .yaml(),
        &http_slice("mixed", &[ep("10.244.1.1"), ep("10.244.2.1")]),
        &ServiceYaml::cluster_ip("remote", "10.96.3.2")
            .extra(local)
            .http()
            .yaml(),
        &http_slice("remote", &[ep("10.244.2.1")]),
    ]));
    topo.tcp(From::Pod("itp-cli"), "10.96.3.1:80", SPREAD)
        .assert_pods(&["itp-l"]);
    topo.tcp(From::Pod("itp-cli"), "10.96.3.2:80", 1)
        .assert_timeout();
}

backend_tests!(session_affinity_client_ip);
fn session_affinity_client_ip(backend: Backend) {
    require_kernel!("session_affinity_client_ip");
    let mut topo = Topology::build_for(
        backend,
        "affin",
        &[
            Pod::web("aff-a", "10.244.1.1"),
            Pod::web("aff-b", "10.244.1.2"),
            Pod::new("aff-cli", "10.244.1.3"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("sticky", "10.96.4.1")
            .session_affinity(60)
            .http()
            .yaml(),
        &http_slice("sticky", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    for from in [From::Client, From::Pod("aff-cli")] {
        let probes = topo.tcp(from, "10.96.4.1:80", 20);
        probes.assert_all_answered();
        assert_eq!(probes.pods().len(), 1, "affinity broken; {probes:?}");
    }
}

backend_tests!(terminating_endpoints_serve_when_none_ready);
fn terminating_endpoints_serve_when_none_ready(backend: Backend) {
    require_kernel!("terminating_endpoints_serve_when_none_ready");
    let mut topo = Topology::build_for(
        backend,
        "term",
        &[
            Pod::web("term-a", "10.244.1.1"),
            Pod::web("term-b", "10.244.1.2"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &http_service("draining", "10.96.5.1"),
        &http_slice(
            "draining",
            &[
                ep("10.244.1.1").terminating(),
                ep("10.244.1.2").terminating().not_serving(),
            ],
        ),
    ]));
    topo.tcp(From::Client, "10.96.5.1:80", SPREAD)
        .assert_pods(&["term-a"]);
}

backend_tests!(load_balancer_source_ranges);
fn load_balancer_source_ranges(backend: Backend) {
    require_kernel!("load_balancer_source_ranges");
    let mut topo = Topology::build_for(backend, "lbsr", &[Pod::web("sr-a", "10.244.1.1")]);
    topo.load_manifests(&cluster(&[
        &lb_with_source_ranges("open", "10.96.6.1", "203.0.113.21", 30221, "172.30.1.0/24"),
        &http_slice("open", &[ep("10.244.1.1")]),
        &lb_with_source_ranges("shut", "10.96.6.2", "203.0.113.22", 30222, "192.0.2.0/24"),
        &http_slice("shut", &[ep("10.244.1.1")]),
    ]));
    topo.tcp(From::Client, "203.0.113.21:80", 3)
        .assert_pods(&["sr-a"]);
    topo.tcp(From::Client, "203.0.113.22:80", 1)
        .assert_timeout();
    // Source ranges filter the LoadBalancer IP, not the NodePort.
    topo.tcp(From::Client, "172.30.0.1:30222", 3)
        .assert_pods(&["sr-a"]);
}
