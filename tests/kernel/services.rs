//! Service behaviour through `knc compile` output, loaded into node1 and
//! probed with real packets (issue #2).

use std::collections::BTreeSet;

use crate::harness::{Backend, From, Pod, Topology, CLIENT, FAST, NODE1_LOCAL, SPREAD};
use crate::manifests::{
    cluster, endpoints, ep, http_service, http_slice, slice, ServiceYaml, HTTP,
};
use crate::{backend_tests, require_kernel};

/// A topology `id` whose one pod `pod` (10.244.1.1, on node1) is the only
/// endpoint of `service`'s `http` port, with `service` loaded.
fn one_pod_behind(backend: Backend, id: &str, pod: &str, service: ServiceYaml) -> Topology {
    let mut topo = Topology::build_for(backend, id, &[Pod::web(pod, "10.244.1.1")]);
    topo.load_manifests(&cluster(&[
        &service.yaml(),
        &http_slice(service.name(), &[ep("10.244.1.1")]),
    ]));
    topo
}

backend_tests!(clusterip_tcp_two_endpoints);
fn clusterip_tcp_two_endpoints(backend: Backend) {
    require_kernel!("clusterip_tcp_two_endpoints");
    let mut topo = Topology::build_for(
        backend,
        "cip",
        &[
            Pod::web("web-a", "10.244.1.1"),
            Pod::web("web-b", "10.244.1.2"),
            Pod::new("cli", "10.244.1.3"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &http_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    // From outside the cluster: both endpoints, masqueraded (an
    // off-cluster source to a ClusterIP when the cluster CIDR is known).
    topo.assert_client_masqueraded("10.96.0.10:80", SPREAD, &["web-a", "web-b"], &NODE1_LOCAL);
    // From a pod: both endpoints, source preserved.
    let cli = topo.pod_ip("cli");
    topo.tcp(From::Pod("cli"), "10.96.0.10:80", SPREAD)
        .assert_pods(&["web-a", "web-b"])
        .assert_sources_within(&[cli]);
    // From node1 itself (the output hook): both endpoints, with a node
    // address as source.
    topo.tcp(From::Node1, "10.96.0.10:80", SPREAD)
        .assert_pods(&["web-a", "web-b"])
        .assert_sources_within(&NODE1_LOCAL);
}

backend_tests!(udp_named_target_port);
fn udp_named_target_port(backend: Backend) {
    require_kernel!("udp_named_target_port");
    // The pods also listen on 53, so an untranslated port answers (and
    // fails the port assertion) instead of timing out.
    let mut topo = Topology::build_for(
        backend,
        "udpn",
        &[
            Pod::new("dns-a", "10.244.1.1").udp(&[53, 5353]),
            Pod::new("dns-b", "10.244.1.2").udp(&[53, 5353]),
        ],
    );
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("dns", "10.96.0.53")
            .udp_port("dns", 53, "dns")
            .yaml(),
        &slice(
            "dns",
            "x1",
            &[("dns", "UDP", 5353)],
            &[ep("10.244.1.1"), ep("10.244.1.2")],
        ),
    ]));
    topo.udp(From::Client, "10.96.0.53:53", SPREAD)
        .assert_pods(&["dns-a", "dns-b"])
        .assert_port(5353);
}

backend_tests!(multi_port_service);
fn multi_port_service(backend: Backend) {
    require_kernel!("multi_port_service");
    let mut topo = Topology::build_for(
        backend,
        "mport",
        &[Pod::new("mp-a", "10.244.1.1").tcp(&[80, 8080, 9090, 9100])],
    );
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("mp", "10.96.0.20")
            .http()
            .port("metrics", 9090, "metrics")
            .yaml(),
        &slice(
            "mp",
            "x1",
            &[("http", "TCP", 8080), ("metrics", "TCP", 9100)],
            &[ep("10.244.1.1")],
        ),
    ]));
    topo.tcp(From::Client, "10.96.0.20:80", 5)
        .assert_pods(&["mp-a"])
        .assert_port(8080);
    topo.tcp(From::Client, "10.96.0.20:9090", 5)
        .assert_pods(&["mp-a"])
        .assert_port(9100);
}

backend_tests!(nodeport_from_external_client_is_masqueraded);
fn nodeport_from_external_client_is_masqueraded(backend: Backend) {
    require_kernel!("nodeport_from_external_client_is_masqueraded");
    let topo = one_pod_behind(
        backend,
        "np",
        "np-a",
        ServiceYaml::cluster_ip("np", "10.96.0.30")
            .http()
            .node_port(30080),
    );
    let probes = topo.assert_client_masqueraded("172.30.0.1:30080", 5, &["np-a"], &NODE1_LOCAL);
    assert!(!probes.sources().contains(&CLIENT));
    // NodePorts live on the node's primary IP only: node1's address on the
    // client link is not a Kubernetes node address, so there the port is
    // just a closed local port (reset by node1's own stack).
    topo.tcp(From::Client, "172.30.1.1:30080", 2)
        .assert_refused_within(FAST);
}

