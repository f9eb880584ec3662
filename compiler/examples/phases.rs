//! Times each phase of compiling one input for one node, the phases a
//! reconcile round goes through before the kernel: load (parse + type),
//! convert (the model), lower (the IR), the nft model, and the transaction
//! between it and a model of the same input. Timing only.
//!
//! usage: phases FILE [NODE] [RUNS]
use std::time::Instant;

use knc_compiler::back::nft::{tables, Transaction};
use knc_compiler::front::{self, SourceFile};
use knc_compiler::{kinds, lower};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: phases FILE [NODE] [RUNS]");
    let node = args.next();
    let runs: usize = args.next().map_or(5, |r| r.parse().expect("RUNS"));
    let text = std::fs::read_to_string(&path).expect("readable file");
    session_rounds(&text, node.clone());
    let files = vec![SourceFile::new(path, text)];
    let options = lower::Options {
        node,
        settings: lower::Settings::default(),
    };
    for _ in 0..runs {
        let t = Instant::now();
        let loaded = front::load(&files);
        let t_load = t.elapsed();
        let t = Instant::now();
        let converted = kinds::convert(&loaded);
        let t_convert = t.elapsed();
        let t = Instant::now();
        let ruleset = lower::lower(&converted.cluster, &options).expect("lowered");
        let t_lower = t.elapsed();
        let t = Instant::now();
        let new = tables(&ruleset);
        let t_tables = t.elapsed();
        let old = tables(&ruleset);
        let t = Instant::now();
        let tx = Transaction::between(Some(&old), &new);
        let t_diff = t.elapsed();
        let t = Instant::now();
        let copy = ruleset.clone();
        let t_clone_ir = t.elapsed();
        drop(copy);
        let t = Instant::now();
        let copy = converted.cluster.clone();
        let t_clone_model = t.elapsed();
        drop(copy);
        eprintln!("clone ir {t_clone_ir:?} clone model {t_clone_model:?}");
        let t = Instant::now();
        let json = serde_json::to_string(&ruleset).expect("json");
        let t_json = t.elapsed();
        eprintln!(
            "load {:?} convert {:?} lower {:?} tables {:?} diff {:?} ({} ops) record-json {:?} ({} bytes)",
            t_load, t_convert, t_lower, t_tables, t_diff, tx.ops().len(), t_json, json.len()
        );
    }
}

/// A session's rounds: the first compile, then one slice edited per round.
#[allow(dead_code)]
fn session_rounds(text: &str, node: Option<String>) {
    use knc_compiler::compile::{NodeChoice, Settings};
    use knc_compiler::session::Session;
    let choice = node.map_or(NodeChoice::Agnostic, NodeChoice::Named);
    let mut session = Session::default();
    let mut text = text.to_string();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    for round in 0..rounds {
        if round > 0 {
            let needle = "addresses: [\"10.128.39.";
            let at = text.find(needle).expect("a slice to edit") + needle.len();
            let digit = if &text[at..at + 1] == "1" { "2" } else { "1" };
            text.replace_range(at..at + 1, digit);
        }
        let files = vec![SourceFile::new("cluster.yaml", text.clone())];
        let t = Instant::now();
        let compiled = session
            .compile(&files, vec![], &Settings::default(), &choice)
            .expect("compiles");
        eprintln!(
            "session round {round}: {:?} path {:?} parsed {} warnings {}",
            t.elapsed(),
            session.path(),
            session.parsed(),
            compiled.warnings.len()
        );
    }
}
