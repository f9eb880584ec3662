//! Bad input never panics: thousands of mutated fixtures go through the
//! whole pipeline (load, validate, model, lower, check the IR, every back
//! end). A cheap, deterministic stand-in for a coverage-guided fuzzer that
//! runs on every `cargo test`.

mod common;

use knc_compiler::back::{self, Format};
use knc_compiler::front::SourceFile;
use knc_compiler::ir;
use knc_compiler::lower;

use common::Lcg;

/// Pieces that make mutations hit interesting shapes: YAML punctuation,
/// numbers at the edges, addresses, anchors and aliases, non-ASCII text.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    "\n",
    "  ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "#",
    "---\n",
    "&a ",
    "*a",
    "!!str ",
    "70000",
    "-1",
    "0",
    "4294967296",
    "1e309",
    "::",
    "10.96.0.1",
    "fd00::1",
    "010.0.0.1",
    "null",
    "~",
    "true",
    "é",
    "\u{feff}",
    "kind: List\nitems:\n",
    "<<: *a\n",
    "\t",
];

fn mutate(text: &str, rng: &mut Lcg) -> String {
    let mut bytes: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.next() % 4 {
        if bytes.is_empty() {
            break;
        }
        let at = rng.next() % bytes.len();
        match rng.next() % 4 {
            0 => {
                let end = (at + rng.next() % 12).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                let token = TOKENS[rng.next() % TOKENS.len()];
                for (i, c) in token.chars().enumerate() {
                    bytes.insert(at + i, c);
                }
            }
            2 => {
                let end = (at + rng.next() % 40).min(bytes.len());
                let copy: Vec<char> = bytes[at..end].to_vec();
                let to = rng.next() % bytes.len();
                for (i, c) in copy.into_iter().enumerate() {
                    bytes.insert(to + i, c);
                }
            }
            _ => bytes.truncate(at),
        }
    }
    bytes.into_iter().collect()
}

fn run_pipeline(files: &[SourceFile]) {
    let analysis = knc_compiler::analyse(files);
    if let Some(cluster) = analysis.cluster {
        let options = common::fixture_options(&cluster);
        if let Ok(ruleset) = lower::lower(&cluster, &options) {
            // Whatever the input, lowering keeps the IR's promises.
            if let Err(violations) = ir::validate(&ruleset) {
                panic!("the IR breaks its invariants: {violations:#?}");
            }
            for format in [Format::Nft, Format::Iptables, Format::Ip6tables, Format::Ir] {
                let _ = back::emit(format, &ruleset);
            }
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Lcg(0x006b_6e63_f00d);
    let mut cases = 0;
    for dir in common::fixture_dirs(|_| true) {
        let sources = common::fixture_sources(&dir);
        for _ in 0..200 {
            let files: Vec<SourceFile> = sources
                .iter()
                .map(|f| SourceFile::new(f.name.to_string(), mutate(&f.text, &mut rng)))
                .collect();
            let result = std::panic::catch_unwind(|| run_pipeline(&files));
            if result.is_err() {
                for f in &files {
                    eprintln!("--- {}\n{}", f.name, f.text);
                }
                panic!("the pipeline panicked on a mutation of {dir:?} (input above)");
            }
            cases += 1;
        }
    }
    assert!(cases > 1000, "ran {cases} cases");
}