backend_tests!(external_ip);
fn external_ip(backend: Backend) {
    require_kernel!("external_ip");
    let topo = one_pod_behind(
        backend,
        "eip",
        "eip-a",
        ServiceYaml::cluster_ip("eip", "10.96.0.40")
            .extra("  externalIPs: [198.51.100.10]\n")
            .http(),
    );
    topo.assert_client_masqueraded("198.51.100.10:80", 5, &["eip-a"], &NODE1_LOCAL);
}

backend_tests!(load_balancer_ingress_ip);
fn load_balancer_ingress_ip(backend: Backend) {
    require_kernel!("load_balancer_ingress_ip");
    let topo = one_pod_behind(
        backend,
        "lb",
        "lb-a",
        ServiceYaml::cluster_ip("lb", "10.96.0.50")
            .http()
            .node_port(30050)
            .load_balancer("203.0.113.10"),
    );
    topo.assert_client_masqueraded("203.0.113.10:80", 5, &["lb-a"], &NODE1_LOCAL);
}

backend_tests!(no_endpoints_is_refused_fast);
fn no_endpoints_is_refused_fast(backend: Backend) {
    require_kernel!("no_endpoints_is_refused_fast");
    let mut topo = Topology::build_for(
        backend,
        "noep",
        &[
            Pod::web("ne-a", "10.244.1.1"),
            Pod::new("ne-cli", "10.244.1.2"),
        ],
    );
    // Without rules the ClusterIP goes to node1's dead-end default route:
    // a timeout, so a refusal below can only come from the ruleset.
    topo.tcp(From::Client, "10.96.0.60:80", 1).assert_timeout();
    topo.tcp(From::Client, "198.51.100.60:80", 1)
        .assert_timeout();
    topo.load_manifests(&cluster(&[
        &ServiceYaml::cluster_ip("empty", "10.96.0.60")
            .extra("  externalIPs: [198.51.100.60]\n")
            .http()
            .udp_port("dns", 53, 5353)
            .yaml(),
        &slice(
            "empty",
            "x1",
            &[("http", "TCP", 8080), ("dns", "UDP", 5353)],
            &[],
        ),
        &http_service("busy", "10.96.0.61"),
        &http_slice("busy", &[ep("10.244.1.1")]),
    ]));
    topo.assert_tcp_refused(
        &[From::Client, From::Pod("ne-cli"), From::Node1],
        "10.96.0.60:80",
        3,
    );
    topo.udp(From::Client, "10.96.0.60:53", 3)
        .assert_refused_within(FAST);
    // Not a ClusterIP: rejected by the frontend's own rule, not by the
    // catch-all for active ClusterIPs (it too timed out before loading).
    topo.tcp(From::Client, "198.51.100.60:80", 3)
        .assert_refused_within(FAST);
    // The ruleset is live: the Service next door answers, and a port it
    // does not serve on its active ClusterIP is rejected.
    topo.tcp(From::Client, "10.96.0.61:80", 3)
        .assert_pods(&["ne-a"]);
    topo.tcp(From::Client, "10.96.0.61:81", 3)
        .assert_refused_within(FAST);
}

backend_tests!(not_ready_endpoint_never_answers);
fn not_ready_endpoint_never_answers(backend: Backend) {
    require_kernel!("not_ready_endpoint_never_answers");
    let mut topo = Topology::build_for(
        backend,
        "nrdy",
        &[
            Pod::web("nr-up", "10.244.1.1"),
            Pod::web("nr-down", "10.244.1.2"),
        ],
    );
    // The not-ready pod's server is up: traffic sent to it would answer.
    topo.tcp(From::Client, "10.244.1.2:8080", 1)
        .assert_pods(&["nr-down"]);
    topo.load_manifests(&cluster(&[
        &http_service("nr", "10.96.0.70"),
        &http_slice("nr", &[ep("10.244.1.1"), ep("10.244.1.2").not_ready()]),
    ]));
    topo.tcp(From::Client, "10.96.0.70:80", SPREAD)
        .assert_pods(&["nr-up"]);
}

