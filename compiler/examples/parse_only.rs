//! The compile-time floor: how long merely parsing the inputs takes.
//!
//! usage: parse_only [--events|--saphyr|--front|--stages] FILE...
//!
//! * `--events` (default): saphyr-parser's event stream, consumed and
//!   dropped: what any YAML reader must pay at least.
//! * `--saphyr`: saphyr's own tree loader (`Yaml::load_from_str`).
//! * `--front`: knc's whole front end (`front::load`: parse, spans, typed
//!   objects).
//! * `--stages`: every stage of `knc compile` for node1, timed one by one.
//!
//! Prints the elapsed seconds on stderr. Used by bench/run.sh.
use std::time::Instant;

use knc_compiler::front::SourceFile;

fn main() {
    let mut mode = "--events".to_string();
    let mut paths = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg.starts_with("--") {
            mode = arg;
        } else {
            paths.push(arg);
        }
    }
    let files: Vec<SourceFile> = paths
        .iter()
        .map(|p| {
            SourceFile::new(
                p.clone(),
                std::fs::read_to_string(p).expect("readable file"),
            )
        })
        .collect();
    let start = Instant::now();
    match mode.as_str() {
        "--events" => {
            let mut events = 0usize;
            for file in &files {
                for event in saphyr_parser::Parser::new_from_str(&file.text) {
                    event.expect("valid YAML");
                    events += 1;
                }
            }
            std::hint::black_box(events);
        }
        "--saphyr" => {
            for file in &files {
                use saphyr::LoadableYamlNode;
                let docs = saphyr::Yaml::load_from_str(&file.text).expect("valid YAML");
                std::hint::black_box(docs.len());
            }
        }
        "--front" => {
            let loaded = knc_compiler::front::load(&files);
            std::hint::black_box(loaded.documents.len());
        }
        "--stages" => return stages(&files),
        other => panic!("unknown mode {other}"),
    }
    eprintln!("{:.3}", start.elapsed().as_secs_f64());
}

fn stages(files: &[SourceFile]) {
    use knc_compiler::{back, front, kinds, lower};
    let mut t = Instant::now();
    let mut lap = |what: &str| {
        eprintln!("{what:>10} {:8.3}", t.elapsed().as_secs_f64());
        t = Instant::now();
    };
    let loaded = front::load(files);
    lap("load");
    let converted = kinds::convert(&loaded);
    assert!(!converted.diagnostics.iter().any(|d| d.is_error()));
    let cluster = converted.cluster;
    lap("convert");
    let options = lower::Options {
        node: Some("node1".into()),
        settings: lower::Settings {
            service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
            ..Default::default()
        },
    };
    let ruleset = lower::lower(&cluster, &options).expect("node1 exists");
    lap("lower");
    let nft = back::emit(back::Format::Nft, &ruleset);
    lap("nft");
    let ipt = back::emit(back::Format::Iptables, &ruleset);
    lap("iptables");
    std::hint::black_box((nft.len(), ipt.len()));
    drop((loaded, cluster, ruleset));
    lap("drop");
}
