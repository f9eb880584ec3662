//! Proves the harness without knc: a hand-written DNAT ruleset loaded into
//! node1 makes a pod reachable on a virtual IP, and before it is loaded the
//! same virtual IP times out (so no test can pass vacuously because the
//! topology answers by itself). And proves that the check every probe
//! makes against `knc explain` fails a probe when the two disagree.

use std::panic::AssertUnwindSafe;

use crate::harness::{Compiled, From, Pod, Rules, Topology, CLIENT, FAST, NODE1_LOCAL};
use crate::manifests::{cluster, ep, http_service, http_slice};
use crate::require_kernel;

const DNAT: &str = "
table ip knc-selftest {
    chain pre {
        type nat hook prerouting priority -100;
        ip daddr 10.96.0.99 tcp dport 80 dnat to 10.244.1.1:8080
        ip daddr 10.96.0.99 udp dport 53 dnat to 10.244.2.1:5353
    }
    chain post {
        type nat hook postrouting priority 100;
        ip daddr 10.244.2.1 udp dport 5353 masquerade
    }
}
";

#[test]
fn harness_selftest() {
    require_kernel!("harness_selftest");
    let mut topo = Topology::build(
        "self",
        &[
            Pod::web("self-a", "10.244.1.1"),
            Pod::web("self-b", "10.244.1.2"),
            Pod::new("self-r", "10.244.2.1").udp(&[5353]),
        ],
    );

    // Plain routing: client to pods on both nodes, pod to pod, node to pod.
    topo.tcp(From::Client, "10.244.1.1:8080", 3)
        .assert_pods(&["self-a"])
        .assert_sources_within(&[CLIENT]);
    topo.udp(From::Client, "10.244.2.1:5353", 3)
        .assert_pods(&["self-r"])
        .assert_sources_within(&[CLIENT]);
    let b = topo.pod_ip("self-b");
    topo.tcp(From::Pod("self-b"), "10.244.1.1:8080", 3)
        .assert_pods(&["self-a"])
        .assert_sources_within(&[b]);
    topo.tcp(From::Node1, "10.244.1.2:8080", 3)
        .assert_pods(&["self-b"])
        .assert_sources_within(&NODE1_LOCAL);
    // A closed port on a pod is refused by the pod's kernel, fast.
    topo.tcp(From::Client, "10.244.1.1:9", 2)
        .assert_refused_within(FAST);

    // The virtual IP goes nowhere before rules exist: node1's default route
    // is a dead end, so this is a timeout, not an error.
    topo.tcp(From::Client, "10.96.0.99:80", 1).assert_timeout();

    topo.load_hand_written_nft(DNAT);
    topo.tcp(From::Client, "10.96.0.99:80", 5)
        .assert_pods(&["self-a"])
        .assert_port(8080)
        .assert_sources_within(&[CLIENT]);
    topo.tcp(From::Pod("self-b"), "10.96.0.99:80", 5)
        .assert_pods(&["self-a"])
        .assert_sources_within(&[b]);
    topo.udp(From::Client, "10.96.0.99:53", 5)
        .assert_pods(&["self-r"])
        .assert_port(5353)
        .assert_sources_within(&NODE1_LOCAL);
    let tables = topo.nft(&["list", "tables"]);
    assert_eq!(tables.trim(), "table ip knc-selftest");
}

/// What kube-proxy's layout relies on, by hand: hairpin masquerade, a
/// NodePort-style DNAT of a node address with masquerade, and rejects that
/// reach the client fast (TCP and UDP, from outside and from a pod).
const HAIRPIN_REJECT: &str = "
table ip knc-selftest2 {
    chain pre {
        type nat hook prerouting priority -100;
        ip daddr 10.96.0.98 tcp dport 80 dnat to 10.244.1.1:8080
        ip daddr 172.30.0.1 tcp dport 30099 meta mark set 0x4000 dnat to 10.244.1.1:8080
    }
    chain post {
        type nat hook postrouting priority 100;
        meta mark & 0x4000 == 0x4000 masquerade
        ip saddr 10.244.1.1 ip daddr 10.244.1.1 masquerade
    }
    chain filt {
        type filter hook forward priority -10;
        ip daddr 10.96.0.97 reject
    }
}
";

