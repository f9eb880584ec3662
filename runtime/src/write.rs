//! Writing results so that readers never see half of one.

use std::io::Write;
use std::path::Path;

/// Writes through a temporary file in the same directory and a rename.
pub fn atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    atomically_with(path, |out| out.write_all(bytes))
}

/// Like [`atomically`], with the bytes written by `write` as they come (a
/// big record is never held whole in memory).
pub fn atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        out.flush()
    });
    written
        .and_then(|()| std::fs::rename(&temp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
}

/// Node names are DNS subdomains; anything else could escape a directory
/// when used as a file name.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}
