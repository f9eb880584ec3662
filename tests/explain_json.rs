//! `knc explain --output json`: snapshots of the binary's JSON for a few
//! fixtures, and proof that the JSON and the text tell the same verdict,
//! the same backends and the same probabilities for every frontend of
//! every fixture, from every kind of source.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use knc_compiler::explain::{explain, explanation, Query, Reason, SourceVerdict, Verdict};
use knc_compiler::ir::{Family, FrontendKind, Ruleset, SetKind};

/// A `--to`, an optional `--from` and further arguments.
type Probe<'a> = (&'a str, Option<&'a str>, &'a [&'a str]);

/// `knc explain --output json` of `fixture` for each `--to`/`--from` pair,
/// each output as printed after a comment line naming its query.
fn explain_json(fixture: &str, queries: &[Probe]) -> String {
    let mut all = String::new();
    for (to, from, extra) in queries {
        let mut args = vec![
            "explain".to_string(),
            format!("fixtures/{fixture}"),
            "--node".into(),
            "node1".into(),
            "--service-cidr".into(),
            "10.96.0.0/16".into(),
            "--to".into(),
            to.to_string(),
            "--output".into(),
            "json".into(),
        ];
        if let Some(from) = from {
            args.extend(["--from".to_string(), from.to_string()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = Command::new(env!("CARGO_BIN_EXE_knc"))
            .current_dir(common::root())
            .args(&args)
            .output()
            .expect("knc runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{fixture} {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).expect("UTF-8");
        serde_json::from_str::<serde_json::Value>(&printed)
            .expect("explain --output json prints one JSON document");
        all.push_str(&format!("# knc {}\n{printed}", args.join(" ")));
    }
    all
}

#[test]
fn json_explanations_of_fixtures() {
    let cases: &[(&str, &[Probe])] = &[
        (
            "etp-local",
            &[
                ("172.30.0.1:30010", None, &[]),
                ("203.0.113.10:80", Some("192.0.2.1"), &[]),
                ("10.96.1.11:80", Some("10.244.2.9"), &[]),
            ],
        ),
        (
            "session-affinity",
            &[("10.96.0.100:80", Some("10.244.2.9"), &[])],
        ),
        (
            "source-ranges",
            &[
                ("203.0.113.30:443", Some("192.0.2.1"), &[]),
                ("203.0.113.30:443", Some("198.51.100.7"), &[]),
            ],
        ),
        (
            "gateway-weighted",
            &[
                ("203.0.113.20:9000", Some("198.51.100.7"), &[]),
                ("203.0.113.20:53/udp", Some("10.244.2.9"), &[]),
            ],
        ),
        (
            "no-endpoints",
            &[
                ("10.96.0.60:80", None, &[]),
                ("10.96.0.60:81", None, &[]),
                ("10.96.9.9:80", None, &[]),
                ("192.0.2.200:80", None, &[]),
            ],
        ),
        (
            "source-hash",
            &[
                ("10.96.0.90:11211", Some("10.244.3.7"), &[]),
                ("[fd00:10:96::90]:11211", Some("fd00:10:244:3::7"), &[]),
                // The client is a backend (hairpin), a process on the node
                // from an address its Node object does not list.
                ("10.96.0.90:11211", Some("10.244.1.5"), &[]),
                (
                    "10.96.0.90:11211",
                    Some("192.168.99.1"),
                    &["--from-this-node"],
                ),
            ],
        ),
        (
            "detect-local-interface-prefix",
            &[
                (
                    "10.96.1.10:80",
                    Some("10.244.2.9"),
                    &["--in-interface", "cali12"],
                ),
                (
                    "10.96.1.10:80",
                    Some("10.244.2.9"),
                    &["--in-interface", "eth0"],
                ),
            ],
        ),
    ];
    for (fixture, queries) in cases {
        let json = explain_json(fixture, queries);
        common::in_snapshot_dir(|| {
            insta::assert_snapshot!(format!("explain@{fixture}.json"), json);
        });
    }
}

/// What one line of the text says, reduced to what the JSON says.
#[derive(Debug, PartialEq)]
enum Told {
    Forwarded {
        masquerade: bool,
        set: SetKind,
        shares: Vec<String>,
    },
    Rejected,
    Dropped,
    Untouched,
}

/// The verdict a line of `explain`'s text states after `From …: ` (or
/// after the target when no frontend matches), with the backend lines that
/// follow it.
fn told(line: &str, following: &[&str]) -> Told {
    if line.starts_with("refused") {
        return Told::Rejected;
    }
    if line.starts_with("dropped") {
        return Told::Dropped;
    }
    if line.starts_with("not a Service address") {
        return Told::Untouched;
    }
    let masquerade = line.starts_with("masqueraded");
    assert!(
        masquerade || line.starts_with("source kept"),
        "an unknown verdict: {line}"
    );
    let set = if line.contains("node-local") {
        SetKind::Local
    } else {
        assert!(line.contains("cluster-wide"), "{line}");
        SetKind::Cluster
    };
    let shares = following
        .iter()
        .take_while(|l| l.starts_with("    "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", words[0], words[1])
        })
        .collect();
    Told::Forwarded {
        masquerade,
        set,
        shares,
    }
}

/// The JSON's verdict for one source, reduced as [`told`] reduces text.
fn reduced(verdict: &SourceVerdict) -> Told {
    match &verdict.verdict {
        Verdict::Forwarded {
            masquerade,
            backend_set,
            backends,
            ..
        } => Told::Forwarded {
            masquerade: *masquerade,
            set: *backend_set,
            shares: backends
                .iter()
                .map(|b| {
                    let endpoint = match b.address {
                        IpAddr::V4(ip) => format!("{ip}:{}", b.port),
                        IpAddr::V6(ip) => format!("[{ip}]:{}", b.port),
                    };
                    format!("{endpoint} {:.1}", 100.0 * b.probability)
                })
                .collect(),
        },
        Verdict::Rejected { .. } => Told::Rejected,
        Verdict::Dropped { .. } => Told::Dropped,
        Verdict::NoFrontend => Told::Untouched,
    }
}

/// Asserts that text and JSON agree for `query`; returns how many source
/// verdicts were compared.
fn agree(name: &str, ruleset: &Ruleset, query: &Query) -> usize {
    let text = explain(ruleset, query);
    let json = explanation(ruleset, query);
    let context = || format!("{name} {query:?}\n{text}{json:#?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        json.frontend.is_some(),
        lines[0].contains(" is the "),
        "{}",
        context()
    );
    if json.frontend.is_none() {
        let (_, said) = lines[0].split_once(": ").expect("target: verdict");
        let expected = told(said, &[]);
        for source in &json.sources {
            assert_eq!(reduced(source), expected, "{}", context());
        }
        return json.sources.len();
    }
    if text.contains("the source is outside those ranges") {
        for source in &json.sources {
            assert_eq!(
                source.verdict,
                Verdict::Dropped {
                    reason: Reason::SourceOutsideRanges
                },
                "{}",
                context()
            );
        }
        return json.sources.len();
    }
    let said: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("From "))
        .map(|(i, l)| (i, l.split_once(": ").expect("From who: verdict").1))
        .collect();
    assert_eq!(said.len(), json.sources.len(), "{}", context());
    for ((i, line), source) in said.iter().zip(&json.sources) {
        assert_eq!(
            told(line, &lines[i + 1..]),
            reduced(source),
            "{}",
            context()
        );
    }
    json.sources.len()
}

/// Addresses to ask from: none, the node, a pod, an outsider, and one
/// inside each source range.
fn sources(ruleset: &Ruleset, family: Family) -> Vec<Option<IpAddr>> {
    let mut from = vec![None];
    from.extend(
        ruleset
            .node_addresses
            .iter()
            .filter(|a| Family::of(a) == family)
            .map(|a| Some(*a)),
    );
    from.extend(
        ruleset
            .cluster_cidrs
            .iter()
            .filter(|c| Family::of(&c.addr()) == family)
            .filter_map(|c| c.hosts().nth(7))
            .map(Some),
    );
    from.push(Some(match family {
        Family::Ipv4 => "192.0.2.77".parse().unwrap(),
        Family::Ipv6 => "2001:db8:77::7".parse().unwrap(),
    }));
    for entry in &ruleset.services {
        for frontend in &entry.frontends {
            from.extend(
                frontend
                    .allowed_sources
                    .iter()
                    .filter(|r| Family::of(&r.addr()) == family)
                    .map(|r| Some(r.addr())),
            );
        }
    }
    from
}

#[test]
fn json_and_text_agree_on_every_verdict() {
    let mut compared = 0;
    let mut forwarded = 0;
    for dir in common::compile_fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ruleset = common::fixture_ruleset(Path::new(&dir));
        let mut queries = Vec::new();
        for entry in &ruleset.services {
            for frontend in &entry.frontends {
                let to = match frontend.address {
                    Some(address) if frontend.kind != FrontendKind::NodePort => Some(address),
                    _ => ruleset
                        .node_addresses
                        .iter()
                        .copied()
                        .find(|a| Family::of(a) == entry.family),
                };
                let Some(to) = to else { continue };
                for from in sources(&ruleset, entry.family) {
                    queries.push(Query {
                        to,
                        port: frontend.port,
                        protocol: entry.protocol,
                        from,
                        from_this_node: false,
                        arrives_on: None,
                    });
                }
                // A wrong port on the same address.
                queries.push(Query {
                    to,
                    port: frontend.port.wrapping_add(1),
                    protocol: entry.protocol,
                    from: None,
                    from_this_node: false,
                    arrives_on: None,
                });
            }
        }
        for cidr in &ruleset.service_cidrs {
            if let Some(to) = cidr.hosts().nth(4000) {
                queries.push(Query {
                    to,
                    port: 80,
                    protocol: knc_compiler::ir::Protocol::Tcp,
                    from: None,
                    from_this_node: false,
                    arrives_on: None,
                });
            }
        }
        for query in &queries {
            compared += agree(&name, &ruleset, query);
            forwarded += explanation(&ruleset, query)
                .sources
                .iter()
                .filter(|s| matches!(s.verdict, Verdict::Forwarded { .. }))
                .count();
        }
    }
    assert!(compared > 500, "only {compared} verdicts compared");
    assert!(forwarded > 100, "only {forwarded} forwarded verdicts");
}