#[test]
fn harness_selftest_hairpin_nodeport_reject() {
    require_kernel!("harness_selftest_hairpin_nodeport_reject");
    let mut topo = Topology::build(
        "self2",
        &[
            Pod::web("self2-a", "10.244.1.1"),
            Pod::new("self2-c", "10.244.1.2"),
        ],
    );
    topo.tcp(From::Client, "10.96.0.97:80", 1).assert_timeout();
    topo.load_hand_written_nft(HAIRPIN_REJECT);
    topo.tcp(From::Pod("self2-a"), "10.96.0.98:80", 5)
        .assert_pods(&["self2-a"])
        .assert_sources_within(&NODE1_LOCAL);
    topo.tcp(From::Client, "172.30.0.1:30099", 5)
        .assert_pods(&["self2-a"])
        .assert_sources_within(&NODE1_LOCAL);
    topo.assert_tcp_refused(&[From::Client, From::Pod("self2-c")], "10.96.0.97:80", 3);
    topo.udp(From::Client, "10.96.0.97:53", 3)
        .assert_refused_within(FAST);
}

/// The probes' explain check bites: node1 runs the rules of one cluster
/// while the harness is told they are another's, and each kind of
/// disagreement (who answers, the source the pod sees, refused instead of
/// answered) fails the probe; told the truth, the same probes pass.
#[test]
fn probes_fail_when_explain_disagrees_with_the_kernel() {
    require_kernel!("probes_fail_when_explain_disagrees_with_the_kernel");
    let mut topo = Topology::build(
        "self3",
        &[
            Pod::web("self3-a", "10.244.1.1"),
            Pod::web("self3-b", "10.244.1.2"),
            Pod::web("self3-c", "10.244.1.3"),
        ],
    );
    let cluster_to = |ip| {
        cluster(&[
            &http_service("web", "10.96.0.50"),
            &http_slice("web", &[ep(ip)]),
        ])
    };
    let truth = topo.load_manifests(&cluster_to("10.244.1.1"));
    let other_backend = topo.compile(&cluster_to("10.244.1.2"));
    let masquerade_all = topo.compile_flags(&cluster_to("10.244.1.1"), &["--masquerade-all"]);
    let no_endpoints = topo.compile(&cluster(&[&http_service("web", "10.96.0.50")]));
    let disagreement = |topo: &Topology, from: From<'_>, said: &Compiled, expect: &str| {
        topo.rules_are(Rules::Compiled(vec![said.inputs.clone()]));
        let probed = std::panic::catch_unwind(AssertUnwindSafe(|| {
            topo.tcp(from, "10.96.0.50:80", 2);
        }));
        let message = probed
            .expect_err("the probe should fail: explain disagrees with the kernel")
            .downcast::<String>()
            .map(|m| *m)
            .unwrap_or_default();
        assert!(
            message.contains("explain and the kernel disagree") && message.contains(expect),
            "expected a disagreement naming {expect:?}, got:\n{message}"
        );
    };
    disagreement(
        &topo,
        From::Client,
        &other_backend,
        "none of the backends explain named",
    );
    disagreement(
        &topo,
        From::Pod("self3-c"),
        &masquerade_all,
        "explain said masqueraded",
    );
    disagreement(&topo, From::Client, &no_endpoints, "explain said rejected");

    topo.rules_are(Rules::Compiled(vec![truth.inputs.clone()]));
    topo.tcp(From::Client, "10.96.0.50:80", 2)
        .assert_pods(&["self3-a"]);
    topo.tcp(From::Pod("self3-c"), "10.96.0.50:80", 2)
        .assert_pods(&["self3-a"]);
}
