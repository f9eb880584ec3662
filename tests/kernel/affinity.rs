//! Session affinity, both families, both back ends: a client keeps one
//! backend (with the Service's timeout) while clients spread, whichever
//! address of the Service port it uses. The nft output remembers clients
//! in dynamic maps per Service port, the iptables output in `-m recent`
//! lists per backend of the Service port (see README).

use crate::backend_tests;
use crate::harness::{Backend, From, Pod, Topology};
use crate::manifests::{cluster_dual, ep, slice, slice6, ServiceYaml, HTTP};
use crate::require_kernel;

backend_tests!(affinity_keeps_each_client_on_one_backend_in_both_families);
fn affinity_keeps_each_client_on_one_backend_in_both_families(backend: Backend) {
    require_kernel!("affinity_keeps_each_client_on_one_backend_in_both_families");
    let names = ["st-a", "st-b", "st-c"];
    let mut pods: Vec<Pod> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Pod::web(n, ["10.244.1.1", "10.244.1.2", "10.244.2.1"][i]))
        .collect();
    let clients: Vec<String> = (0..8).map(|i| format!("st-c{i}")).collect();
    for (i, name) in clients.iter().enumerate() {
        pods.push(Pod::new(
            name,
            [
                "10.244.1.10",
                "10.244.1.11",
                "10.244.1.12",
                "10.244.1.13",
                "10.244.1.14",
                "10.244.1.15",
                "10.244.1.16",
                "10.244.1.17",
            ][i],
        ));
    }
    let mut topo = Topology::build_dual_for(backend, "affin2", &pods);
    topo.load_manifests(&cluster_dual(&[
        &ServiceYaml::cluster_ip("sticky", "10.96.7.1")
            .dual_stack("fd00:10:96::7:1")
            .session_affinity(300)
            .http()
            .yaml(),
        &slice(
            "sticky",
            "v4",
            HTTP,
            &[ep("10.244.1.1"), ep("10.244.1.2"), ep("10.244.2.1")],
        ),
        &slice6(
            "sticky",
            "v6",
            HTTP,
            &[
                ep("fd00:10:244:1::1"),
                ep("fd00:10:244:1::2"),
                ep("fd00:10:244:2::1"),
            ],
        ),
    ]));
    for target in ["10.96.7.1:80", "[fd00:10:96::7:1]:80"] {
        let mut chosen = std::collections::BTreeSet::new();
        for client in &clients {
            let probes = topo.tcp(From::Pod(client), target, 12);
            probes.assert_all_answered();
            let pods = probes.pods();
            assert_eq!(
                pods.len(),
                1,
                "{client} to {target} moved between backends: {probes:?}"
            );
            chosen.extend(pods);
        }
        // Eight clients over three backends all landing on one has
        // probability 3 * (1/3)^8 (about 0.05 %) when choices are independent.
        assert!(
            chosen.len() > 1,
            "every client of {target} landed on {chosen:?}"
        );
    }
}

backend_tests!(affinity_is_shared_by_every_address_of_a_service_port);
/// One Service port reached at its ClusterIP, its NodePort, an external IP
/// and (IPv4) a LoadBalancer IP: kube-proxy remembers a client per Service
/// port, so whichever address a client uses after the first, it lands on
/// the backend it was given first. Clients are pods on node1, four
/// backends, both families.
fn affinity_is_shared_by_every_address_of_a_service_port(backend: Backend) {
    require_kernel!("affinity_is_shared_by_every_address_of_a_service_port");
    let backends = [
        ("sh-a", "10.244.1.1"),
        ("sh-b", "10.244.1.2"),
        ("sh-c", "10.244.2.1"),
        ("sh-d", "10.244.2.2"),
    ];
    let mut pods: Vec<Pod> = backends.iter().map(|(n, ip)| Pod::web(n, ip)).collect();
    let clients: Vec<String> = (0..8).map(|i| format!("sh-c{i}")).collect();
    for (i, name) in clients.iter().enumerate() {
        pods.push(Pod::new(name, &format!("10.244.1.{}", 20 + i)));
    }
    let mut topo = Topology::build_dual_for(backend, "affsh", &pods);
    topo.load_manifests(&cluster_dual(&[
        &ServiceYaml::cluster_ip("shared", "10.96.7.2")
            .dual_stack("fd00:10:96::7:2")
            .session_affinity(600)
            .extra("  externalIPs: [198.51.100.72, '2001:db8::72']\n")
            .http()
            .node_port(30072)
            .load_balancer("203.0.113.72")
            .yaml(),
        &slice(
            "shared",
            "v4",
            HTTP,
            &[
                ep("10.244.1.1"),
                ep("10.244.1.2"),
                ep("10.244.2.1"),
                ep("10.244.2.2"),
            ],
        ),
        &slice6(
            "shared",
            "v6",
            HTTP,
            &[
                ep("fd00:10:244:1::1"),
                ep("fd00:10:244:1::2"),
                ep("fd00:10:244:2::1"),
                ep("fd00:10:244:2::2"),
            ],
        ),
    ]));
    let families: [(&str, &[&str]); 2] = [
        (
            "10.96.7.2:80",
            &["172.30.0.1:30072", "198.51.100.72:80", "203.0.113.72:80"],
        ),
        (
            "[fd00:10:96::7:2]:80",
            &["[fd00:172:30::1]:30072", "[2001:db8::72]:80"],
        ),
    ];
    for (cluster_ip, others) in families {
        let mut chosen = std::collections::BTreeSet::new();
        for client in &clients {
            let first = topo.tcp(From::Pod(client), cluster_ip, 3);
            first.assert_all_answered();
            let pods = first.pods();
            assert_eq!(pods.len(), 1, "{client} moved between backends: {first:?}");
            let pod = pods.into_iter().next().unwrap();
            for other in others {
                let probes = topo.tcp(From::Pod(client), other, 3);
                probes.assert_all_answered().assert_pods(&[pod.as_str()]);
            }
            // And back: the other addresses refreshed, not replaced, the
            // remembered backend.
            topo.tcp(From::Pod(client), cluster_ip, 2)
                .assert_all_answered()
                .assert_pods(&[pod.as_str()]);
            chosen.insert(pod);
        }
        // Eight clients over four backends all landing on one has
        // probability 4 * (1/4)^8 when choices are independent.
        assert!(
            chosen.len() > 1,
            "every client of {cluster_ip} landed on {chosen:?}"
        );
    }
}
