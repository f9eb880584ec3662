//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use knc_compiler::front::SourceFile;

/// The repository root (where `fixtures/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fixture directories whose name matches `keep`, sorted.
pub fn fixture_dirs(keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .expect("fixtures/ exists")
        .map(|e| e.expect("readable fixtures/").path())
        .filter(|p| p.is_dir() && keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    dirs.sort();
    dirs
}

/// Fixtures that compile: not `bad-*` (invalid input), `kernel-*` (kernel
/// tests' own), `lint-*` (one per diagnostic code, see
/// tests/diagnostics.rs) or `diff-*` (pairs of `old/` and `new/`
/// manifests, see tests/diff.rs).
pub fn compile_fixture_dirs() -> Vec<PathBuf> {
    fixture_dirs(is_compile_fixture)
}

/// Whether the fixture named `name` is one that compiles.
pub fn is_compile_fixture(name: &str) -> bool {
    !["bad-", "kernel-", "lint-", "diff-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The manifest files of a fixture, as source files named relative to the
/// repository root, in sorted order.
pub fn fixture_sources(dir: &Path) -> Vec<SourceFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir exists")
        .map(|e| e.expect("readable").path())
        // `is_file` follows symlinks: lint-io's dangling one is left out.
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap_or(p).display().to_string();
            SourceFile::new(name, std::fs::read_to_string(p).expect("utf-8 fixture"))
        })
        .collect()
}

/// The `knc compile` arguments a fixture is compiled with besides the
/// defaults of [`fixture_options`]: the whitespace-separated words of
/// `fixtures/<case>/args`, if the fixture has one (`--masquerade-all`,
/// `--cluster-cidr 10.244.0.0/16`, ...).
pub fn fixture_args(dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("args")).ok()?;
    Some(text.split_whitespace().map(str::to_owned).collect())
}

/// The ruleset a good fixture compiles to. A fixture with an `args` file is
/// compiled by `knc compile --format ir` itself, with those arguments
/// after the defaults, so the CLI's own parser reads them; the others are
/// lowered here with [`fixture_options`].
pub fn fixture_ruleset(dir: &Path) -> knc_compiler::ir::Ruleset {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let analysis = knc_compiler::analyse(&fixture_sources(dir));
    assert!(
        !analysis.has_errors(),
        "fixture {name} has errors: {:#?}",
        analysis.diagnostics
    );
    let cluster = analysis.cluster.expect("no errors, so a model");
    let options = fixture_options(&cluster);
    let Some(args) = fixture_args(dir) else {
        return knc_compiler::lower::lower(&cluster, &options).expect("lowers");
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_knc"));
    cmd.arg("compile").arg(dir).args(["--format", "ir"]);
    for cidr in &options.settings.service_cidrs {
        cmd.args(["--service-cidr", &cidr.to_string()]);
    }
    if let Some(node) = &options.node {
        cmd.args(["--node", node]);
    }
    let out = cmd.args(&args).output().expect("knc runs");
    assert!(
        out.status.success(),
        "knc compile {name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("knc compile --format ir prints the IR")
}

/// Runs insta with snapshots kept in the top-level `snapshots/` folder.
pub fn in_snapshot_dir(f: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(f);
}

/// Options every fixture is compiled with in tests: node1 when the fixture
/// has that Node, and the service CIDR the fixtures allocate from.
pub fn fixture_options(cluster: &knc_compiler::model::Cluster) -> knc_compiler::lower::Options {
    knc_compiler::lower::Options {
        node: cluster
            .nodes
            .contains_key("node1")
            .then(|| "node1".to_string()),
        settings: knc_compiler::lower::Settings {
            service_cidrs: vec!["10.96.0.0/16".parse().unwrap()],
            ..Default::default()
        },
    }
}

/// A small deterministic generator (a 64-bit LCG), so failures reproduce.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.next() % (i + 1));
        }
    }
}
