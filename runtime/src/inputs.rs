//! Reading the command line's PATHs into source files: the node's side of
//! the compiler's "bytes in".
//!
//! A directory is read as one snapshot even while it is being replaced:
//! a PATH that is a symlink (git-sync's `--link`) is resolved once, and a
//! directory holding a `..data` symlink (a ConfigMap volume, whose files are
//! symlinks through `..data`) is read through the resolved `..data`. Names
//! starting with `.` are skipped inside directories, so git metadata and
//! the volume's timestamped directories are never read twice. Diagnostics
//! still name files under the PATH as the user gave it.

use std::io::Read;
use std::path::{Path, PathBuf};

use knc_compiler::front::{Code, Diagnostic, SourceFile};

/// Extensions read from directories.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads every path: files as given, directories recursively (sorted), `-`
/// as standard input. Problems come back as diagnostics; readable files are
/// still returned.
pub fn read(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            match std::io::stdin().read_to_end(&mut bytes) {
                Ok(_) => push_file(&mut files, &mut problems, "<stdin>".into(), bytes),
                Err(e) => problems.push(io_error("<stdin>", &e)),
            }
            continue;
        }
        let root = snapshot_root(path);
        let mut found = Vec::new();
        if let Err(e) = collect(&root, true, &mut found) {
            problems.push(io_error(&path.display().to_string(), &e));
        }
        for file in found {
            let shown = match file.strip_prefix(&root) {
                Ok(rest) if !rest.as_os_str().is_empty() => path.join(rest),
                _ => path.clone(),
            };
            match std::fs::read(&file) {
                Ok(bytes) => push_file(&mut files, &mut problems, display(&shown), bytes),
                Err(e) => problems.push(io_error(&display(&shown), &e)),
            }
        }
    }
    (files, problems)
}

/// Where to read `path` from so that one round sees one revision: the
/// symlink resolved once, and a ConfigMap volume's `..data` resolved.
fn snapshot_root(path: &Path) -> PathBuf {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if resolved.is_dir() {
        if let Ok(data) = std::fs::canonicalize(resolved.join("..data")) {
            if data.is_dir() {
                return data;
            }
        }
    }
    resolved
}

fn display(path: &Path) -> String {
    path.strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Files under `path`, sorted; a file named explicitly is taken whatever
/// its extension.
fn collect(path: &Path, explicit: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden {
                collect(&entry, false, out)?;
            }
        }
    } else if explicit || has_manifest_extension(path) {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

fn push_file(
    files: &mut Vec<SourceFile>,
    problems: &mut Vec<Diagnostic>,
    name: String,
    bytes: Vec<u8>,
) {
    match String::from_utf8(bytes) {
        Ok(text) => files.push(SourceFile::new(name, text)),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile::new(name, text);
            problems.push(
                Diagnostic::error(Code::Syntax, "file is not valid UTF-8").at(
                    &file,
                    knc_compiler::front::Span::new(offset, offset + 1),
                    "invalid byte here",
                ),
            );
        }
    }
}

fn io_error(name: &str, error: &std::io::Error) -> Diagnostic {
    Diagnostic::error(Code::Io, format!("cannot read `{name}`: {error}"))
}
