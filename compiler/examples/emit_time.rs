//! Times the back ends alone on one ruleset: the nft emitter against the
//! iptables emitter (`iptables::emit_with`, IPv4, hooks inserted).
//!
//! usage: emit_time IR.json [RUNS] [--dump PREFIX]
//!
//! IR.json is `knc compile --format ir` output (so the front end and the
//! model are not part of the measure). Prints each run (the iptables time
//! also split into `restore`, `render` and dropping both, measured in a
//! second pass) and the medians on stderr, and the iptables/nft ratio of
//! the medians. Used for issue #10
//! item 5 (iptables emit within 2× of nft emit at 10,000 × 10).
//!
//! `--dump PREFIX` also writes the IPv4 and IPv6 renderings (every hook
//! mode, and `render_live` with stale chains) to PREFIX.<family>.<mode>, to
//! compare two builds of the emitter byte for byte.
use std::time::Instant;

use knc_compiler::back::{self, iptables, Format};
use knc_compiler::ir::{Family, Ruleset};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dump = args.iter().position(|a| a == "--dump").map(|i| {
        let prefix = args.get(i + 1).expect("--dump PREFIX").clone();
        args.drain(i..i + 2);
        prefix
    });
    let mut args = args.into_iter();
    let path = args
        .next()
        .expect("usage: emit_time IR.json [RUNS] [--dump PREFIX]");
    let runs: usize = args.next().map_or(7, |r| r.parse().expect("RUNS"));
    let text = std::fs::read_to_string(&path).expect("readable IR file");
    let ruleset: Ruleset = serde_json::from_str(&text).expect("IR JSON");
    if let Some(prefix) = dump {
        write_all(&ruleset, &prefix);
    }
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
        let t = Instant::now();
        let model = iptables::restore(&ruleset, Family::Ipv4);
        let tm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let text = model.render(iptables::Hooks::Insert);
        let tr = t.elapsed().as_secs_f64();
        let t = Instant::now();
        drop(std::hint::black_box((model, text)));
        let td = t.elapsed().as_secs_f64();
        eprintln!(
            "run {run}: nft {tn:.4} s  iptables {ti:.4} s  ({len} bytes; \
             model {tm:.4} + render {tr:.4} + drop {td:.4})"
        );
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

fn write_all(ruleset: &Ruleset, prefix: &str) {
    use iptables::Hooks;
    let stale = [
        ("nat".to_string(), "KNC-SVC-GONE".to_string()),
        ("nat".to_string(), "KNC-SERVICES".to_string()),
        ("raw".to_string(), "KNC-OTHER".to_string()),
    ];
    for (family, fam) in [(Family::Ipv4, "v4"), (Family::Ipv6, "v6")] {
        let model = iptables::restore(ruleset, family);
        for (hooks, mode) in [
            (Hooks::Insert, "insert"),
            (Hooks::Reinsert, "reinsert"),
            (Hooks::Omit, "omit"),
        ] {
            let text = iptables::emit_with(ruleset, family, hooks);
            assert_eq!(text, model.render(hooks));
            std::fs::write(format!("{prefix}.{fam}.{mode}"), text).expect("writable");
        }
        let live = model.render_live(&[2, 0, 1, 1, 1, 1], &stale);
        std::fs::write(format!("{prefix}.{fam}.live"), live).expect("writable");
        let mut counts = String::new();
        for table in ["nat", "filter"] {
            for chain in model.chains(table) {
                let n = model.rule_count(table, chain).expect("declared");
                counts.push_str(&format!("{table} {chain} {n}\n"));
            }
        }
        std::fs::write(format!("{prefix}.{fam}.counts"), counts).expect("writable");
    }
}
