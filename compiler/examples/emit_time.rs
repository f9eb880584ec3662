//! Times the back ends alone on one ruleset: the nft emitter against the
//! iptables emitter (`iptables::emit_with`, IPv4, hooks inserted).
//!
//! usage: emit_time IR.json [RUNS]
//!
//! IR.json is `knc compile --format ir` output (so the front end and the
//! model are not part of the measure). Prints each run and the medians on
//! stderr, and the iptables/nft ratio of the medians. Used for issue #10
//! item 5 (iptables emit within 2× of nft emit at 10,000 × 10).
use std::time::Instant;

use knc_compiler::back::{self, iptables, Format};
use knc_compiler::ir::{Family, Ruleset};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: emit_time IR.json [RUNS]");
    let runs: usize = args.next().map_or(7, |r| r.parse().expect("RUNS"));
    let text = std::fs::read_to_string(&path).expect("readable IR file");
    let ruleset: Ruleset = serde_json::from_str(&text).expect("IR JSON");
    let mut nft = Vec::new();
    let mut ipt = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        let a = back::emit(Format::Nft, &ruleset);
        let tn = t.elapsed().as_secs_f64();
        drop(std::hint::black_box(a));
        let t = Instant::now();
        let b = iptables::emit_with(&ruleset, Family::Ipv4, iptables::Hooks::Insert);
        let ti = t.elapsed().as_secs_f64();
        let len = b.len();
        drop(std::hint::black_box(b));
        eprintln!("run {run}: nft {tn:.4} s  iptables {ti:.4} s  ({len} bytes)");
        nft.push(tn);
        ipt.push(ti);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (n, i) = (median(&mut nft), median(&mut ipt));
    eprintln!(
        "median: nft {n:.4} s  iptables {i:.4} s  ratio {:.2}",
        i / n
    );
}
