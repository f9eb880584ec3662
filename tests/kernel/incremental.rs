//! `knc diff --format nft OLD NEW` applied on top of OLD's ruleset leaves the kernel with
//! exactly NEW's ruleset (compared as nft's JSON listing, element order
//! aside), and real packets follow the change.

use std::process::Command;

use serde_json::Value;

use crate::harness::{From, Pod, Rules, Topology};
use crate::manifests::{cluster, ep, http_service, http_slice};
use crate::require_kernel;

/// `knc diff --format nft` between two manifest sets, for node1: exit 1
/// (something changes) or 0, with nothing on stderr.
fn diff(dir: &std::path::Path, old: &str, new: &str) -> String {
    std::fs::create_dir_all(dir.join("old")).unwrap();
    std::fs::create_dir_all(dir.join("new")).unwrap();
    std::fs::write(dir.join("old/cluster.yaml"), old).unwrap();
    std::fs::write(dir.join("new/cluster.yaml"), new).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_knc"))
        .arg("diff")
        .arg(dir.join("old"))
        .arg(dir.join("new"))
        .args(["--node", "node1", "--cluster-cidr", "10.244.0.0/16"])
        .args(["--service-cidr", "10.96.0.0/16", "--format", "nft"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && out.stderr.is_empty(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// nft's JSON listing of knc's tables without handles, with every set's
/// elements sorted: equal exactly when the rulesets are equal.
pub fn normalised(topo: &Topology) -> Value {
    let listing: Value = serde_json::from_str(&topo.nft(&["-j", "list", "ruleset"])).unwrap();
    let mut objects: Vec<Value> = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .cloned()
        .collect();
    for object in &mut objects {
        for body in object.as_object_mut().unwrap().values_mut() {
            let body = body.as_object_mut().unwrap();
            body.remove("handle");
            if let Some(Value::Array(elements)) = body.get_mut("elem") {
                elements.sort_by_key(|e| e.to_string());
            }
        }
    }
    objects.sort_by_key(|o| o.to_string());
    Value::Array(objects)
}

#[test]
fn diff_applied_on_top_equals_a_full_load() {
    require_kernel!("diff_applied_on_top_equals_a_full_load");
    let mut topo = Topology::build(
        "incr",
        &[
            Pod::web("in-a", "10.244.1.1"),
            Pod::web("in-b", "10.244.1.2"),
            Pod::web("in-c", "10.244.1.3"),
            Pod::web("in-r", "10.244.2.1"),
        ],
    );
    let old = cluster(&[
        &http_service("stay", "10.96.2.1"),
        &http_slice("stay", &[ep("10.244.1.1"), ep("10.244.1.2")]),
        &http_service("gone", "10.96.2.2"),
        &http_slice("gone", &[ep("10.244.1.3")]),
        &http_service("moves", "10.96.2.3"),
        &http_slice("moves", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]);
    // `moves` changes endpoints and grows to three (a new backend group);
    // `gone` disappears (its one-backend group with it); `fresh` appears.
    let new = cluster(&[
        &http_service("stay", "10.96.2.1"),
        &http_slice("stay", &[ep("10.244.1.1"), ep("10.244.1.2")]),
        &http_service("moves", "10.96.2.3"),
        &http_slice(
            "moves",
            &[ep("10.244.1.2"), ep("10.244.1.3"), ep("10.244.2.1")],
        ),
        &http_service("fresh", "10.96.2.4"),
        &http_slice("fresh", &[ep("10.244.2.1"), ep("10.244.1.3")]),
    ]);
    let work = tempfile::tempdir().unwrap();
    let delta = diff(work.path(), &old, &new);
    assert!(delta.starts_with("# knc incremental update"), "{delta}");
    assert!(!delta.contains("delete table"), "{delta}");

    let full = topo.load_manifests(&new);
    let expected = normalised(&topo);
    topo.load_manifests(&old);
    topo.tcp(From::Client, "10.96.2.2:80", 3)
        .assert_pods(&["in-c"]);
    topo.load_nft(&delta);
    assert_eq!(
        normalised(&topo),
        expected,
        "delta differs from a full load:\n{delta}"
    );
    // The delta made node1's rules those of a full load of `new`.
    topo.rules_are(Rules::Compiled(vec![full.inputs]));

    topo.tcp(From::Client, "10.96.2.1:80", 30)
        .assert_pods(&["in-a", "in-b"]);
    topo.tcp(From::Client, "10.96.2.3:80", 40)
        .assert_pods(&["in-b", "in-c", "in-r"]);
    topo.tcp(From::Client, "10.96.2.4:80", 30)
        .assert_pods(&["in-c", "in-r"]);
    topo.tcp(From::Client, "10.96.2.2:80", 2).assert_timeout();
}
