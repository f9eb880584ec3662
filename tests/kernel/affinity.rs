//! Session affinity, both families, both back ends: a client keeps one
//! backend (with the Service's timeout) while clients spread, whichever
//! address of the Service port it uses. The nft output remembers clients
//! in dynamic maps per Service port, the iptables output in `-m recent`
//! lists per backend of the Service port (see README).

use std::collections::BTreeMap;

use crate::apply::Knc;
use crate::backend_tests;
use crate::harness::{Backend, From, Pod, Topology};
use crate::manifests::{cluster_dual, ep, http_slice, slice, slice6, ServiceYaml, HTTP};
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
/// backends, both families. Another Service's ClusterIP and external IP
/// port that has the NodePort's number is not taken for the NodePort by
/// the memory.
fn affinity_is_shared_by_every_address_of_a_service_port(backend: Backend) {
    require_kernel!("affinity_is_shared_by_every_address_of_a_service_port");
    let backends = [
        ("sh-a", "10.244.1.1"),
        ("sh-b", "10.244.1.2"),
        ("sh-c", "10.244.2.1"),
        ("sh-d", "10.244.2.2"),
    ];
    let mut pods: Vec<Pod> = backends.iter().map(|(n, ip)| Pod::web(n, ip)).collect();
    pods.push(Pod::web("sh-e", "10.244.1.3"));
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
        &ServiceYaml::cluster_ip("lookalike", "10.96.7.3")
            .extra("  externalIPs: [198.51.100.73]\n")
            .port("http", 30072, 8080)
            .yaml(),
        &http_slice("lookalike", &[ep("10.244.1.3")]),
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
        // Remembered clients reaching another Service on the NodePort's
        // number are that Service's business.
        for client in &clients {
            for lookalike in ["10.96.7.3:30072", "198.51.100.73:30072"] {
                topo.tcp(From::Pod(client), lookalike, 2)
                    .assert_pods(&["sh-e"]);
            }
        }
        // Eight clients over four backends all landing on one has
        // probability 4 * (1/4)^8 when choices are independent.
        assert!(
            chosen.len() > 1,
            "every client of {cluster_ip} landed on {chosen:?}"
        );
    }
}

backend_tests!(affinity_survives_incremental_applies);
/// `knc apply` keeps what session affinity remembers across incremental
/// updates: an unrelated Service's endpoint changing, the sticky Service
/// gaining a backend, and losing one. Clients stay on their backends
/// (through the ClusterIP and the NodePort alike, in both families),
/// except those of the removed backend, which are sent to one remaining
/// backend at once and stay there, as kube-proxy forgets a removed
/// endpoint's clients. (The removed pod keeps answering here, so a client
/// still sent to it shows.) The iptables back end reloads knc's chains
/// whole each time; its `-m recent` lists live on in the kernel across
/// reloads.
fn affinity_survives_incremental_applies(backend: Backend) {
    require_kernel!("affinity_survives_incremental_applies");
    let backends = [
        ("ai-a", "10.244.1.1", "fd00:10:244:1::1"),
        ("ai-b", "10.244.1.2", "fd00:10:244:1::2"),
        ("ai-c", "10.244.2.1", "fd00:10:244:2::1"),
        ("ai-d", "10.244.2.2", "fd00:10:244:2::2"),
        ("ai-o", "10.244.1.5", "fd00:10:244:1::5"),
        ("ai-p", "10.244.1.6", "fd00:10:244:1::6"),
    ];
    let mut pods: Vec<Pod> = backends.iter().map(|(n, ip, _)| Pod::web(n, ip)).collect();
    let clients: Vec<String> = (0..8).map(|i| format!("ai-c{i}")).collect();
    for (i, name) in clients.iter().enumerate() {
        pods.push(Pod::new(name, &format!("10.244.1.{}", 20 + i)));
    }
    let topo = Topology::build_dual_for(backend, "affinc", &pods);
    let knc = Knc::new(&topo);
    let update = match backend {
        Backend::Nft => "incremental",
        Backend::Iptables => "full",
    };
    let of = |pod: &str| *backends.iter().find(|(n, _, _)| *n == pod).unwrap();
    let manifests = |sticky: &[&str], other: &str| {
        let eps: Vec<_> = sticky.iter().map(|pod| ep(of(pod).1)).collect();
        let eps6: Vec<_> = sticky.iter().map(|pod| ep(of(pod).2)).collect();
        cluster_dual(&[
            &ServiceYaml::cluster_ip("sticky", "10.96.8.1")
                .dual_stack("fd00:10:96::8:1")
                .session_affinity(600)
                .http()
                .node_port(30081)
                .yaml(),
            &slice("sticky", "v4", HTTP, &eps),
            &slice6("sticky", "v6", HTTP, &eps6),
            &ServiceYaml::cluster_ip("other", "10.96.8.2").http().yaml(),
            &http_slice("other", &[ep(of(other).1)]),
        ])
    };
    // Per family: the ClusterIP first, then the NodePort.
    let families = [
        ["10.96.8.1:80", "172.30.0.1:30081"],
        ["[fd00:10:96::8:1]:80", "[fd00:172:30::1]:30081"],
    ];
    let on = |client: &str, target: &str, count: usize| -> String {
        let probes = topo.tcp(From::Pod(client), target, count);
        probes.assert_all_answered();
        let pods = probes.pods();
        assert_eq!(pods.len(), 1, "{client} moved between backends: {probes:?}");
        pods.into_iter().next().unwrap()
    };
    type Remembered<'a> = BTreeMap<(&'a str, usize), String>;
    let check = |remembered: &Remembered, step: &str| {
        for ((client, family), pod) in remembered {
            for target in families[*family] {
                assert_eq!(&on(client, target, 2), pod, "{step}: {client} via {target}");
            }
        }
    };

    knc.apply(&manifests(&["ai-a", "ai-b", "ai-c"], "ai-o"))
        .expect("full");
    let mut remembered = Remembered::new();
    for client in &clients {
        for (family, [cluster_ip, _]) in families.iter().enumerate() {
            remembered.insert((client, family), on(client, cluster_ip, 2));
        }
    }
    let chosen: std::collections::BTreeSet<&String> = remembered.values().collect();
    assert!(chosen.len() > 1, "every client landed on {chosen:?}");

    knc.apply(&manifests(&["ai-a", "ai-b", "ai-c"], "ai-p"))
        .expect(update);
    topo.tcp(From::Pod(&clients[0]), "10.96.8.2:80", 2)
        .assert_pods(&["ai-p"]);
    check(&remembered, "another Service's endpoint changed");

    knc.apply(&manifests(&["ai-a", "ai-b", "ai-c", "ai-d"], "ai-p"))
        .expect(update);
    check(&remembered, "a backend added");

    // Take away the backend most clients are on.
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for pod in remembered.values() {
        *counts.entry(pod).or_default() += 1;
    }
    let removed = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .unwrap()
        .0
        .to_string();
    let rest: Vec<&str> = ["ai-a", "ai-b", "ai-c", "ai-d"]
        .into_iter()
        .filter(|p| *p != removed)
        .collect();
    knc.apply(&manifests(&rest, "ai-p")).expect(update);
    let mut after = Remembered::new();
    for ((client, family), pod) in &remembered {
        let now = on(client, families[*family][0], 3);
        if *pod == removed {
            assert_ne!(now, removed, "{client} still sent to the removed backend");
        } else {
            assert_eq!(&now, pod, "{client} moved though its backend stayed");
        }
        after.insert((*client, *family), now);
    }
    check(&after, "a backend removed");
}
