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
//!
//! A [`Reader`] kept between reconcile rounds reads again only the files
//! whose metadata (size, modification and change times, inode) changed.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use knc_compiler::front::{Code, Diagnostic, SourceFile};

/// Extensions read from directories.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads every path: files as given, directories recursively (sorted), `-`
/// as standard input. Problems come back as diagnostics; readable files are
/// still returned.
pub fn read(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<Diagnostic>) {
    let mut reader = Reader::default();
    let problems = reader.read(paths);
    (reader.files, problems)
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// One file as last read: its stamp, and what reading it gave.
#[derive(Debug, Clone)]
struct Cached {
    stamp: Stamp,
    shown: String,
    file: Option<SourceFile>,
    problem: Option<Diagnostic>,
    /// A hash of the bytes read.
    digest: u64,
}

/// Reads PATHs again and again, reading a file's bytes only when its
/// metadata changed since the last read (reconcile keeps one).
#[derive(Debug, Default)]
pub struct Reader {
    /// Every file of the last complete read, in order, by where it was read.
    entries: Vec<(PathBuf, Cached)>,
    index: HashMap<PathBuf, usize>,
    /// The files read, in order (entries without a problem).
    files: Vec<SourceFile>,
    /// For each entry, its place in `files`.
    slots: Vec<Option<usize>>,
    /// Problems of the last read: the entries', then the PATHs' own.
    problems: Vec<Diagnostic>,
    /// Per entry, a hash of its place, name and bytes; and their sum.
    hashes: Vec<u64>,
    hash: u64,
    /// How many files the last read or refresh read the bytes of, and
    /// whether it was a complete read.
    last: (usize, bool),
    /// The PATHs read last time (absolute, as given) and where they were
    /// read from (see [`snapshot_root`]).
    roots: Vec<(PathBuf, PathBuf)>,
}

impl Reader {
    /// Like [`read`], reusing what an earlier call read of unchanged files;
    /// the files are then [`Reader::files`].
    pub fn read(&mut self, paths: &[PathBuf]) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let mut previous: HashMap<PathBuf, Cached> =
            std::mem::take(&mut self.entries).into_iter().collect();
        let mut entries = Vec::with_capacity(previous.len());
        let mut reads = 0;
        self.roots.clear();
        for path in paths {
            if path.as_os_str() == "-" {
                let mut bytes = Vec::new();
                let cached = match std::io::stdin().read_to_end(&mut bytes) {
                    Ok(_) => fresh(Stamp::default(), "<stdin>".into(), Ok(bytes)),
                    Err(e) => fresh(Stamp::default(), "<stdin>".into(), Err(e)),
                };
                entries.push((PathBuf::from("-"), cached));
                continue;
            }
            let root = snapshot_root(path);
            let mut found = Vec::new();
            if let Err(e) = collect(&root, true, &mut found) {
                problems.push(io_error(&path.display().to_string(), &e));
            }
            for (file, meta) in found {
                let shown = match file.strip_prefix(&root) {
                    Ok(rest) if !rest.as_os_str().is_empty() => path.join(rest),
                    _ => path.clone(),
                };
                let shown = display(&shown);
                let stamp = Stamp::of(&meta);
                let cached = match previous.remove(&file) {
                    Some(c) if c.stamp == stamp && c.shown == shown => c,
                    _ => {
                        reads += 1;
                        fresh(stamp, shown, std::fs::read(&file))
                    }
                };
                entries.push((file, cached));
            }
            let given = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            self.roots.push((given, root));
        }
        self.index = entries
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key.clone(), i))
            .collect();
        self.files.clear();
        self.slots.clear();
        self.hashes.clear();
        self.problems.clear();
        for (i, (_, cached)) in entries.iter().enumerate() {
            self.slots.push(cached.file.as_ref().map(|file| {
                self.files.push(file.clone());
                self.files.len() - 1
            }));
            self.problems.extend(cached.problem.clone());
            self.hashes.push(entry_hash(i, cached));
        }
        self.problems.extend(problems);
        self.hash = self.hashes.iter().fold(0, |sum, h| sum.wrapping_add(*h));
        self.entries = entries;
        self.last = (reads, true);
        self.problems.clone()
    }

    /// The files of the last read or refresh, in order.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The last read's files with the files named in `changed` read again
    /// if their metadata changed: the same as [`Reader::read`] when nothing
    /// else changed under the PATHs, at the cost of the named files. `None`
    /// when that cannot be promised (a file appeared or went or became
    /// unreadable, a directory or a symlink changed) and a complete read
    /// is needed. The problems are the last read's.
    pub fn refresh(&mut self, changed: &[PathBuf]) -> Option<Vec<Diagnostic>> {
        if self.entries.is_empty() || !self.problems.is_empty() {
            return None;
        }
        let mut reads = 0;
        for path in changed {
            let path = &self.resolved(path);
            match self.index.get(path) {
                Some(&i) => {
                    let meta = std::fs::metadata(path).ok()?;
                    let stamp = Stamp::of(&meta);
                    let cached = &mut self.entries[i].1;
                    if stamp == cached.stamp {
                        continue;
                    }
                    reads += 1;
                    let again = fresh(stamp, cached.shown.clone(), std::fs::read(path));
                    let (Some(file), None, Some(slot)) =
                        (&again.file, &again.problem, self.slots[i])
                    else {
                        return None;
                    };
                    self.files[slot] = file.clone();
                    *cached = again;
                    let h = entry_hash(i, cached);
                    self.hash = self.hash.wrapping_sub(self.hashes[i]).wrapping_add(h);
                    self.hashes[i] = h;
                }
                // Not a file read last time: harmless only when it is not
                // one to read (a temporary file of an atomic write) and
                // lies inside a directory read.
                None => {
                    let plain = path
                        .components()
                        .all(|c| !matches!(c, std::path::Component::ParentDir));
                    let inside = plain
                        && path.parent().is_some_and(|parent| {
                            self.roots.iter().any(|(_, root)| parent.starts_with(root))
                        });
                    let hidden = path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    if !inside || (has_manifest_extension(path) && !hidden) {
                        return None;
                    }
                }
            }
        }
        self.last = (reads, false);
        Some(Vec::new())
    }

    /// How the last read went, for logs: `3 files read, complete` or
    /// `1 file read, watched`.
    pub fn last_read(&self) -> String {
        let (reads, complete) = self.last;
        let files = if reads == 1 { "file" } else { "files" };
        let how = if complete { "complete" } else { "watched" };
        format!("{reads} {files} read, {how}")
    }

    /// Where the watcher's `path` (under a PATH as given) was read from.
    fn resolved(&self, path: &Path) -> PathBuf {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        for (given, root) in &self.roots {
            if let Ok(rest) = absolute.strip_prefix(given) {
                return root.join(rest);
            }
        }
        absolute
    }

    /// A hash of every file's name and bytes as last read: equal means the
    /// same input.
    pub fn input_hash(&self) -> u64 {
        self.hash
    }
}

