//! `validate` accepts a ruleset that keeps every promise, and rejects each
//! way of breaking each promise with that invariant alone.

use super::*;
use crate::ir::{BackendSets, Routing};
use std::sync::Arc;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn backend(address: &str) -> Backend {
    Backend {
        address: ip(address),
        port: 8080,
        weight: 1,
    }
}

fn all(route: Route) -> Routing {
    Routing {
        node: route,
        pods: route,
        external: route,
    }
}

fn frontend(kind: FrontendKind, address: Option<&str>, port: u16, routing: Routing) -> Frontend {
    Frontend {
        kind,
        address: address.map(ip),
        port,
        allowed_sources: Vec::new(),
        routing,
    }
}

const CLUSTER: Route = Route::Forward {
    set: SetKind::Cluster,
    masquerade: false,
};
const CLUSTER_MASQUERADED: Route = Route::Forward {
    set: SetKind::Cluster,
    masquerade: true,
};

/// Three entries: `default/a:http` in both families (no IPv6 cluster CIDR)
/// with a ClusterIP, a LoadBalancer and a NodePort, and `default/b` with
/// no endpoints.
fn valid() -> Ruleset {
    let a4 = Entry {
        family: Family::Ipv4,
        namespace: "default".into(),
        name: "a".into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        frontends: vec![
            frontend(
                FrontendKind::ClusterIp,
                Some("10.96.0.1"),
                80,
                Routing {
                    node: CLUSTER_MASQUERADED,
                    pods: CLUSTER,
                    external: CLUSTER_MASQUERADED,
                },
            ),
            Frontend {
                allowed_sources: vec![net("198.51.100.0/24"), net("203.0.113.1/32")],
                ..frontend(
                    FrontendKind::LoadBalancer,
                    Some("203.0.113.1"),
                    80,
                    all(CLUSTER_MASQUERADED),
                )
            },
            frontend(
                FrontendKind::NodePort,
                None,
                30080,
                all(CLUSTER_MASQUERADED),
            ),
        ],
        backends: BackendSets {
            cluster: vec![backend("10.244.1.1"), backend("10.244.2.1")],
            local: vec![backend("10.244.1.1")],
        },
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        selection: Default::default(),
    };
    let b4 = Entry {
        name: "b".into(),
        port_name: String::new(),
        frontends: vec![frontend(
            FrontendKind::ClusterIp,
            Some("10.96.0.2"),
            80,
            all(Route::Reject),
        )],
        backends: BackendSets::default(),
        ..a4.clone()
    };
    let a6 = Entry {
        family: Family::Ipv6,
        frontends: vec![frontend(
            FrontendKind::ClusterIp,
            Some("fd00:96::1"),
            80,
            all(CLUSTER),
        )],
        backends: BackendSets {
            cluster: vec![backend("fd00:244::1")],
            local: Vec::new(),
        },
        ..a4.clone()
    };
    Ruleset {
        version: VERSION,
        node: Some("node1".into()),
        cluster_cidrs: vec![net("10.244.0.0/16")],
        local_detector: crate::ir::LocalDetector::Cidrs,
        service_cidrs: vec![net("10.96.0.0/16"), net("fd00:96::/112")],
        cluster_ips: vec![ip("10.96.0.1"), ip("10.96.0.2"), ip("fd00:96::1")],
        node_addresses: vec![ip("192.168.0.1")],
        nodeport_scope: NodePortScope::LocalIn(vec![net("192.168.0.1/32")]),
        services: vec![Arc::new(a4), Arc::new(b4), Arc::new(a6)],
    }
}

const A4: usize = 0;
const B4: usize = 1;
const A6: usize = 2;

