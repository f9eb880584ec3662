//! Every `fixtures/bad-*` case through `load` + `kinds::convert`, rendered as the
//! user sees it (miette, no colour, fixed width), one snapshot per case in
//! `snapshots/`. Reading these snapshots is how we review our error messages.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use knc_compiler::checks;
use knc_compiler::front::{self, Diagnostic};

#[test]
fn diagnostics() {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::glob!("../fixtures", "bad-*", |dir| {
            insta::assert_snapshot!(report(dir));
        });
    });
}

/// The rendered report for one fixture directory.
fn report(dir: &Path) -> String {
    let files = common::fixture_sources(dir);
    let loaded = front::load(&files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(knc_compiler::kinds::convert(&loaded).diagnostics);
    diagnostics.sort_by_key(Diagnostic::sort_key);

    let mut out = String::new();
    let kept: Vec<String> = loaded
        .documents
        .iter()
        .map(|d| d.object.kind().to_owned())
        .collect();
    let _ = writeln!(out, "kept: [{}]", kept.join(", "));
    let _ = writeln!(out, "skipped: {:?}\n", loaded.skipped);
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    for diagnostic in &diagnostics {
        handler
            .render_report(&mut out, diagnostic)
            .expect("rendering into a String cannot fail");
        out.push('\n');
    }
    out
}

/// Every diagnostic code has a documented rule, a `fixtures/lint-<code>/`
/// case that reports it with the rule's severity, a snapshot of what `knc
/// lint` prints for that case (read as `knc lint` reads paths, so that
/// `knc::io` has a case too), and `knc lint --explain` prints its doc.
#[test]
fn every_code_has_a_doc_a_fixture_and_a_snapshot() {
    let mut expected_dirs = Vec::new();
    for rule in checks::RULES {
        let short = rule.name.strip_prefix("knc::").expect("knc:: codes");
        let name = format!("lint-{short}");
        let dir = common::root().join("fixtures").join(&name);
        assert!(dir.is_dir(), "{} has no fixture {name}/", rule.name);
        expected_dirs.push(dir.clone());

        let (files, mut diagnostics) = knc_runtime::inputs::read(&lint_paths(&dir));
        diagnostics.extend(knc_compiler::lint(&files));
        diagnostics.sort_by_key(Diagnostic::sort_key);
        assert!(
            diagnostics
                .iter()
                .any(|d| d.code == rule.code && d.severity == rule.severity),
            "fixture {name} reports no {} with its severity: {diagnostics:#?}",
            rule.name
        );
        common::in_snapshot_dir(|| {
            insta::assert_snapshot!(format!("lint@{name}"), render(&diagnostics))
        });

        let out = std::process::Command::new(env!("CARGO_BIN_EXE_knc"))
            .args(["lint", "--explain", rule.name])
            .output()
            .expect("knc runs");
        assert!(out.status.success(), "knc lint --explain {}", rule.name);
        let printed = String::from_utf8(out.stdout).unwrap();
        assert!(
            printed.contains(rule.doc),
            "--explain {} prints its doc",
            rule.name
        );
    }
    expected_dirs.sort();
    let dirs = common::fixture_dirs(|name| name.starts_with("lint-"));
    assert_eq!(
        dirs, expected_dirs,
        "every lint-* fixture belongs to a code"
    );
}

/// What `knc lint` reads for a lint fixture: the directory, or the paths
/// its `args` file names (relative to the fixture), relative to the
/// repository root as a user in it would type them.
fn lint_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let relative = dir.strip_prefix(common::root()).unwrap().to_path_buf();
    match std::fs::read_to_string(dir.join("args")) {
        Ok(args) => args.split_whitespace().map(|a| relative.join(a)).collect(),
        Err(_) => vec![relative],
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    for diagnostic in diagnostics {
        handler
            .render_report(&mut out, diagnostic)
            .expect("rendering into a String cannot fail");
        out.push('\n');
    }
    out
}

/// What `knc lint --format json` and `--format sarif` print for one lint
/// fixture, read by relative path as in CI, so the paths in the snapshots
/// are the ones a code-scanning upload resolves against the repository.
/// The SARIF snapshot lists the rules by id only: their docs have their
/// own snapshots through `--explain`.
#[test]
fn lint_reports_for_tools() {
    let dir = common::root().join("fixtures/lint-unmatched-port");
    let (files, mut diagnostics) = knc_runtime::inputs::read(&lint_paths(&dir));
    diagnostics.extend(knc_compiler::lint(&files));
    diagnostics.sort_by_key(Diagnostic::sort_key);

    let json = knc_compiler::report::json::render(&diagnostics, files.len());
    let mut sarif: serde_json::Value =
        serde_json::from_str(&knc_compiler::report::sarif::render(&diagnostics, "0.0.0"))
            .expect("SARIF is JSON");
    let rules = &mut sarif["runs"][0]["tool"]["driver"]["rules"];
    let ids: Vec<serde_json::Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["id"].clone())
        .collect();
    *rules = serde_json::Value::Array(ids);
    common::in_snapshot_dir(|| {
        insta::assert_snapshot!("lint-json@lint-unmatched-port", json);
        insta::assert_snapshot!(
            "lint-sarif@lint-unmatched-port",
            serde_json::to_string_pretty(&sarif).unwrap()
        );
    });
}
