//! Unit tests on hand-built IRs: the essential lines of each feature.

use super::build::{probabilities, route_id};
use super::*;
use crate::ir::{
    Backend, BackendSets, Entry, Frontend, FrontendKind, NodePortScope, Protocol, Route, Routing,
    SetKind,
};

fn fwd(set: SetKind, masquerade: bool) -> Route {
    Route::Forward { set, masquerade }
}

fn uniform(route: Route) -> Routing {
    Routing {
        node: route,
        pods: route,
        external: route,
    }
}

fn backend(a: &str, port: u16, weight: u32) -> Backend {
    Backend {
        address: a.parse().unwrap(),
        port,
        weight,
    }
}

fn frontend(kind: FrontendKind, address: Option<&str>, port: u16, routing: Routing) -> Frontend {
    Frontend {
        kind,
        address: address.map(|a| a.parse().unwrap()),
        port,
        allowed_sources: vec![],
        routing,
    }
}

fn service(name: &str, frontends: Vec<Frontend>, cluster: Vec<Backend>) -> Entry {
    let family = frontends
        .iter()
        .find_map(|f| f.address)
        .map(|a| Family::of(&a))
        .unwrap_or(Family::Ipv4);
    Entry {
        family,
        namespace: "default".into(),
        name: name.into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        frontends,
        backends: BackendSets {
            cluster,
            local: vec![],
        },
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        selection: Default::default(),
    }
}

fn ruleset(services: Vec<Entry>) -> Ruleset {
    Ruleset {
        version: crate::ir::VERSION,
        node: Some("node-a".into()),
        cluster_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:244::/48".parse().unwrap(),
        ],
        local_detector: crate::ir::LocalDetector::Cidrs,
        service_cidrs: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:96::/108".parse().unwrap(),
        ],
        cluster_ips: vec![
            "10.96.0.10".parse().unwrap(),
            "fd00:96::10".parse().unwrap(),
        ],
        node_addresses: vec!["192.168.1.10".parse().unwrap()],
        nodeport_scope: NodePortScope::AnyLocal,
        services: services.into_iter().map(std::sync::Arc::new).collect(),
    }
}

/// Lines of `text` that start with `-A <chain> `, without that prefix.
fn rules_of<'t>(text: &'t str, chain: &str) -> Vec<&'t str> {
    let p = format!("-A {chain} ");
    text.lines()
        .filter_map(|l| l.strip_prefix(p.as_str()))
        .collect()
}

