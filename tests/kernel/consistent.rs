//! Consistent backend selection (`knc.dev/backend-selection: source-hash`),
//! probed from 60 client addresses: each client always reaches one
//! backend, the one `knc explain` names for it; node1 and node2 compile
//! the same slot table; and removing a backend moves only its clients.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use crate::harness::{Backend, From, Pod, Topology};
use crate::manifests::{cluster, ep, http_slice, Ep, ServiceYaml};
use crate::{backend_tests, require_kernel};

const VIP: &str = "10.96.20.1:80";

/// The 60 extra addresses the client probes from.
fn clients() -> Vec<IpAddr> {
    (101..=160)
        .map(|i| IpAddr::V4(Ipv4Addr::new(172, 30, 1, i)))
        .collect()
}

/// The Service with the annotation, and its slice of `eps`.
fn manifests(eps: &[Ep]) -> String {
    let plain = ServiceYaml::cluster_ip("sticky", "10.96.20.1")
        .http()
        .yaml();
    let service = plain.replacen(
        "  namespace: default\n",
        "  namespace: default\n  annotations:\n    knc.dev/backend-selection: source-hash\n",
        1,
    );
    assert_ne!(service, plain, "annotation not added");
    cluster(&[&service, &http_slice("sticky", eps)])
}

/// Runs the `knc` binary on `dir` and returns its standard output.
fn knc(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_knc"))
        .args(args)
        .arg(dir)
        .args(["--cluster-cidr", "10.244.0.0/16"])
        .output()
        .expect("run knc");
    assert!(
        out.status.success(),
        "knc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The backend (`A:port`) `knc explain` says `client` always reaches on
/// `node`, for the back end under test.
fn explained(dir: &Path, node: &str, client: IpAddr, backend: Backend) -> String {
    let text = knc(
        &[
            "explain",
            "--node",
            node,
            "--to",
            VIP,
            "--from",
            &client.to_string(),
        ],
        dir,
    );
    let line = text
        .lines()
        .find(|l| l.contains("hashes to slot"))
        .unwrap_or_else(|| panic!("explain names no slot for {client}:\n{text}"));
    let nft = line.split("always ").nth(1).expect("always …");
    let (nft, iptables) = match nft.split_once(" (") {
        Some((nft, rest)) => (nft, rest.split(' ').next().expect("backend")),
        None => (nft.trim_end_matches('.'), nft.trim_end_matches('.')),
    };
    match backend {
        Backend::Nft => nft.to_string(),
        Backend::Iptables => iptables.to_string(),
    }
}

/// The lines of a compiled ruleset that hold the slot table: nft map
/// elements of the VIP, or iptables `-m cluster` picks.
fn slot_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("10.96.20.1 . tcp . 80 . ") || l.contains("-m cluster"))
        .collect()
}

/// Probes every client 3 times; each must be answered by one pod only.
fn who_answers(topo: &Topology) -> BTreeMap<IpAddr, String> {
    clients()
        .into_iter()
        .map(|client| {
            let probes = topo.tcp_from(From::Client, client, VIP, 3);
            probes.assert_all_answered();
            let pods = probes.pods();
            assert_eq!(
                pods.len(),
                1,
                "{client} reached several backends: {probes:?}"
            );
            (client, pods.into_iter().next().expect("one pod"))
        })
        .collect()
}

backend_tests!(source_hash_keeps_clients_and_moves_only_the_removed_ones);
fn source_hash_keeps_clients_and_moves_only_the_removed_ones(backend: Backend) {
    require_kernel!("source_hash_keeps_clients_and_moves_only_the_removed_ones");
    let pods = [
        ("h-1a", "10.244.1.1"),
        ("h-1b", "10.244.1.2"),
        ("h-2a", "10.244.2.1"),
        ("h-2b", "10.244.2.2"),
    ];
    let mut topo = Topology::build_for(
        backend,
        "srchash",
        &pods.map(|(name, ip)| Pod::web(name, ip)),
    );
    let adds: Vec<String> = clients()
        .iter()
        .map(|c| format!("addr add {c}/24 dev eth0"))
        .collect();
    topo.client().ip_batch(&adds);
    let pod_of = |endpoint: &str| {
        let ip = endpoint.strip_suffix(":8080").expect("port 8080");
        pods.iter()
            .find(|(_, p)| *p == ip)
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| panic!("no pod at {endpoint}"))
    };

    let all = manifests(&[
        ep("10.244.1.1"),
        ep("10.244.1.2"),
        ep("10.244.2.1"),
        ep("10.244.2.2"),
    ]);
    topo.load_manifests(&all);
    let before = who_answers(&topo);
    let used: std::collections::BTreeSet<&String> = before.values().collect();
    assert!(used.len() >= 3, "60 clients spread over {used:?} only");

    // The same inputs compiled for node1 and node2 have the same slot
    // table, and `knc explain` names each client's backend on both.
    let dir = topo.dir().join("srchash-explain");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("cluster.yaml"), &all).expect("write");
    for format in ["nft", "iptables"] {
        let on = |node: &str| knc(&["compile", "--node", node, "--format", format], &dir);
        let (one, two) = (on("node1"), on("node2"));
        assert!(
            !slot_lines(&one).is_empty(),
            "no slot table in {format}:\n{one}"
        );
        assert_eq!(
            slot_lines(&one),
            slot_lines(&two),
            "{format} slot tables differ"
        );
    }
    for (client, pod) in &before {
        for node in ["node1", "node2"] {
            let named = pod_of(&explained(&dir, node, *client, backend));
            assert_eq!(&named, pod, "{client}: explain on {node} names {named}");
        }
    }

    // Remove h-2a: its clients move, everyone else stays.
    topo.load_manifests(&manifests(&[
        ep("10.244.1.1"),
        ep("10.244.1.2"),
        ep("10.244.2.2"),
    ]));
    let after = who_answers(&topo);
    let moved = before.values().filter(|p| *p == "h-2a").count();
    assert!(moved > 0, "no client was on h-2a: {before:?}");
    for (client, was) in &before {
        let is = &after[client];
        if was == "h-2a" {
            assert_ne!(is, "h-2a", "{client} still reaches the removed backend");
        } else {
            assert_eq!(is, was, "{client} moved from {was} to {is}");
        }
    }
}