/// A hash of an entry's place, name and bytes.
fn entry_hash(place: usize, cached: &Cached) -> u64 {
    let mut hasher = DefaultHasher::new();
    place.hash(&mut hasher);
    cached.shown.hash(&mut hasher);
    cached.digest.hash(&mut hasher);
    hasher.finish()
}

/// What reading a file's bytes gave.
fn fresh(stamp: Stamp, shown: String, bytes: std::io::Result<Vec<u8>>) -> Cached {
    let mut hasher = DefaultHasher::new();
    let (file, problem) = match bytes {
        Ok(bytes) => {
            bytes.hash(&mut hasher);
            to_source(shown.clone(), bytes)
        }
        Err(e) => {
            e.kind().hash(&mut hasher);
            (None, Some(io_error(&shown, &e)))
        }
    };
    Cached {
        stamp,
        shown,
        file,
        problem,
        digest: hasher.finish(),
    }
}

/// Where to read `path` from so that one round sees one revision: the
/// symlink resolved once, and a ConfigMap volume's `..data` resolved.
pub fn snapshot_root(path: &Path) -> PathBuf {
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
fn collect(
    path: &Path,
    explicit: bool,
    out: &mut Vec<(PathBuf, std::fs::Metadata)>,
) -> std::io::Result<()> {
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
        out.push((path.to_path_buf(), meta));
    }
    Ok(())
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// A file's bytes as a source file, or the located reason they are not
/// text.
fn to_source(name: String, bytes: Vec<u8>) -> (Option<SourceFile>, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => (Some(SourceFile::new(name, text)), None),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile::new(name, text);
            let problem = Diagnostic::error(Code::Syntax, "file is not valid UTF-8").at(
                &file,
                knc_compiler::front::Span::new(offset, offset + 1),
                "invalid byte here",
            );
            (None, Some(problem))
        }
    }
}