/// Each way this test breaks `invariant`: a label and the broken ruleset.
fn broken(invariant: Invariant) -> Vec<(&'static str, Ruleset)> {
    let mut cases = Vec::new();
    let mut case = |label: &'static str, change: &dyn Fn(&mut Ruleset)| {
        let mut ruleset = valid();
        change(&mut ruleset);
        cases.push((label, ruleset));
    };
    match invariant {
        Invariant::Version => {
            case("another version", &|r| r.version = VERSION + 1);
            case("no version (IR from before versions)", &|r| r.version = 0);
        }
        Invariant::Sorted => {
            case("entries out of order", &|r| r.services.swap(A4, B4));
            case("frontends out of order", &|r| {
                r.entry_mut(A4).frontends.swap(0, 1)
            });
            case("backends out of order", &|r| {
                r.entry_mut(A4).backends.cluster.swap(0, 1)
            });
            case("a backend twice", &|r| {
                r.entry_mut(A4).backends.local.push(backend("10.244.1.1"))
            });
            case("allowed sources out of order", &|r| {
                r.entry_mut(A4).frontends[1].allowed_sources.reverse()
            });
            case("cluster IPs out of order", &|r| r.cluster_ips.reverse());
            case("service CIDRs out of order", &|r| r.service_cidrs.reverse());
            case("a cluster CIDR twice", &|r| {
                r.cluster_cidrs.push(net("10.244.0.0/16"))
            });
            case("node addresses twice", &|r| {
                r.node_addresses.push(ip("192.168.0.1"))
            });
            case("nodeport scope out of order", &|r| {
                r.nodeport_scope =
                    NodePortScope::LocalIn(vec![net("192.168.0.1/32"), net("10.0.0.0/8")])
            });
        }
        Invariant::UniqueFrontendKey => {
            case("an address and port of another entry", &|r| {
                r.entry_mut(B4).frontends[0] = frontend(
                    FrontendKind::ExternalIp,
                    Some("203.0.113.1"),
                    80,
                    all(Route::Reject),
                )
            });
            case("a NodePort of another entry", &|r| {
                let node_port = frontend(FrontendKind::NodePort, None, 30080, all(Route::Reject));
                r.entry_mut(B4).frontends.push(node_port)
            });
        }
        Invariant::NoEmptyForward => {
            case("forward to an empty cluster set", &|r| {
                r.entry_mut(B4).frontends[0].routing.node = CLUSTER
            });
            case("forward to an empty local set", &|r| {
                r.entry_mut(A6).frontends[0].routing.node = Route::Forward {
                    set: SetKind::Local,
                    masquerade: false,
                }
            });
        }
        Invariant::PodsAreExternal => {
            case("pods told apart without a cluster CIDR", &|r| {
                r.entry_mut(A6).frontends[0].routing.external = CLUSTER_MASQUERADED
            });
        }
        Invariant::LocalDetector => {
            case("an interface name that would change a rule", &|r| {
                r.cluster_cidrs.clear();
                r.local_detector = LocalDetector::InterfacePrefix("cali\"; drop".into())
            });
            case("an empty interface name", &|r| {
                r.cluster_cidrs.clear();
                r.local_detector = LocalDetector::Interface(String::new())
            });
            case("an interface name of 16 bytes", &|r| {
                r.cluster_cidrs.clear();
                r.local_detector = LocalDetector::Interface("a".repeat(16))
            });
            case("an interface detector with cluster CIDRs", &|r| {
                r.local_detector = LocalDetector::InterfacePrefix("cali".into())
            });
        }
        Invariant::Weight => {
            case("weight 0", &|r| {
                r.entry_mut(A4).backends.cluster[1].weight = 0
            });
        }
        Invariant::OneFamily => {
            case("an IPv6 backend in an IPv4 entry", &|r| {
                r.entry_mut(A4)
                    .backends
                    .cluster
                    .push(backend("fd00:244::9"))
            });
            case("an IPv4 frontend in an IPv6 entry", &|r| {
                r.entry_mut(A6).frontends[0].address = Some(ip("10.96.0.9"))
            });
            case("an IPv6 allowed source in an IPv4 entry", &|r| {
                r.entry_mut(A4).frontends[1]
                    .allowed_sources
                    .push(net("fd00::/64"))
            });
        }
        Invariant::FrontendAddress => {
            case("a NodePort with an address", &|r| {
                r.entry_mut(A4).frontends[2].address = Some(ip("192.168.0.1"))
            });
            case("a ClusterIP without an address", &|r| {
                r.entry_mut(B4).frontends[0].address = None
            });
        }
    }
    cases
}

#[test]
fn a_ruleset_keeping_every_promise_is_accepted() {
    assert_eq!(validate(&valid()), Ok(()));
}

/// Under an interface detector pods are told apart in every family, with
/// no cluster CIDRs.
#[test]
fn an_interface_detector_tells_pods_apart_in_both_families() {
    let mut ruleset = valid();
    ruleset.cluster_cidrs.clear();
    ruleset.local_detector = LocalDetector::Interface("cni0".into());
    ruleset.entry_mut(A6).frontends[0].routing.external = CLUSTER_MASQUERADED;
    assert_eq!(validate(&ruleset), Ok(()));
}

#[test]
fn each_broken_invariant_is_rejected_as_itself() {
    assert_eq!(Invariant::ALL.len(), 9, "a new invariant needs a case");
    for invariant in Invariant::ALL {
        let cases = broken(invariant);
        assert!(!cases.is_empty(), "no case breaks {invariant:?}");
        for (label, ruleset) in cases {
            let violations = validate(&ruleset).expect_err(label);
            assert!(
                violations.iter().all(|v| v.invariant == invariant),
                "{label}: expected only {invariant:?}, got {violations:#?}"
            );
            assert_eq!(violations.len(), 1, "{label}: {violations:#?}");
        }
    }
}

#[test]
fn a_violation_names_the_entry_and_the_invariant() {
    let mut ruleset = valid();
    ruleset.entry_mut(A4).backends.cluster[1].weight = 0;
    let violations = validate(&ruleset).unwrap_err();
    assert_eq!(violations[0].entry.as_deref(), Some("default/a:http"));
    assert_eq!(
        violations[0].to_string(),
        "default/a:http: backend 10.244.2.1:8080 in the cluster set has weight 0 \
         (broken invariant: weights are at least 1)"
    );

    let mut ruleset = valid();
    ruleset.entry_mut(B4).frontends.push(frontend(
        FrontendKind::NodePort,
        None,
        30080,
        all(Route::Reject),
    ));
    let message = validate(&ruleset).unwrap_err()[0].to_string();
    assert!(
        message.starts_with(
            "default/b: node-port frontend tcp/30080 is also a frontend of default/a:http"
        ),
        "{message}"
    );
}

#[test]
fn every_violation_is_reported() {
    let mut ruleset = valid();
    ruleset.entry_mut(A4).backends.cluster[1].weight = 0;
    ruleset.entry_mut(B4).frontends[0].routing.node = CLUSTER;
    let found: Vec<Invariant> = validate(&ruleset)
        .unwrap_err()
        .iter()
        .map(|v| v.invariant)
        .collect();
    assert_eq!(found, [Invariant::Weight, Invariant::NoEmptyForward]);
}

#[test]
fn ir_serialised_without_a_version_fails_validation() {
    let mut json = serde_json::to_value(valid()).unwrap();
    json.as_object_mut().unwrap().remove("version");
    let read: Ruleset = serde_json::from_value(json).unwrap();
    assert_eq!(read.version, 0);
    let violations = validate(&read).unwrap_err();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].invariant, Invariant::Version);
}
