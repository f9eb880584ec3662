//! Every good fixture's output loads into a fresh namespace, twice, and the
//! second load changes nothing: for nft (`nft list ruleset`) and iptables
//! (`iptables-save`, counters and comments aside).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netns::Netns;
use crate::require_kernel;

fn good_fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            p.is_dir()
                && !name.starts_with("bad-")
                && !name.starts_with("kernel-")
                && !name.starts_with("lint-")
                // `old/` and `new/` of a `knc diff` pair, not one input.
                && !name.starts_with("diff-")
        })
        .collect();
    dirs.sort();
    dirs
}

/// `knc compile DIR --node node1 --format FORMAT` into a temp file.
fn compile(dir: &Path, format: &str, extra: &[&str]) -> tempfile::NamedTempFile {
    // Every good fixture has node1 (snapshots compile for it too).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_knc"));
    cmd.arg("compile").arg(dir).args([
        "--node",
        "node1",
        "--format",
        format,
        "--service-cidr",
        "10.96.0.0/16",
    ]);
    // The fixture's own flags (`fixtures/<case>/args`), as the snapshots
    // compile it.
    if let Ok(args) = std::fs::read_to_string(dir.join("args")) {
        cmd.args(args.split_whitespace());
    }
    let out = cmd.args(extra).output().unwrap();
    assert!(
        out.status.success(),
        "compile {dir:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &out.stdout).unwrap();
    file
}

#[test]
fn every_fixture_loads_twice_with_nft() {
    require_kernel!("every_fixture_loads_twice_with_nft");
    let ns = Netns::create("fxnft", "n");
    for dir in good_fixtures() {
        let file = compile(&dir, "nft", &[]);
        let path = file.path().to_str().unwrap();
        ns.exec("nft", &["-f", path]);
        let once = ns.exec("nft", &["list", "ruleset"]);
        ns.exec("nft", &["-f", path]);
        let twice = ns.exec("nft", &["list", "ruleset"]);
        assert_eq!(once, twice, "second load of {dir:?} changed the ruleset");
        assert_eq!(once.matches("table ip knc").count(), 1, "{dir:?}");
        assert_eq!(once.matches("table ip6 knc").count(), 1, "{dir:?}");
    }
}

/// `iptables-save` without the lines that differ between identical loads.
fn saved(ns: &Netns, tool: &str) -> String {
    ns.exec(tool, &[])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" [").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_fixture_loads_twice_with_iptables_restore() {
    require_kernel!("every_fixture_loads_twice_with_iptables_restore");
    let ns = Netns::create("fxipt", "n");
    for dir in good_fixtures() {
        for (format, restore, save) in [
            ("iptables", "iptables-restore", "iptables-save"),
            ("ip6tables", "ip6tables-restore", "ip6tables-save"),
        ] {
            let file = compile(&dir, format, &[]);
            let path = file.path().to_str().unwrap();
            ns.exec(restore, &[path]);
            let once = saved(&ns, save);
            ns.exec(restore, &[path]);
            let twice = saved(&ns, save);
            assert_eq!(once, twice, "second {restore} of {dir:?} changed the rules");
            // With --noflush, a reload in `reinsert` mode keeps one jump per hook.
            let reload = compile(&dir, format, &["--iptables-hooks", "reinsert"]);
            ns.exec(restore, &["--noflush", reload.path().to_str().unwrap()]);
            assert_eq!(
                saved(&ns, save),
                once,
                "--noflush reload of {dir:?} ({format})"
            );
        }
    }
}
