//! Session affinity across families: IPv4 remembers each client's backend
//! in a dynamic map (with the Service's timeout); IPv6 sticks by a hash of
//! the client address (nft 1.0.6 cannot generate the IPv6 map update; see
//! README); the iptables back end uses `-m recent` in both. Either way one
//! client keeps one backend while clients spread.

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
