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
        let json = serde_json::to_string(&ruleset).expect("json");
        let t_json = t.elapsed();
        eprintln!(
            "load {:?} convert {:?} lower {:?} tables {:?} diff {:?} ({} ops) record-json {:?} ({} bytes)",
            t_load, t_convert, t_lower, t_tables, t_diff, tx.ops().len(), t_json, json.len()
        );
    }
}
