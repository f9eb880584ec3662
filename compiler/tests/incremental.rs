//! `back::nft::update_tables` is invisible: whenever it works a change out
//! from the changed IR entries alone, its tables are the new ruleset's
//! tables, and its transaction takes a kernel holding the old ruleset to
//! exactly what loading the new one gives.

mod common;

use common::Rng;
use std::net::IpAddr;
use std::path::Path;

use knc_compiler::back::nft::{tables, update_tables, Fake, Transaction};
use knc_compiler::compile::{compile, NodeChoice, Settings};
use knc_compiler::front::SourceFile;
use knc_compiler::ir::{Backend, Ruleset};

/// Every fixture directory's rulesets, one per node (and node-agnostic).
fn fixture_rulesets() -> Vec<(String, Ruleset)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "json")
                )
            })
            .collect();
        files.sort();
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|p| SourceFile::new(p.display().to_string(), std::fs::read_to_string(p).unwrap()))
            .collect();
        for choice in [NodeChoice::Every, NodeChoice::Agnostic] {
            if let Ok(compiled) = compile(&sources, vec![], &Settings::default(), &choice) {
                for ruleset in compiled.rulesets {
                    out.push((dir.display().to_string(), ruleset));
                }
            }
        }
    }
    out
}

/// One change to one entry's backends, as endpoint churn makes them.
fn mutate(ruleset: &Ruleset, rng: &mut Rng) -> Ruleset {
    let mut new = ruleset.clone();
    if new.services.is_empty() {
        return new;
    }
    let i = rng.below(new.services.len());
    let entry = new.entry_mut(i);
    let v6 = entry.family == knc_compiler::ir::Family::Ipv6;
    let fresh = |n: u64| -> IpAddr {
        if v6 {
            format!("fd00:99::{:x}", n % 60000 + 1).parse().unwrap()
        } else {
            format!("10.99.{}.{}", (n >> 8) % 250, n % 250 + 1)
                .parse()
                .unwrap()
        }
    };
    match rng.below(6) {
        0 => {
            entry.backends.cluster.pop();
        }
        1 => {
            let port = entry.backends.cluster.first().map_or(8080, |b| b.port);
            let backend = Backend {
                address: fresh(rng.next()),
                port,
                weight: 1,
            };
            entry.backends.cluster.push(backend.clone());
            if rng.below(2) == 0 {
                entry.backends.local.push(backend);
            }
        }
        2 => {
            entry.backends.local.pop();
        }
        3 => {
            // A backend of another entry (a pod behind two Services).
            let other = &ruleset.services[rng.below(ruleset.services.len())];
            if other.family == entry.family {
                if let Some(b) = other
                    .backends
                    .local
                    .first()
                    .or(other.backends.cluster.first())
                {
                    entry.backends.cluster.push(b.clone());
                    entry.backends.local.push(b.clone());
                }
            }
        }
        4 => {
            new.services.remove(i);
        }
        _ => {
            if let Some(b) = entry.backends.cluster.first_mut() {
                b.port = b.port.wrapping_add(1).max(1);
            }
        }
    }
    new
}

#[test]
fn incremental_tables_are_the_new_rulesets_tables() {
    let rulesets = fixture_rulesets();
    assert!(rulesets.len() > 40, "rulesets: {}", rulesets.len());
    let mut rng = Rng(0x5eed_cafe);
    let (mut worked, mut declined) = (0, 0);
    for (name, ruleset) in &rulesets {
        let mut old = ruleset.clone();
        let mut old_tables = tables(&old);
        let mut kernel = Fake::new();
        kernel.apply(&Transaction::replace(&old_tables)).unwrap();
        for step in 0..12 {
            // Only changes that keep the IR's invariants (a Forward route
            // names a non-empty set...), as lowering's output does.
            let Some(new) = (0..20)
                .map(|_| mutate(&old, &mut rng))
                .find(|r| knc_compiler::ir::validate(r).is_ok())
            else {
                continue;
            };
            let expected = tables(&new);
            match update_tables(&old, old_tables, &new) {
                Ok((got, transaction)) => {
                    worked += 1;
                    assert_eq!(
                        got.normalised(),
                        expected.normalised(),
                        "{name} step {step}: tables"
                    );
                    kernel
                        .apply(&transaction)
                        .unwrap_or_else(|e| panic!("{name} step {step}: {e}"));
                    assert_eq!(
                        kernel.tables(),
                        expected.normalised(),
                        "{name} step {step}: kernel"
                    );
                    old_tables = got;
                }
                Err(_) => {
                    declined += 1;
                    kernel.apply(&Transaction::replace(&expected)).unwrap();
                    old_tables = expected;
                }
            }
            old = new;
        }
    }
    eprintln!("incremental: {worked} worked, {declined} declined");
    assert!(
        worked > declined,
        "the incremental path should take most endpoint changes: {worked} worked, {declined} declined"
    );
}