backend_tests!(hairpin_lands_on_itself_masqueraded);
fn hairpin_lands_on_itself_masqueraded(backend: Backend) {
    require_kernel!("hairpin_lands_on_itself_masqueraded");
    let topo = one_pod_behind(
        backend,
        "hair",
        "hp-a",
        ServiceYaml::cluster_ip("hp", "10.96.0.80").http(),
    );
    let probes = topo.tcp(From::Pod("hp-a"), "10.96.0.80:80", 5);
    probes
        .assert_pods(&["hp-a"])
        .assert_sources_within(&NODE1_LOCAL);
    assert!(!probes.sources().contains(&topo.pod_ip("hp-a")));
}

backend_tests!(legacy_endpoints_without_slices);
fn legacy_endpoints_without_slices(backend: Backend) {
    require_kernel!("legacy_endpoints_without_slices");
    let mut topo = Topology::build_for(
        backend,
        "legacy",
        &[
            Pod::web("leg-a", "10.244.1.1"),
            Pod::web("leg-b", "10.244.1.2"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &http_service("leg", "10.96.0.90"),
        &endpoints("leg", HTTP, &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    topo.tcp(From::Client, "10.96.0.90:80", SPREAD)
        .assert_pods(&["leg-a", "leg-b"])
        .assert_port(8080);
}

backend_tests!(endpoint_on_other_node);
fn endpoint_on_other_node(backend: Backend) {
    require_kernel!("endpoint_on_other_node");
    let mut topo = Topology::build_for(
        backend,
        "xnode",
        &[
            Pod::web("xn-r", "10.244.2.1"),
            Pod::new("xn-cli", "10.244.1.1"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &http_service("xn", "10.96.0.100"),
        &http_slice("xn", &[ep("10.244.2.1")]),
    ]));
    topo.tcp(From::Client, "10.96.0.100:80", 5)
        .assert_pods(&["xn-r"])
        .assert_sources_within(&NODE1_LOCAL);
    let cli = topo.pod_ip("xn-cli");
    topo.tcp(From::Pod("xn-cli"), "10.96.0.100:80", 5)
        .assert_pods(&["xn-r"])
        .assert_sources_within(&[cli]);
}

fn tables(topo: &Topology) -> Vec<String> {
    let list = topo.nft(&["list", "tables"]);
    let tables: Vec<String> = list.lines().map(str::to_owned).collect();
    let unique: BTreeSet<&String> = tables.iter().collect();
    assert_eq!(unique.len(), tables.len(), "duplicate tables:\n{list}");
    tables
}

/// The built-in chains knc hooks, per table, and where each jumps.
const HOOKS: [(&str, &str, &str); 6] = [
    ("nat", "PREROUTING", "KNC-SERVICES"),
    ("nat", "OUTPUT", "KNC-SERVICES"),
    ("nat", "POSTROUTING", "KNC-POSTROUTING"),
    ("filter", "INPUT", "KNC-FILTER"),
    ("filter", "FORWARD", "KNC-FILTER"),
    ("filter", "OUTPUT", "KNC-FILTER"),
];

/// node1's `iptables-save` as (table, line) pairs.
fn iptables_lines(topo: &Topology) -> Vec<(String, String)> {
    let mut table = String::new();
    let mut lines = Vec::new();
    for l in topo.iptables_save().lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = t.to_owned();
        }
        lines.push((table.clone(), l.to_owned()));
    }
    lines
}

/// Asserts that each built-in chain knc hooks holds exactly one rule
/// jumping into knc's chains, as its first rule, and returns the rules of
/// those built-in chains (what a reload must leave as it was).
fn assert_hooks_once(topo: &Topology) -> Vec<(String, String)> {
    let lines = iptables_lines(topo);
    let mut builtin = Vec::new();
    for (table, chain, target) in HOOKS {
        let head = format!("-A {chain} ");
        let rules: Vec<&String> = lines
            .iter()
            .filter(|(t, l)| t == table && l.starts_with(&head))
            .map(|(_, l)| l)
            .collect();
        let knc: Vec<&&String> = rules.iter().filter(|r| r.contains("-j KNC-")).collect();
        assert!(
            knc.len() == 1 && rules[0].ends_with(&format!("-j {target}")),
            "{table} {chain} must hold exactly one knc hook (to {target}), first; it has:\n{}",
            rules
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        builtin.extend(rules.into_iter().map(|r| (table.to_owned(), r.clone())));
    }
    builtin
}

/// What a reload must leave as it was: nft's set of tables, or iptables'
/// built-in chains (exactly one hook each).
fn outside_knc(topo: &Topology) -> Vec<String> {
    match topo.backend() {
        Backend::Nft => tables(topo),
        Backend::Iptables => assert_hooks_once(topo)
            .into_iter()
            .map(|(t, l)| format!("{t}: {l}"))
            .collect(),
    }
}

// iptables: loaded as a node sharing its tables would, always with
// `iptables-restore --noflush`, hooks inserted the first time and
// reinserted after (see the harness). knc's chains are flushed and refilled
// by their declarations; chains only the first load used ("gone"'s) stay
// behind, unreferenced: removing them needs the live state, which the
// runtime reads and the offline compiler cannot.
backend_tests!(reload_replaces_services_and_endpoints);
fn reload_replaces_services_and_endpoints(backend: Backend) {
    require_kernel!("reload_replaces_services_and_endpoints");
    let mut topo = Topology::build_for(
        backend,
        "reload",
        &[
            Pod::web("rl-a", "10.244.1.1"),
            Pod::web("rl-b", "10.244.1.2"),
            Pod::web("rl-c", "10.244.1.3"),
            Pod::web("rl-r", "10.244.2.1"),
        ],
    );
    topo.load_manifests(&cluster(&[
        &http_service("gone", "10.96.1.1"),
        &http_slice("gone", &[ep("10.244.1.1")]),
        &http_service("moving", "10.96.1.2"),
        &http_slice("moving", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]));
    topo.tcp(From::Client, "10.96.1.1:80", 3)
        .assert_pods(&["rl-a"]);
    topo.tcp(From::Client, "10.96.1.2:80", SPREAD)
        .assert_pods(&["rl-a", "rl-b"]);
    let before = outside_knc(&topo);

    topo.load_manifests(&cluster(&[
        &http_service("moving", "10.96.1.2"),
        &http_slice("moving", &[ep("10.244.1.3"), ep("10.244.2.1")]),
    ]));
    // An address inside the service CIDR that is no longer a ClusterIP is
    // dropped.
    topo.tcp(From::Client, "10.96.1.1:80", 2).assert_timeout();
    topo.tcp(From::Client, "10.96.1.2:80", SPREAD)
        .assert_pods(&["rl-c", "rl-r"]);
    assert_eq!(
        outside_knc(&topo),
        before,
        "reload changed the tables (nft) or the built-in chains (iptables)"
    );
}

/// Somebody else's rule in a table knc's iptables output does not use.
const OTHER_MANGLE: &str = "*mangle
-A PREROUTING -s 192.0.2.0/24 -j ACCEPT
COMMIT
";

// nft: one `nft -f` transaction replaces knc's table. iptables: plain
// `iptables-restore` (hooks inserted), which flushes the tables the file
// names (nat, filter) and no others: the same dump after one load and two.
backend_tests!(loading_twice_is_idempotent);
fn loading_twice_is_idempotent(backend: Backend) {
    require_kernel!("loading_twice_is_idempotent");
    let mut topo = Topology::build_for(
        backend,
        "twice",
        &[
            Pod::web("tw-a", "10.244.1.1"),
            Pod::web("tw-b", "10.244.2.1"),
        ],
    );
    // Somebody else's table: knc must leave it alone.
    match backend {
        Backend::Nft => topo.load_nft("table ip other {\n  chain keep {\n    type filter hook input priority 0; policy accept;\n  }\n}\n"),
        Backend::Iptables => topo.load_iptables(OTHER_MANGLE, &[]),
    }
    let compiled = topo.compile(&cluster(&[
        &http_service("tw", "10.96.0.110"),
        &http_slice("tw", &[ep("10.244.1.1"), ep("10.244.2.1")]),
        &ServiceYaml::cluster_ip("tw-np", "10.96.0.111")
            .http()
            .node_port(30111)
            .yaml(),
        &http_slice("tw-np", &[ep("10.244.1.1")]),
    ]));
    let text = compiled.text();
    let dump = |topo: &Topology| match backend {
        Backend::Nft => topo.nft(&["list", "ruleset"]),
        Backend::Iptables => topo.iptables_save(),
    };
    let load = |topo: &mut Topology| match backend {
        Backend::Nft => topo.load_nft(text),
        Backend::Iptables => topo.load_iptables(text, &[]),
    };
    load(&mut topo);
    let once = dump(&topo);
    load(&mut topo);
    let twice = dump(&topo);
    assert_eq!(
        once, twice,
        "ruleset changed by loading the same file again"
    );
    match backend {
        Backend::Nft => assert!(
            tables(&topo).iter().any(|t| t == "table ip other"),
            "knc's ruleset removed a table it does not own:\n{twice}"
        ),
        Backend::Iptables => {
            assert_hooks_once(&topo);
            assert!(
                twice.contains("*mangle\n")
                    && twice.contains("-A PREROUTING -s 192.0.2.0/24 -j ACCEPT"),
                "knc's ruleset removed a rule in a table it does not use:\n{twice}"
            );
        }
    }
    topo.tcp(From::Client, "10.96.0.110:80", SPREAD)
        .assert_pods(&["tw-a", "tw-b"]);
    topo.tcp(From::Client, "172.30.0.1:30111", 3)
        .assert_pods(&["tw-a"]);
}

/// Somebody else's rules in the nat and filter tables knc shares.
const OTHERS: &str = "*nat
-A PREROUTING -s 192.0.2.0/24 -j ACCEPT
-A POSTROUTING -s 192.0.2.0/24 -j ACCEPT
COMMIT
*filter
:OTHER - [0:0]
-A OTHER -s 192.0.2.0/24 -j ACCEPT
-A INPUT -s 192.0.2.0/24 -j ACCEPT
-A FORWARD -j OTHER
COMMIT
";

/// node1's iptables rules that are not knc's: the dump without any line
/// naming a `KNC-` chain.
fn not_knc(topo: &Topology) -> Vec<(String, String)> {
    iptables_lines(topo)
        .into_iter()
        .filter(|(_, l)| !l.contains("KNC-"))
        .collect()
}

#[test]
fn iptables_noflush_leaves_other_rules_alone() {
    require_kernel!("iptables_noflush_leaves_other_rules_alone");
    let mut topo = Topology::build_for(
        Backend::Iptables,
        "others",
        &[
            Pod::web("ot-a", "10.244.1.1"),
            Pod::web("ot-b", "10.244.1.2"),
        ],
    );
    topo.load_iptables(OTHERS, &["--noflush"]);
    let theirs = not_knc(&topo);
    for line in [
        "-A FORWARD -j OTHER",
        ":OTHER -",
        "-A OTHER -s 192.0.2.0/24",
    ] {
        assert!(
            theirs.iter().any(|(_, l)| l.starts_with(line)),
            "the unrelated rules did not load: no {line:?} in {theirs:?}"
        );
    }

    // First load: `--noflush`, hooks inserted.
    let text = topo.load_manifests(&cluster(&[
        &http_service("ot", "10.96.0.120"),
        &http_slice("ot", &[ep("10.244.1.1")]),
    ]));
    let text = text.text();
    assert!(text.contains("\n-I PREROUTING 1 ") && !text.contains("\n-D "));
    assert_eq!(
        not_knc(&topo),
        theirs,
        "the first load changed others' rules"
    );
    assert_hooks_once(&topo);
    topo.tcp(From::Client, "10.96.0.120:80", 3)
        .assert_pods(&["ot-a"]);

    // Reload: `--noflush`, hooks reinserted.
    let text = topo.load_manifests(&cluster(&[
        &http_service("ot", "10.96.0.120"),
        &http_slice("ot", &[ep("10.244.1.2")]),
    ]));
    assert!(text.text().contains("\n-D PREROUTING "));
    assert_eq!(not_knc(&topo), theirs, "the reload changed others' rules");
    assert_hooks_once(&topo);
    topo.tcp(From::Client, "10.96.0.120:80", 3)
        .assert_pods(&["ot-b"]);
}

/// The ServiceCIDR the test below allocates from.
const EXTRA_SERVICE_CIDR: &str = "apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata:
  name: extra
spec:
  cidrs: [10.100.0.0/16]
";

// A ServiceCIDR object is a source of service CIDRs, as `--service-cidr`
// is (none is passed here): an unallocated address inside is dropped, the
// Service's ClusterIP inside answers. 10.100.0.99 is also made a local
// address of node1, so without the drop node1's own stack would answer
// (a TCP reset: refused) instead of the probe timing out.
backend_tests!(service_cidr_object_drops_unallocated_addresses);
fn service_cidr_object_drops_unallocated_addresses(backend: Backend) {
    require_kernel!("service_cidr_object_drops_unallocated_addresses");
    let mut topo = Topology::build_for(backend, "scidr", &[Pod::web("sc-a", "10.244.1.1")]);
    topo.node1()
        .exec("ip", &["addr", "add", "10.100.0.99/32", "dev", "cl"]);
    topo.without_service_cidr_flags();
    topo.load_manifests(&cluster(&[
        EXTRA_SERVICE_CIDR,
        &http_service("sc", "10.100.0.10"),
        &http_slice("sc", &[ep("10.244.1.1")]),
    ]));
    topo.tcp(From::Client, "10.100.0.10:80", 3)
        .assert_pods(&["sc-a"]);
    topo.tcp(From::Client, "10.100.0.99:80", 1).assert_timeout();
}
