//! Times the back ends alone on one ruleset: the nft emitter against the
//! iptables emitter (`iptables::emit_with`, IPv4, hooks inserted), side by
//! side in each run.
//!
//! usage: emit_time IR.json [RUNS] [--dump PREFIX]
//!
//! IR.json is `knc compile --format ir` output (so the front end and the
//! model are not part of the measure). Prints each run (the iptables time
//! also split into `restore`, `render` and dropping both, measured in a
//! second pass) and the medians on stderr, and the iptables/nft ratio of
//! the medians. Used for issue #10 item 5 (iptables emit within 2× of nft
//! emit at 10,000 × 10).
//!
//! Each run also counts the minor page faults of each emit (Linux): memory
//! the process touches for the first time. glibc hands out blocks above
//! 32 MiB straight from the kernel and returns them on free, so the
//! iptables output (37 MB at 10,000 × 10) is fresh memory in every run
//! (about 9,000 faults), while the nft output and both models, smaller,
//! are recycled from the second run on. To compare the two in the same
//! memory conditions, run it under `MALLOC_MMAP_THRESHOLD_=4294967296
//! MALLOC_TRIM_THRESHOLD_=4294967296` (everything recycled, as in a
//! long-running process) or `MALLOC_MMAP_THRESHOLD_=131072` (every large
//! block fresh, as in a one-shot `knc compile`).
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
    let runs: usize = args.next().map_or(9, |r| r.parse().expect("RUNS"));
    let text = std::fs::read_to_string(&path).expect("readable IR file");
    let ruleset: Ruleset = serde_json::from_str(&text).expect("IR JSON");
    if let Some(prefix) = dump {
        write_all(&ruleset, &prefix);
    }
    let (mut nft, mut ipt) = (Vec::new(), Vec::new());
    let (mut nft_faults, mut ipt_faults) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (tn, faults_n, a) = timed(|| back::emit(Format::Nft, &ruleset));
        drop(std::hint::black_box(a));
        let (ti, faults_i, b) =
            timed(|| iptables::emit_with(&ruleset, Family::Ipv4, iptables::Hooks::Insert));
        let len = b.len();
        drop(std::hint::black_box(b));
        let (tm, _, model) = timed(|| iptables::restore(&ruleset, Family::Ipv4));
        let (tr, _, text) = timed(|| model.render(iptables::Hooks::Insert));
        let (td, _, ()) = timed(|| drop(std::hint::black_box((model, text))));
        eprintln!(
            "run {run}: nft {tn:.4} s ({} faults)  iptables {ti:.4} s ({} faults; {len} bytes; \
             model {tm:.4} + render {tr:.4} + drop {td:.4})",
            show(faults_n),
            show(faults_i),
        );
        nft.push(tn);
        ipt.push(ti);
        nft_faults.extend(faults_n);
        ipt_faults.extend(faults_i);
    }
    let (n, i) = (median(&mut nft), median(&mut ipt));
    eprintln!(
        "median of {runs}: nft {n:.4} s  iptables {i:.4} s  ratio {:.2}",
        i / n
    );
    if nft_faults.len() == runs {
        eprintln!(
            "median page faults per emit: nft {}  iptables {}",
            median(&mut nft_faults),
            median(&mut ipt_faults)
        );
    }
}

/// Runs `f`; its time in seconds, the minor page faults it caused (when
/// the system says) and its result.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, Option<u64>, T) {
    let faults = minor_faults();
    let start = Instant::now();
    let out = f();
    let time = start.elapsed().as_secs_f64();
    let faults = faults.zip(minor_faults()).map(|(a, b)| b - a);
    (time, faults, out)
}

/// This process's minor page faults so far, from `/proc/self/stat`
/// (field 10; `None` elsewhere than Linux).
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count after it.
    let fields = &stat[stat.rfind(')')? + 2..];
    fields.split(' ').nth(7)?.parse().ok()
}

fn show(faults: Option<u64>) -> String {
    faults.map_or("?".into(), |f| f.to_string())
}

fn median<T: PartialOrd + Copy>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
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