/// The target of the first rule in `text` that contains `needle`.
fn jump_of(text: &str, needle: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle}"));
    line.rsplit("-j ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

fn cluster_ip_service() -> Entry {
    let routing = Routing {
        node: fwd(SetKind::Cluster, true),
        pods: fwd(SetKind::Cluster, false),
        external: fwd(SetKind::Cluster, true),
    };
    service(
        "web",
        vec![frontend(
            FrontendKind::ClusterIp,
            Some("10.96.0.10"),
            80,
            routing,
        )],
        vec![
            backend("10.244.1.5", 8080, 1),
            backend("10.244.2.7", 8080, 3),
        ],
    )
}

#[test]
fn cluster_ip_with_two_weighted_backends() {
    let out = emit(&ruleset(vec![cluster_ip_service()]), Family::Ipv4);
    let dispatch = rules_of(&out, "KNC-SERVICES");
    assert!(dispatch[0].starts_with(
        "-d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:http cluster-ip\" -m tcp --dport 80 -j KNC-FE-"
    ));
    let fe = jump_of(&out, "-d 10.96.0.10/32");
    let svc = jump_of(&out, &format!("-A {fe} -s 10.244.0.0/16"));
    assert!(svc.starts_with("KNC-SVC-") && svc.len() == 24);
    assert_eq!(
        rules_of(&out, &fe),
        vec![
            "-m addrtype --src-type LOCAL -j KNC-MARK-MASQ".to_string(),
            format!("-m addrtype --src-type LOCAL -j {svc}"),
            format!("-s 10.244.0.0/16 -j {svc}"),
            "-j KNC-MARK-MASQ".to_string(),
            format!("-j {svc}"),
        ]
    );
    let picks = rules_of(&out, &svc);
    assert_eq!(picks.len(), 2);
    assert!(
        picks[0].starts_with("-m statistic --mode random --probability 0.2500000000 -j KNC-SEP-")
    );
    assert!(picks[1].starts_with("-j KNC-SEP-"));
    let sep = picks[0].rsplit(' ').next().unwrap();
    assert_eq!(
        rules_of(&out, sep),
        vec![
            "-s 10.244.1.5/32 -j KNC-MARK-MASQ",
            "-p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080"
        ]
    );
    // Unknown ports on the ClusterIP are rejected, the rest of the range dropped.
    let filter = rules_of(&out, "KNC-FILTER");
    assert!(filter.contains(&"-d 10.96.0.10/32 -j KNC-REJECT"));
    assert_eq!(filter.last(), Some(&"-d 10.96.0.0/12 -j DROP"));
    // Postrouting masquerades marked packets only.
    assert_eq!(
        rules_of(&out, "KNC-POSTROUTING"),
        vec![
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-j MARK --set-xmark 0x4000/0x0",
            "-j MASQUERADE --random-fully"
        ]
    );
    // No IPv6 leaks into the IPv4 output.
    assert!(!out.contains("fd00"));
}

#[test]
fn hooks_inserted_reinserted_or_omitted() {
    let rs = ruleset(vec![cluster_ip_service()]);
    let insert = emit(&rs, Family::Ipv4);
    assert!(
        insert.contains("\n-I PREROUTING 1 -m comment --comment knc-services -j KNC-SERVICES\n")
    );
    assert!(insert.contains(
        "\n-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment knc-filter -j KNC-FILTER\n"
    ));
    assert!(!insert.contains("\n-D "));
    let reinsert = emit_with(&rs, Family::Ipv4, Hooks::Reinsert);
    assert!(reinsert.contains(
        "\n-D POSTROUTING -m comment --comment knc-postrouting -j KNC-POSTROUTING\n\
         -I POSTROUTING 1 -m comment --comment knc-postrouting -j KNC-POSTROUTING\n"
    ));
    let omit = emit_with(&rs, Family::Ipv4, Hooks::Omit);
    assert!(!omit.contains("\n-I ") && !omit.contains("\n-D "));
    assert_eq!(hooks().len(), 6);
}

#[test]
fn probabilities_compose_to_the_weights() {
    let p = probabilities(&[1, 1, 2]);
    assert_eq!(format!("{:.10}", p[0]), "0.2500000000");
    assert_eq!(format!("{:.10}", p[1]), "0.3333333333");
    // Probability each backend is chosen: p_i times the chance none before was.
    let mut left = 1.0;
    let mut chosen = vec![];
    for (i, q) in p.iter().enumerate() {
        let q = if i + 1 == p.len() { 1.0 } else { *q };
        chosen.push(left * q);
        left *= 1.0 - q;
    }
    for (c, want) in chosen.iter().zip([0.25, 0.25, 0.5]) {
        assert!((c - want).abs() < 1e-12, "{chosen:?}");
    }
    // And in the emitted text.
    let svc = service(
        "w",
        vec![frontend(
            FrontendKind::ClusterIp,
            Some("10.96.0.20"),
            80,
            uniform(fwd(SetKind::Cluster, false)),
        )],
        vec![
            backend("10.244.1.1", 80, 1),
            backend("10.244.1.2", 80, 1),
            backend("10.244.1.3", 80, 2),
        ],
    );
    let out = emit(&ruleset(vec![svc]), Family::Ipv4);
    let chain = jump_of(&out, "-d 10.96.0.20/32");
    assert!(
        chain.starts_with("KNC-SVC-"),
        "uniform unmasqueraded routing jumps straight to the set"
    );
    let picks = rules_of(&out, &chain);
    assert!(picks[0].contains("--probability 0.2500000000 "));
    assert!(picks[1].contains("--probability 0.3333333333 "));
    assert!(picks[2].starts_with("-j KNC-SEP-"));
}

#[test]
fn nodeport_on_any_local_address_and_on_cidrs() {
    let routing = Routing {
        node: fwd(SetKind::Cluster, true),
        pods: fwd(SetKind::Cluster, true),
        external: fwd(SetKind::Local, false),
    };
    let mut svc = service(
        "np",
        vec![frontend(FrontendKind::NodePort, None, 30080, routing)],
        vec![
            backend("10.244.1.5", 8080, 1),
            backend("10.244.2.5", 8080, 1),
        ],
    );
    svc.backends.local = vec![backend("10.244.1.5", 8080, 1)];
    let mut rs = ruleset(vec![svc]);
    let out = emit(&rs, Family::Ipv4);
    assert!(rules_of(&out, "KNC-SERVICES")
        .contains(&"! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j KNC-NODEPORTS"));
    let np = rules_of(&out, "KNC-NODEPORTS");
    assert_eq!(np.len(), 1);
    assert!(np[0].starts_with(
        "-p tcp -m comment --comment \"default/np:http node-port\" -m tcp --dport 30080 -j KNC-FE-"
    ));
    let fe = jump_of(&out, "--dport 30080");
    let rules = rules_of(&out, &fe);
    // node and pods masquerade to the cluster set; external goes local, unmasqueraded.
    assert_eq!(rules.len(), 5);
    assert!(rules[4].starts_with("-j KNC-SVL-"));
    let svl = rules[4].trim_start_matches("-j ");
    assert_eq!(rules_of(&out, svl).len(), 1);

    rs.nodeport_scope = NodePortScope::LocalIn(vec![
        "192.168.1.10/32".parse().unwrap(),
        "2001:db8::10/128".parse().unwrap(),
    ]);
    let out = emit(&rs, Family::Ipv4);
    assert!(rules_of(&out, "KNC-SERVICES")
        .contains(&"-d 192.168.1.10/32 -m addrtype --dst-type LOCAL -j KNC-NODEPORTS"));
    assert!(!out.contains("2001:db8"));
}

#[test]
fn reject_and_drop_mark_in_nat_and_act_in_filter() {
    let svc = service(
        "empty",
        vec![frontend(
            FrontendKind::ClusterIp,
            Some("10.96.0.30"),
            443,
            uniform(Route::Reject),
        )],
        vec![],
    );
    let mut etp = service(
        "etp",
        vec![frontend(
            FrontendKind::LoadBalancer,
            Some("203.0.113.7"),
            80,
            Routing {
                node: fwd(SetKind::Cluster, false),
                pods: fwd(SetKind::Cluster, false),
                external: Route::Drop,
            },
        )],
        vec![backend("10.244.2.9", 80, 1)],
    );
    etp.frontends[0].allowed_sources = vec!["198.51.100.0/24".parse().unwrap()];
    let out = emit(&ruleset(vec![svc, etp]), Family::Ipv4);
    assert_eq!(jump_of(&out, "-d 10.96.0.30/32"), "KNC-MARK-REJECT");
    assert_eq!(
        rules_of(&out, "KNC-MARK-REJECT"),
        vec!["-j MARK --set-xmark 0xc000/0xc000", "-j ACCEPT"]
    );
    assert_eq!(
        rules_of(&out, "KNC-MARK-DROP"),
        vec!["-j MARK --set-xmark 0x8000/0xc000", "-j ACCEPT"]
    );
    let filter = rules_of(&out, "KNC-FILTER");
    assert_eq!(filter[0], "-m mark --mark 0xc000/0xc000 -j KNC-REJECT");
    assert_eq!(filter[1], "-m mark --mark 0x8000/0xc000 -j DROP");
    assert_eq!(
        rules_of(&out, "KNC-REJECT"),
        vec![
            "-p tcp -j REJECT --reject-with tcp-reset",
            "-j REJECT --reject-with icmp-port-unreachable"
        ]
    );
    // Load balancer: source ranges first, then classes; external dropped.
    let fe = jump_of(&out, "-d 203.0.113.7/32");
    let rules = rules_of(&out, &fe);
    assert!(rules[0].starts_with("-j KNC-FW-"));
    let fw = rules[0].trim_start_matches("-j ");
    assert_eq!(
        rules_of(&out, fw),
        vec!["-s 198.51.100.0/24 -j RETURN", "-j KNC-MARK-DROP"]
    );
    assert_eq!(rules.last(), Some(&"-j KNC-MARK-DROP"));
}

#[test]
fn session_affinity_checks_then_sets_recent_lists() {
    let mut svc = cluster_ip_service();
    svc.affinity_timeout_seconds = Some(10800);
    let out = emit(&ruleset(vec![svc]), Family::Ipv4);
    let fe = jump_of(&out, "-d 10.96.0.10/32");
    let svc_chain = jump_of(&out, &format!("-A {fe} -s 10.244.0.0/16"));
    let picks = rules_of(&out, &svc_chain);
    assert_eq!(picks.len(), 4);
    let sep = picks[0].rsplit(' ').next().unwrap();
    assert_eq!(
        picks[0],
        format!(
            "-m recent --rcheck --seconds 10800 --reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}"
        )
    );
    assert!(picks[2].contains("-m statistic"));
    assert_eq!(
        rules_of(&out, sep)[1],
        format!(
            "-p tcp -m recent --set --name {sep} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.5:8080"
        )
    );
}

#[test]
fn ipv6_output_uses_ipv6_spellings_only() {
    let mut svc = service(
        "v6",
        vec![frontend(
            FrontendKind::ClusterIp,
            Some("fd00:96::10"),
            80,
            Routing {
                node: fwd(SetKind::Cluster, true),
                pods: fwd(SetKind::Cluster, false),
                external: fwd(SetKind::Cluster, true),
            },
        )],
        vec![backend("fd00:244:1::5", 8080, 1)],
    );
    svc.affinity_timeout_seconds = Some(60);
    let rs = ruleset(vec![cluster_ip_service(), svc]);
    let out = emit(&rs, Family::Ipv6);
    assert!(out.starts_with("# knc IPv6 ruleset for node node-a; ip6tables-restore input"));
    assert!(out.contains("-d fd00:96::10/128 -p tcp "));
    assert!(out.contains("-s fd00:244::/48 -j KNC-SVC-"));
    assert!(out.contains("-j DNAT --to-destination [fd00:244:1::5]:8080"));
    assert!(out.contains("--mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource"));
    assert!(out.contains("-A KNC-FILTER -d fd00:96::10/128 -j KNC-REJECT"));
    assert!(out.contains("-A KNC-FILTER -d fd00:96::/108 -j DROP"));
    assert!(out.contains("-j REJECT --reject-with icmp6-port-unreachable"));
    assert!(out.contains("! -d ::1/128 -m addrtype --dst-type LOCAL -j KNC-NODEPORTS"));
    assert!(!out.contains("10.96.") && !out.contains("10.244."));
}

#[test]
fn without_cluster_cidr_pods_are_not_told_apart() {
    let mut rs = ruleset(vec![cluster_ip_service()]);
    rs.cluster_cidrs.clear();
    // Lowering makes pods equal external then.
    rs.entry_mut(0).frontends[0].routing.pods = fwd(SetKind::Cluster, true);
    let out = emit(&rs, Family::Ipv4);
    let fe = jump_of(&out, "-d 10.96.0.10/32");
    let rules = rules_of(&out, &fe);
    assert_eq!(
        rules,
        vec!["-j KNC-MARK-MASQ".to_string(), rules[1].to_string()]
    );
}

#[test]
fn output_is_deterministic_and_names_are_short() {
    let rs = ruleset(vec![cluster_ip_service()]);
    let a = emit(&rs, Family::Ipv4);
    assert_eq!(a, emit(&rs.clone(), Family::Ipv4));
    for line in a.lines().filter(|l| l.starts_with(':')) {
        let name = line[1..].split(' ').next().unwrap();
        assert!(name.len() <= 28, "{name}");
        assert!(name.starts_with("KNC-"));
    }
}

#[test]
fn names_from_manifests_cannot_inject_rules() {
    let mut svc = cluster_ip_service();
    svc.namespace = "x\" -j ACCEPT\n-A INPUT -j DROP\n#".into();
    let out = emit(&ruleset(vec![svc]), Family::Ipv4);
    assert!(!out.contains("-A INPUT"));
    assert!(out.contains("--comment \"x__-j_accept_-a_input_-j_drop__/web:http cluster-ip\""));
    let mut rs = ruleset(vec![]);
    rs.node = Some("n\n*filter\n-A INPUT -j DROP".into());
    let out = emit(&rs, Family::Ipv4);
    assert_eq!(out.lines().filter(|l| l.starts_with('*')).count(), 2);
}

#[test]
fn many_cluster_ips_dispatch_through_short_chains() {
    let services = (0..2000u32)
        .map(|i| {
            let ip = format!(
                "10.{}.{}.{}",
                96 + (i % 16),
                (i * 37) % 256,
                (i * 101) % 254 + 1
            );
            let mut s = service(
                &format!("s{i}"),
                vec![frontend(
                    FrontendKind::ClusterIp,
                    Some(&ip),
                    80,
                    uniform(fwd(SetKind::Cluster, false)),
                )],
                vec![backend("10.244.1.5", 80, 1)],
            );
            s.name = format!("s{i:05}");
            s
        })
        .collect();
    let out = emit(&ruleset(services), Family::Ipv4);
    let mut longest = 0;
    let mut counts = std::collections::HashMap::new();
    for l in out.lines().filter_map(|l| {
        l.strip_prefix("-A KNC-DST-")
            .or(l.strip_prefix("-A KNC-SERVICES "))
    }) {
        let chain = l.split(' ').next().unwrap();
        *counts.entry(chain.to_string()).or_insert(0) += 1;
    }
    for c in counts.values() {
        longest = longest.max(*c);
    }
    assert!(longest <= 32, "longest dispatch chain has {longest} rules");
    assert_eq!(out.matches("--dport 80 -j KNC-SVC-").count(), 2000);
    assert!(rules_of(&out, "KNC-SERVICES").len() <= 32);
}

#[test]
fn the_restore_model_renders_emit_and_answers_questions() {
    let rs = ruleset(vec![cluster_ip_service()]);
    let model = restore(&rs, Family::Ipv4);
    assert_eq!(model.family(), Family::Ipv4);
    for hooks in [Hooks::Insert, Hooks::Reinsert, Hooks::Omit] {
        assert_eq!(model.render(hooks), emit_with(&rs, Family::Ipv4, hooks));
    }
    let nat = model.chains("nat");
    assert_eq!(nat[0], "KNC-SERVICES");
    assert!(nat.iter().any(|c| c.starts_with("KNC-SEP-")));
    assert_eq!(model.chains("filter"), ["KNC-FILTER", "KNC-REJECT"]);
    assert!(model.chains("mangle").is_empty());
    assert_eq!(model.rule_count("filter", "KNC-REJECT"), Some(2));
    assert_eq!(model.rule_count("nat", "KNC-MARK-MASQ"), Some(1));
    assert_eq!(model.rule_count("nat", "KNC-NOPE"), None);
    assert_eq!(model.rule_count("raw", "KNC-SERVICES"), None);
}

#[test]
fn render_live_deletes_every_live_hook_copy_and_inserts_one() {
    let model = restore(&ruleset(vec![cluster_ip_service()]), Family::Ipv4);
    // PREROUTING hook duplicated, OUTPUT missing, the rest present once.
    let text = model.render_live(&[2, 0, 1, 1, 1, 1], &[]);
    let services = "-m comment --comment knc-services -j KNC-SERVICES";
    let deletes = text
        .lines()
        .filter(|l| *l == format!("-D PREROUTING {services}"))
        .count();
    assert_eq!(deletes, 2, "{text}");
    assert!(!text.contains(&format!("-D OUTPUT {services}")), "{text}");
    for h in hooks() {
        let insert = format!("-I {} 1 {}", h.chain, h.rule);
        assert_eq!(text.matches(&insert).count(), 1, "{insert}\n{text}");
    }
    // Reinsert is render_live with every hook present once.
    let once = model.render_live(&[1; 6], &[]);
    let reinsert = model.render(Hooks::Reinsert);
    assert_eq!(
        once.lines().skip(1).collect::<Vec<_>>(),
        reinsert.lines().skip(1).collect::<Vec<_>>()
    );
    assert!(once.starts_with(
        "# knc IPv4 ruleset for node node-a; iptables-restore input (hooks reconciled"
    ));
}

#[test]
fn render_live_removes_stale_chains_before_commit() {
    let model = restore(&ruleset(vec![cluster_ip_service()]), Family::Ipv4);
    let stale = [
        ("nat".to_string(), "KNC-SVC-GONE".to_string()),
        ("nat".to_string(), "KNC-SERVICES".to_string()), // still declared: kept
        ("filter".to_string(), "KNC-CIP-GONE".to_string()),
        ("nat".to_string(), "KNC-SVC-GONE".to_string()), // listed twice
    ];
    let text = model.render_live(&[1; 6], &stale);
    let nat = &text[text.find("*nat").unwrap()..text.find("*filter").unwrap()];
    let filter = &text[text.find("*filter").unwrap()..];
    assert_eq!(nat.matches(":KNC-SVC-GONE - [0:0]\n").count(), 1, "{nat}");
    assert!(nat.ends_with("-X KNC-SVC-GONE\nCOMMIT\n"), "{nat}");
    assert!(!text.contains("-X KNC-SERVICES"), "{text}");
    assert_eq!(nat.matches(":KNC-SERVICES - [0:0]").count(), 1);
    assert!(filter.contains(":KNC-CIP-GONE - [0:0]\n"), "{filter}");
    assert!(filter.ends_with("-X KNC-CIP-GONE\nCOMMIT\n"), "{filter}");
    assert!(!filter.contains("KNC-SVC-GONE"));
    // Declared before any rule refers to anything, deleted after the hooks.
    let declared = nat.find(":KNC-SVC-GONE").unwrap();
    assert!(declared < nat.find("-A ").unwrap());
    assert!(nat.find("-I POSTROUTING 1").unwrap() < nat.find("-X KNC-SVC-GONE").unwrap());
}

#[test]
fn removal_deletes_hooks_and_chains_of_what_is_live() {
    assert_eq!(removal(&[0; 6], &[], Family::Ipv4), "");
    assert_eq!(removal(&[], &[], Family::Ipv6), "");
    let live = [
        ("nat".to_string(), "KNC-SERVICES".to_string()),
        ("nat".to_string(), "KNC-SEP-ABC".to_string()),
    ];
    let text = removal(&[2, 1, 0, 0, 0, 0], &live, Family::Ipv6);
    assert_eq!(
        text,
        "# knc IPv6 removal; ip6tables-restore --noflush input\n\
         *nat\n\
         :KNC-SERVICES - [0:0]\n\
         :KNC-SEP-ABC - [0:0]\n\
         -D PREROUTING -m comment --comment knc-services -j KNC-SERVICES\n\
         -D PREROUTING -m comment --comment knc-services -j KNC-SERVICES\n\
         -D OUTPUT -m comment --comment knc-services -j KNC-SERVICES\n\
         -X KNC-SERVICES\n\
         -X KNC-SEP-ABC\n\
         COMMIT\n"
    );
    let hooks_only = removal(&[0, 0, 0, 1, 0, 0], &[], Family::Ipv4);
    assert!(!hooks_only.contains("*nat"), "{hooks_only}");
    assert!(hooks_only.contains(
        "*filter\n-D INPUT -m conntrack --ctstate NEW -m comment --comment knc-filter -j KNC-FILTER\nCOMMIT\n"
    ));
}

#[test]
fn route_ids_are_the_spelling_chain_names_were_first_hashed_from() {
    // Chain names hash these strings: they must never change.
    for set in [SetKind::Cluster, SetKind::Local] {
        for masquerade in [false, true] {
            let r = Route::Forward { set, masquerade };
            assert_eq!(route_id(r), format!("fwd-{set:?}-{masquerade}"));
        }
    }
    assert_eq!(route_id(Route::Reject), "reject");
    assert_eq!(route_id(Route::Drop), "drop");
}

#[test]
fn the_model_compares_and_prints_by_content() {
    let rs = ruleset(vec![cluster_ip_service()]);
    let (a, b) = (restore(&rs, Family::Ipv4), restore(&rs, Family::Ipv4));
    assert_eq!(a, b);
    assert_ne!(a, restore(&rs, Family::Ipv6));
    let nat = a.table("nat").unwrap();
    let rules = nat.rules("KNC-MARK-DROP").unwrap();
    assert_eq!(rules, ["-j MARK --set-xmark 0x8000/0xc000", "-j ACCEPT"]);
    assert!(format!("{nat:?}")
        .contains("\"KNC-MARK-DROP\": [\"-j MARK --set-xmark 0x8000/0xc000\", \"-j ACCEPT\"]"));
    assert!(!nat.contains("KNC-NOPE") && !nat.contains(&"K".repeat(40)));
}
