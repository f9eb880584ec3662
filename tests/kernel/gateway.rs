//! Weighted backends from Gateway API objects: a TCPRoute or UDPRoute
//! attached to a Gateway listener splits connections to the Gateway's
//! address over its backendRefs by weight. Hundreds of connections from the external
//! client must land on each ref within a binomial tolerance band, for
//! both back ends, and every one is masqueraded (a Gateway address is
//! routed as a LoadBalancer IP under `externalTrafficPolicy: Cluster`).

use std::collections::BTreeMap;

use crate::harness::{Backend, From, Pod, Topology, NODE1_LOCAL};
use crate::manifests::{cluster, ep, http_slice, slice, Ep, ServiceYaml};
use crate::{backend_tests, require_kernel};

/// The Gateway's TCP listener: its address and port.
const GATEWAY: &str = "203.0.113.30:9000";
/// The Gateway's UDP listener.
const GATEWAY_UDP: &str = "203.0.113.30:53";

/// One of the Gateway's two listeners, the route kind attaching to it and
/// the Services' port its backendRefs name.
#[derive(Clone, Copy)]
struct Listener {
    route: &'static str,
    section: &'static str,
    target: &'static str,
    service_port: u16,
    /// The pods' port behind the Services' port.
    pod_port: u16,
}

const TCP: Listener = Listener {
    route: "TCPRoute",
    section: "tcp",
    target: GATEWAY,
    service_port: 80,
    pod_port: 8080,
};

const UDP: Listener = Listener {
    route: "UDPRoute",
    section: "udp",
    target: GATEWAY_UDP,
    service_port: 53,
    pod_port: 5353,
};

/// Connections per run: enough that a 10 % share is ~60 ± 7.
const CONNECTIONS: usize = 600;

/// A Gateway `edge` at 203.0.113.30 with a TCP listener `tcp` on port
/// 9000 and a UDP listener `udp` on port 53, and a route `split` on
/// `listener` sending each `(service, weight)` its share (`None`: no
/// `weight`, the default 1).
fn gateway_and_route(listener: Listener, refs: &[(&str, Option<u32>)]) -> (String, String) {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: default
spec:
  gatewayClassName: knc
  addresses:
  - type: IPAddress
    value: 203.0.113.30
  listeners:
  - name: tcp
    protocol: TCP
    port: 9000
  - name: udp
    protocol: UDP
    port: 53
"
    .to_string();
    let mut route = format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: {}
metadata:
  name: split
  namespace: default
spec:
  parentRefs:
  - name: edge
    sectionName: {}
  rules:
  - backendRefs:
",
        listener.route, listener.section
    );
    for (service, weight) in refs {
        route += &format!(
            "    - name: {service}\n      port: {}\n",
            listener.service_port
        );
        if let Some(weight) = weight {
            route += &format!("      weight: {weight}\n");
        }
    }
    (gateway, route)
}

/// Services `(name, ClusterIP, endpoints)` with their slices, the
/// Gateway and a route on `listener`.
fn manifests(
    listener: Listener,
    services: &[(&str, &str, &[Ep])],
    refs: &[(&str, Option<u32>)],
) -> String {
    let (gateway, route) = gateway_and_route(listener, refs);
    let mut docs: Vec<String> = Vec::new();
    for (name, ip, eps) in services {
        if listener.route == "UDPRoute" {
            let service = ServiceYaml::cluster_ip(name, ip).udp_port("dns", 53, 5353);
            docs.push(service.yaml());
            docs.push(slice(name, "x1", &[("dns", "UDP", 5353)], eps));
        } else {
            docs.push(ServiceYaml::cluster_ip(name, ip).http().yaml());
            docs.push(http_slice(name, eps));
        }
    }
    docs.push(gateway);
    docs.push(route);
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    cluster(&refs)
}

/// The binomial band a count of successes with probability `p` in `n`
/// trials lies in but for a 4.5σ fluke (about 7 in a million).
fn band(n: usize, p: f64) -> std::ops::RangeInclusive<usize> {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    let low = (mean - 4.5 * sigma).floor().max(0.0) as usize;
    let high = (mean + 4.5 * sigma).ceil() as usize;
    low..=high
}

