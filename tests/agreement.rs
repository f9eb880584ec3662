//! `knc compile` and `knc lint` agree: what lowering decides (a frontend
//! two Services claim, a Service compiled to nothing) is what lint reports,
//! because lint reads lowering's decisions instead of deciding again. And
//! `knc explain` says what the nft output does with session affinity.

mod common;

use std::collections::BTreeSet;

use knc_compiler::back::nft::tables;
use knc_compiler::compile::{compile, NodeChoice, Settings};
use knc_compiler::explain::{explain, Query};
use knc_compiler::front::{Code, SourceFile};
use knc_compiler::ir::{Family, FrontendKind, Route};

fn inputs(text: &str) -> Vec<SourceFile> {
    vec![SourceFile::new("in.yaml", text)]
}

fn service(name: &str, spec: &str) -> String {
    format!("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

/// Regression: `203.0.113.5` and `203.000.113.005` are one address.
/// Compile kept it for the first Service only, and lint, comparing raw
/// strings, said nothing.
#[test]
fn an_address_written_two_ways_is_contested() {
    let text = service(
        "a",
        "  clusterIP: 10.96.0.1\n  externalIPs: [203.0.113.5]\n  ports: [{port: 80}]\n",
    ) + &service(
        "b",
        "  clusterIP: 10.96.0.2\n  externalIPs: [203.000.113.005]\n  ports: [{port: 80}]\n",
    );
    let files = inputs(&text);
    let ruleset = compile(&files, vec![], &Settings::default(), &NodeChoice::Agnostic)
        .expect("valid")
        .into_single();
    let external = |name: &str| {
        ruleset
            .services
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| &s.frontends)
            .filter(|f| f.kind == FrontendKind::ExternalIp)
            .count()
    };
    assert_eq!(
        (external("a"), external("b")),
        (1, 0),
        "a keeps the address"
    );

    let lint = knc_compiler::lint(&files);
    let contested: Vec<_> = lint
        .iter()
        .filter(|d| d.code == Code::ContestedAddress)
        .collect();
    assert_eq!(contested.len(), 1, "{lint:#?}");
    let d = contested[0];
    assert_eq!(
        d.message,
        "Service `default/b` claims 203.0.113.5:80/TCP, which Service `default/a` claims too"
    );
    assert!(d
        .help
        .as_deref()
        .unwrap()
        .contains("compiles it for Service `default/a`"));
    assert_eq!(d.position().as_deref(), Some("in.yaml:14:9"), "at b's name");
}

/// Regression: a Service without a ClusterIP (as kept in Git) gets no rule
/// from compile, as kube-proxy skips it; lint said every connection would
/// be refused. Now lint says it is not compiled, and nothing else.
#[test]
fn a_service_without_cluster_ip_is_not_compiled_and_lint_says_so() {
    let text = service(
        "git",
        "  type: NodePort\n  externalIPs: [203.0.113.9]\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    let files = inputs(&text);
    let ruleset = compile(&files, vec![], &Settings::default(), &NodeChoice::Agnostic)
        .expect("valid")
        .into_single();
    assert!(ruleset.services.is_empty(), "{:#?}", ruleset.services);

    let lint = knc_compiler::lint(&files);
    let codes: Vec<Code> = lint.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec![Code::UnallocatedClusterIp], "{lint:#?}");
    assert_eq!(
        lint[0].message,
        "Service `default/git` has no clusterIP (not yet allocated): knc compiles nothing for it"
    );
    assert!(!lint[0].message.contains("refused"));
}

/// Session affinity is remembered per Service port. `knc explain` says so
/// for every address of the port, naming them all, and the nft output
/// agrees: every one of those addresses reaches the same record chain (one
/// memory for the port), and each reaches a lookup chain for exactly the
/// backend sets explain describes for it, the same chain for every address.
#[test]
fn explain_names_the_addresses_that_share_affinity_in_the_nft_output() {
    let dir = common::root().join("fixtures/session-affinity-every-address");
    let ruleset = common::fixture_ruleset(&dir);
    let model = tables(&ruleset);
    let mut checked = 0;
    for entry in ruleset
        .services
        .iter()
        .filter(|s| s.affinity_timeout_seconds.is_some())
    {
        let table = &model.tables[match entry.family {
            Family::Ipv4 => 0,
            Family::Ipv6 => 1,
        }];
        let value = |map: &str, key: &str| -> Option<String> {
            table
                .elements
                .get(map)?
                .iter()
                .find(|e| e.key() == key)
                .and_then(|e| e.value().map(str::to_string))
        };
        let mut records = BTreeSet::new();
        let mut lookups = BTreeSet::new();
        let mut sentences = BTreeSet::new();
        for frontend in &entry.frontends {
            let (to, key, kind) = match frontend.address {
                Some(address) if frontend.kind != FrontendKind::NodePort => (
                    address,
                    format!("{address} . tcp . {}", frontend.port),
                    "vip",
                ),
                _ => (
                    *ruleset
                        .node_addresses
                        .iter()
                        .find(|a| Family::of(a) == entry.family)
                        .expect("a node address of the family"),
                    format!("tcp . {}", frontend.port),
                    "nodeport",
                ),
            };
            let query = Query {
                to,
                port: frontend.port,
                protocol: entry.protocol,
                from: None,
                from_this_node: false,
                arrives_on: None,
            };
            let text = explain(&ruleset, &query);
            let sentence = text
                .lines()
                .find(|l| l.trim_start().starts_with("Session affinity"))
                .unwrap_or_else(|| panic!("no affinity sentence for {key}:\n{text}"));
            sentences.insert(sentence.trim().to_string());
            let record_map = if kind == "vip" {
                "affinity-vips"
            } else {
                "affinity-nodeports"
            };
            records.insert(value(record_map, &key).unwrap_or_else(|| panic!("{key} not recorded")));
            for route in [
                frontend.routing.node,
                frontend.routing.pods,
                frontend.routing.external,
            ] {
                let Route::Forward { set, .. } = route else {
                    continue;
                };
                let set = format!("{set:?}").to_lowercase();
                assert!(text.contains(if set == "local" {
                    "node-local"
                } else {
                    "cluster-wide"
                }));
                let lookup = value(&format!("affinity-{kind}-{set}"), &key)
                    .unwrap_or_else(|| panic!("{key} has no {set} lookup"));
                lookups.insert((set, lookup));
            }
        }
        assert_eq!(
            sentences.len(),
            1,
            "explain differs between addresses: {sentences:#?}"
        );
        let sentence = sentences.first().unwrap();
        for frontend in &entry.frontends {
            let named = match frontend.address {
                Some(address) => format!("{address}"),
                None => format!("NodePort {}", frontend.port),
            };
            assert!(sentence.contains(&named), "{sentence} lacks {named}");
        }
        assert_eq!(records.len(), 1, "one memory for the port: {records:?}");
        let sets: BTreeSet<&String> = lookups.iter().map(|(set, _)| set).collect();
        assert_eq!(
            lookups.len(),
            sets.len(),
            "one lookup chain per set: {lookups:?}"
        );
        assert_eq!(
            sentence.contains("remembered apart"),
            sets.len() == 2,
            "{sentence} / {sets:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "the fixture's Service port in both families");
}
