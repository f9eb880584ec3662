//! `knc diff` over pairs of fixtures (`fixtures/diff-<case>/old/` and
//! `new/`): each case's review snapshotted as text, markdown and JSON
//! (`snapshots/diff@<case>.<format>.snap`), with the exit status checked
//! against the JSON's own `changed`. Read a changed snapshot like code.

mod common;

use std::process::Command;

/// Runs `knc diff OLD NEW --format FORMAT` for a case; stdout and status.
fn diff(case: &str, format: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_knc"))
        .current_dir(common::root())
        .arg("diff")
        .arg(format!("fixtures/{case}/old"))
        .arg(format!("fixtures/{case}/new"))
        .args(["--format", format])
        .output()
        .expect("knc runs");
    assert!(
        out.stderr.is_empty(),
        "{case} {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = out.status.code().expect("knc exits");
    (String::from_utf8(out.stdout).expect("utf-8 output"), status)
}

#[test]
fn fixture_pairs_in_every_format() {
    let dirs = common::fixture_dirs(|name| name.starts_with("diff-"));
    assert!(
        dirs.len() >= 8,
        "expected 8 diff cases, found {}",
        dirs.len()
    );
    for dir in dirs {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (json, status) = diff(&case, "json");
        let document: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let changed = document["changed"].as_bool().expect("`changed` is a bool");
        assert_eq!(status, i32::from(changed), "{case}: exit status");
        assert_eq!(changed, case != "diff-unchanged", "{case}: changed");
        for format in ["text", "markdown"] {
            let (text, format_status) = diff(&case, format);
            assert_eq!(format_status, status, "{case} {format}: exit status");
            common::in_snapshot_dir(|| {
                insta::assert_snapshot!(format!("diff@{case}.{format}"), text);
            });
        }
        common::in_snapshot_dir(|| insta::assert_snapshot!(format!("diff@{case}.json"), json));
    }
}