/// `CONNECTIONS` connections (UDP: request/replies, each from a new
/// socket) from the client to `listener`, every one answered and
/// masqueraded; how many each pod answered.
fn spread(topo: &Topology, listener: Listener) -> BTreeMap<String, usize> {
    let probes = if listener.route == "UDPRoute" {
        topo.udp(From::Client, listener.target, CONNECTIONS)
    } else {
        topo.tcp(From::Client, listener.target, CONNECTIONS)
    };
    probes
        .assert_all_answered()
        .assert_port(listener.pod_port)
        .assert_sources_within(&NODE1_LOCAL);
    let mut counts = BTreeMap::new();
    for attempt in &probes.attempts {
        if let crate::probe::Outcome::Answered { pod, .. } = &attempt.outcome {
            *counts.entry(pod.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// Asserts that each pod's count is in the band of its expected share.
fn assert_shares(backend: Backend, counts: &BTreeMap<String, usize>, shares: &[(&str, f64)]) {
    eprintln!("gateway split ({backend:?}): {counts:?} of {CONNECTIONS}");
    let total: usize = counts.values().sum();
    assert_eq!(total, CONNECTIONS, "{counts:?}");
    for (pod, share) in shares {
        let got = counts.get(*pod).copied().unwrap_or(0);
        let expected = band(CONNECTIONS, *share);
        assert!(
            expected.contains(&got),
            "{backend:?}: pod {pod} answered {got} of {CONNECTIONS}, expected {share} \
             of them ({expected:?}); all: {counts:?}"
        );
    }
}

backend_tests!(tcp_route_splits_ninety_ten);
/// A 90/10 canary: web-v1 (weight 90) and web-v2 (weight 10), one
/// endpoint each, on different nodes.
fn tcp_route_splits_ninety_ten(backend: Backend) {
    require_kernel!("tcp_route_splits_ninety_ten");
    let mut topo = Topology::build_for(
        backend,
        "gw9010",
        &[Pod::web("v1", "10.244.1.1"), Pod::web("v2", "10.244.2.1")],
    );
    topo.load_manifests(&manifests(
        TCP,
        &[
            ("web-v1", "10.96.30.1", &[ep("10.244.1.1")]),
            ("web-v2", "10.96.30.2", &[ep("10.244.2.1")]),
        ],
        &[("web-v1", Some(90)), ("web-v2", Some(10))],
    ));
    let counts = spread(&topo, TCP);
    assert_shares(backend, &counts, &[("v1", 0.9), ("v2", 0.1)]);
    // Pods reach the Gateway address too (every source class forwards).
    topo.tcp(From::Pod("v2"), GATEWAY, 10).assert_all_answered();
}

backend_tests!(tcp_route_splits_weights_over_endpoints);
/// Weights 1, 2 and 7 (the first left to its default of 1), the 7 split
/// over two endpoints (35 % each); a ref of weight 0 gets nothing.
fn tcp_route_splits_weights_over_endpoints(backend: Backend) {
    require_kernel!("tcp_route_splits_weights_over_endpoints");
    let pods = [
        Pod::web("a", "10.244.1.1"),
        Pod::web("b", "10.244.1.2"),
        Pod::web("c1", "10.244.2.1"),
        Pod::web("c2", "10.244.2.2"),
        Pod::web("off", "10.244.1.3"),
    ];
    let mut topo = Topology::build_for(backend, "gw127", &pods);
    topo.load_manifests(&manifests(
        TCP,
        &[
            ("a", "10.96.31.1", &[ep("10.244.1.1")]),
            ("b", "10.96.31.2", &[ep("10.244.1.2")]),
            ("c", "10.96.31.3", &[ep("10.244.2.1"), ep("10.244.2.2")]),
            ("off", "10.96.31.4", &[ep("10.244.1.3")]),
        ],
        &[
            ("a", None),
            ("b", Some(2)),
            ("c", Some(7)),
            ("off", Some(0)),
        ],
    ));
    let counts = spread(&topo, TCP);
    assert_shares(
        backend,
        &counts,
        &[
            ("a", 0.1),
            ("b", 0.2),
            ("c1", 0.35),
            ("c2", 0.35),
            ("off", 0.0),
        ],
    );
}

backend_tests!(udp_route_splits_one_two_seven);
/// A UDPRoute weighted 1 : 2 : 7, one endpoint each: every datagram
/// exchange comes from a new socket, so each is a new connection.
fn udp_route_splits_one_two_seven(backend: Backend) {
    require_kernel!("udp_route_splits_one_two_seven");
    let pods = [
        Pod::new("d1", "10.244.1.1").udp(&[5353]),
        Pod::new("d2", "10.244.2.1").udp(&[5353]),
        Pod::new("d7", "10.244.2.2").udp(&[5353]),
    ];
    let mut topo = Topology::build_for(backend, "gwudp", &pods);
    topo.load_manifests(&manifests(
        UDP,
        &[
            ("dns-1", "10.96.32.1", &[ep("10.244.1.1")]),
            ("dns-2", "10.96.32.2", &[ep("10.244.2.1")]),
            ("dns-7", "10.96.32.3", &[ep("10.244.2.2")]),
        ],
        &[("dns-1", Some(1)), ("dns-2", Some(2)), ("dns-7", Some(7))],
    ));
    let counts = spread(&topo, UDP);
    assert_shares(backend, &counts, &[("d1", 0.1), ("d2", 0.2), ("d7", 0.7)]);
}

#[test]
fn the_band_is_the_binomial_one() {
    // n = 600, p = 0.1: mean 60, σ ≈ 7.35.
    assert_eq!(band(600, 0.1), 26..=94);
    assert_eq!(band(600, 0.0), 0..=0);
}
