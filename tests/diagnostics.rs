//! Every `fixtures/bad-*` case through `load` + `validate`, rendered as the
//! user sees it (miette, no colour, fixed width), one snapshot per case in
//! `snapshots/`. Reading these snapshots is how we review our error messages.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use knc_compiler::front::{self, Diagnostic};
use knc_compiler::model::validate::validate;

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
    diagnostics.extend(validate(&loaded));
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

/// Every `fixtures/lint-*` case through `knc_compiler::lint`, rendered like
/// `knc lint` prints it: valid input, one warning per suspicious thing.
#[test]
fn lint_warnings() {
    let dirs = common::fixture_dirs(|name| name.starts_with("lint-"));
    assert!(!dirs.is_empty(), "a lint fixture exists");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let diagnostics = knc_compiler::lint(&common::fixture_sources(&dir));
        assert!(
            diagnostics.iter().all(|d| !d.is_error()),
            "lint fixtures are valid"
        );
        common::in_snapshot_dir(|| {
            insta::assert_snapshot!(format!("lint@{name}"), render(&diagnostics))
        });
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