fn io_error(name: &str, error: &std::io::Error) -> Diagnostic {
    Diagnostic::error(Code::Io, format!("cannot read `{name}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[SourceFile]) -> Vec<String> {
        files.iter().map(|f| f.name.to_string()).collect()
    }

    #[test]
    fn a_reader_rereads_only_changed_files_and_sees_removals() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("a.yaml"), "a: 1\n").unwrap();
        std::fs::write(root.join("b.yaml"), "b: 1\n").unwrap();
        std::fs::write(root.join(".hidden.yaml"), "h: 1\n").unwrap();
        let mut reader = Reader::default();
        let problems = reader.read(std::slice::from_ref(&root));
        let first = reader.files().to_vec();
        assert!(problems.is_empty());
        assert_eq!(first.len(), 2);
        let _ = reader.read(std::slice::from_ref(&root));
        let again = reader.files().to_vec();
        assert!(
            std::sync::Arc::ptr_eq(&first[0].text, &again[0].text),
            "an unchanged file is not read again"
        );
        std::fs::write(root.join("b.yaml"), "b: 22\n").unwrap();
        std::fs::remove_file(root.join("a.yaml")).unwrap();
        let _ = reader.read(std::slice::from_ref(&root));
        let changed = reader.files().to_vec();
        assert_eq!(names(&changed).len(), 1);
        assert_eq!(&*changed[0].text, "b: 22\n");
    }

    #[test]
    fn a_refresh_reads_again_only_the_named_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("a.yaml"), "a: 1\n").unwrap();
        std::fs::write(root.join("b.yaml"), "b: 1\n").unwrap();
        let mut reader = Reader::default();
        assert!(reader.refresh(&[]).is_none(), "nothing read yet");
        let _ = reader.read(std::slice::from_ref(&root));
        let first = reader.files().to_vec();
        let hash = reader.input_hash();
        // An atomic write: a temporary file renamed over b.yaml.
        let tmp = root.join("b.yaml.tmp");
        std::fs::write(&tmp, "b: 2\n").unwrap();
        std::fs::rename(&tmp, root.join("b.yaml")).unwrap();
        let problems = reader
            .refresh(&[tmp.clone(), root.join("b.yaml")])
            .expect("a known file changed");
        let files = reader.files().to_vec();
        assert!(problems.is_empty());
        assert_eq!(names(&files), names(&first));
        assert!(std::sync::Arc::ptr_eq(&files[0].text, &first[0].text));
        assert_eq!(&*files[1].text, "b: 2\n");
        assert_ne!(reader.input_hash(), hash);
        let (full, _) = read(std::slice::from_ref(&root));
        assert_eq!(
            full.iter().map(|f| f.text.to_string()).collect::<Vec<_>>(),
            files.iter().map(|f| f.text.to_string()).collect::<Vec<_>>(),
            "the same as a complete read"
        );
        // A file that appears, or goes, needs a complete read.
        std::fs::write(root.join("c.yaml"), "c: 1\n").unwrap();
        assert!(reader.refresh(&[root.join("c.yaml")]).is_none());
        std::fs::remove_file(root.join("a.yaml")).unwrap();
        assert!(reader.refresh(&[root.join("a.yaml")]).is_none());
        // So does anything outside the PATH (a symlink swapped next to it).
        let beside = dir.path().parent().unwrap().join("current");
        assert!(reader.refresh(&[beside]).is_none());
        assert!(reader.refresh(&[root.join("../x.tmp")]).is_none());
    }

    #[test]
    fn a_swapped_symlink_is_read_as_one_revision() {
        let dir = tempfile::tempdir().unwrap();
        for (rev, text) in [("rev1", "r: 1\n"), ("rev2", "r: 2\n")] {
            std::fs::create_dir(dir.path().join(rev)).unwrap();
            std::fs::write(dir.path().join(rev).join("x.yaml"), text).unwrap();
        }
        let link = dir.path().join("current");
        std::os::unix::fs::symlink("rev1", &link).unwrap();
        let mut reader = Reader::default();
        let _ = reader.read(std::slice::from_ref(&link));
        let one = reader.files().to_vec();
        std::os::unix::fs::symlink("rev2", dir.path().join("next")).unwrap();
        std::fs::rename(dir.path().join("next"), &link).unwrap();
        let _ = reader.read(std::slice::from_ref(&link));
        let two = reader.files().to_vec();
        assert_eq!(&*one[0].text, "r: 1\n");
        assert_eq!(&*two[0].text, "r: 2\n");
        assert!(
            two[0].name.ends_with("current/x.yaml"),
            "named under PATH as given: {}",
            two[0].name
        );
    }

    #[test]
    fn a_configmap_volume_is_read_through_its_data_link() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path();
        std::fs::create_dir(volume.join("..2026_11_30")).unwrap();
        std::fs::write(volume.join("..2026_11_30/svc.yaml"), "s: 1\n").unwrap();
        std::os::unix::fs::symlink("..2026_11_30", volume.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/svc.yaml", volume.join("svc.yaml")).unwrap();
        let (files, problems) = read(&[volume.to_path_buf()]);
        assert!(problems.is_empty());
        assert_eq!(files.len(), 1, "read once: {:?}", names(&files));
    }
}
