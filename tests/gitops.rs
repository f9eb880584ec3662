//! The GitOps integration files (`.pre-commit-hooks.yaml`,
//! `examples/ci/knc-review.yml`) are only read by other tools, so nothing
//! else would notice them break: they are parsed here with knc's own YAML
//! front end, their key fields checked, and the knc commands they run are
//! run against a fixture to show the spellings still work.

mod common;

use std::process::Command;

use knc_compiler::front::yaml::parse_file;
use knc_compiler::front::SourceFile;
use serde_json::Value;

/// The single YAML document of the repository file `path`.
fn document(path: &str) -> Value {
    let full = common::root().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parsed = parse_file(&SourceFile::new(path, text));
    assert!(
        parsed.diagnostics.is_empty(),
        "{path}: {:#?}",
        parsed.diagnostics
    );
    assert_eq!(parsed.docs.len(), 1, "{path}: one document");
    parsed.docs.into_iter().next().unwrap().value
}

/// Runs the built `knc` from the repository root.
fn knc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_knc"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("knc runs")
}

#[test]
fn pre_commit_hook_runs_knc_lint_on_manifests() {
    let hooks = document(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().expect("a list of hooks");
    let hook = hooks
        .iter()
        .find(|h| h["id"] == "knc-lint")
        .expect("a knc-lint hook");
    assert_eq!(hook["entry"], "knc lint");
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["files"], r"\.(ya?ml|json)$");
    assert_ne!(hook["pass_filenames"], false, "knc lint reads the paths");

    // pre-commit appends the staged file names to the entry.
    let out = knc(&["lint", "fixtures/lint-unmatched-port/svc.yaml"]);
    assert_eq!(out.status.code(), Some(0), "warnings do not block");
    let out = knc(&["lint", "fixtures/bad-port-range/svc.yaml"]);
    assert_eq!(out.status.code(), Some(1), "errors block the commit");
}

#[test]
fn review_workflow_lints_to_sarif_and_comments_the_diff() {
    let workflow = document("examples/ci/knc-review.yml");
    assert!(workflow["on"]["pull_request"].is_object(), "{workflow:#}");
    assert_eq!(workflow["permissions"]["security-events"], "write");
    assert_eq!(workflow["permissions"]["pull-requests"], "write");
    let steps = workflow["jobs"]["review"]["steps"]
        .as_array()
        .expect("steps");
    let uses = |action: &str| {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
            .unwrap_or_else(|| panic!("no step uses {action}"))
    };
    let run = |needle: &str| {
        steps
            .iter()
            .find(|s| s["run"].as_str().is_some_and(|r| r.contains(needle)))
            .unwrap_or_else(|| panic!("no step runs {needle}"))
    };

    let checkouts: Vec<&Value> = steps
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
        })
        .collect();
    assert_eq!(checkouts.len(), 2, "base and head");
    assert!(checkouts.iter().any(|s| s["with"]["path"] == "base"
        && s["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"));
    assert!(checkouts.iter().any(|s| s["with"]["path"] == "head"));

    let lint = run("knc lint --format sarif");
    assert_eq!(lint["continue-on-error"], true, "the upload still runs");
    let upload = uses("github/codeql-action/upload-sarif@");
    assert_eq!(upload["with"]["sarif_file"], "knc.sarif");
    assert_eq!(upload["with"]["checkout_path"], lint["working-directory"]);

    let diff = run("knc diff");
    let diff = diff["run"].as_str().unwrap();
    assert!(diff.contains("--format markdown > knc-diff.md"), "{diff}");
    let comment = uses("marocchino/sticky-pull-request-comment@");
    assert_eq!(comment["with"]["path"], "knc-diff.md");

    // The spellings the workflow uses, on a fixture pair.
    let out = knc(&["lint", "--format", "sarif", "fixtures/lint-unmatched-port"]);
    assert_eq!(out.status.code(), Some(0));
    let out = knc(&[
        "diff",
        "fixtures/diff-backends/old",
        "fixtures/diff-backends/new",
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1), "something changes");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("### knc diff"));
}
