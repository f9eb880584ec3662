//! The binary's side of the compile facade: read PATHs, compile through
//! [`knc_compiler::compile::compile`], print warnings and `-v` notes.

use std::path::PathBuf;

use knc_compiler::compile::{self, Compiled, NodeChoice, Settings};

use crate::outcome::{print_diagnostics, Outcome};

/// Reads `paths` and compiles them for `node`; warnings are printed, and a
/// failure is the command's outcome.
pub fn compile(
    paths: &[PathBuf],
    settings: &Settings,
    node: &NodeChoice,
    verbose: bool,
) -> Result<Compiled, Outcome> {
    let (files, problems) = knc_runtime::inputs::read(paths);
    let compiled = compile::compile(&files, problems, settings, node)?;
    if verbose {
        let skipped: usize = compiled.skipped.values().sum();
        let kinds: Vec<String> = compiled
            .skipped
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        eprintln!(
            "read {} files; skipped {skipped} documents of other kinds{}",
            files.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        );
        for ruleset in &compiled.rulesets {
            eprintln!(
                "compiling for {}",
                ruleset
                    .node
                    .as_deref()
                    .unwrap_or("any node (no Node in the inputs)")
            );
        }
    }
    print_diagnostics(&compiled.warnings);
    Ok(compiled)
}
