//! Gateway API weights through both back ends: the bundled
//! `fixtures/gateway-weighted` routes (a TCPRoute weighted 90/10 whose
//! 90 is split over two endpoints, a UDPRoute weighted 1/2/7 with a
//! weight-0 ref and a ref to a missing Service) give every backendRef
//! exactly its share in the nft slots, the iptables statistic
//! probabilities and `knc explain`.

mod common;

use knc_compiler::back::{self, nft, Format};
use knc_compiler::explain::{explanation, Query, Verdict};
use knc_compiler::ir::{Protocol, Ruleset};

fn ruleset() -> Ruleset {
    common::fixture_ruleset(&common::root().join("fixtures/gateway-weighted"))
}

/// The route entry named `name`: its backends' (address, weight) and nft
/// slots.
fn route(ruleset: &Ruleset, name: &str) -> (Vec<(String, u32)>, Vec<u32>) {
    let entry = ruleset
        .services
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no entry {name}"));
    let backends = entry
        .backends
        .cluster
        .iter()
        .map(|b| (b.address.to_string(), b.weight))
        .collect();
    (backends, nft::slots(&entry.backends.cluster))
}

#[test]
fn weights_become_exact_nft_slots() {
    let ruleset = ruleset();
    let (tcp, tcp_slots) = route(&ruleset, "tcproute/shop");
    assert_eq!(
        tcp,
        [
            ("10.244.1.11".to_string(), 9),
            ("10.244.2.11".to_string(), 9),
            ("10.244.2.12".to_string(), 2),
        ],
        "90 over web-v1's two endpoints, 10 to web-v2's one"
    );
    assert_eq!(tcp_slots, [9, 9, 2]);
    let (udp, udp_slots) = route(&ruleset, "udproute/dns");
    let addresses: Vec<&str> = udp.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        addresses,
        ["10.244.1.21", "10.244.1.22", "10.244.1.23"],
        "weight 0 and the missing Service get nothing"
    );
    assert_eq!(udp_slots, [1, 2, 7]);
}

#[test]
fn weights_become_exact_iptables_probabilities() {
    let text = back::emit(Format::Iptables, &ruleset());
    // Each statistic rule takes its backend's share of what is left.
    for probability in [
        "0.4500000000", // 9/20
        "0.8181818182", // 9/11
        "0.1000000000", // 1/10
        "0.2222222222", // 2/9
    ] {
        assert!(
            text.contains(&format!("--probability {probability} ")),
            "no statistic rule with probability {probability}:\n{text}"
        );
    }
}

#[test]
fn explain_gives_each_ref_its_share() {
    let ruleset = ruleset();
    let cases: [(&str, u16, Protocol, &[f64]); 2] = [
        ("203.0.113.20", 9000, Protocol::Tcp, &[0.45, 0.45, 0.1]),
        ("203.0.113.20", 53, Protocol::Udp, &[0.1, 0.2, 0.7]),
    ];
    for (to, port, protocol, want) in cases {
        let query = Query {
            to: to.parse().unwrap(),
            port,
            protocol,
            from: None,
            from_this_node: false,
            arrives_on: None,
        };
        let explained = explanation(&ruleset, &query);
        assert!(!explained.sources.is_empty());
        for source in &explained.sources {
            let Verdict::Forwarded { backends, .. } = &source.verdict else {
                panic!("{to}:{port} not forwarded: {explained:?}");
            };
            let got: Vec<f64> = backends.iter().map(|b| b.probability).collect();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "{to}:{port}: {got:?}, want {want:?}");
            }
            assert_eq!(got.len(), want.len());
        }
    }
}
