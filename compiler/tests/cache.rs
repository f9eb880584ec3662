//! The front end's cache is invisible: whatever was loaded before, a load
//! through a [`Cache`] gives what a cold [`front::load`] of the same files
//! gives, objects, spans and diagnostics alike.

use std::path::Path;

use knc_compiler::front::{self, Cache, Code, Loaded, SourceFile};

/// Everything a load produced, in a form two loads can be compared by.
fn fingerprint(loaded: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    for doc in &loaded.documents {
        out.push(format!("doc {} {:?}", doc.file.name, doc.object));
        for (path, span, key) in doc.spans.recorded() {
            out.push(format!("  {path} {key} {span:?}"));
        }
    }
    for d in &loaded.diagnostics {
        let label = d.location.as_ref().map(|l| (l.span, l.label.clone()));
        out.push(format!(
            "diag {:?} {:?} {} {:?} {:?} {:?}",
            d.code,
            d.severity,
            d.message,
            d.help,
            d.position(),
            label
        ));
    }
    out.push(format!("skipped {:?}", loaded.skipped));
    out
}

fn assert_invisible(cache: &mut Cache, files: &[SourceFile], what: &str) {
    let cold = fingerprint(&front::load(files));
    let cached = fingerprint(cache.load(files));
    if cold != cached {
        let first = cold
            .iter()
            .zip(&cached)
            .position(|(a, b)| a != b)
            .unwrap_or(cold.len().min(cached.len()));
        panic!(
            "{what}: cached load differs at line {first}:\n cold:   {:?}\n cached: {:?}",
            cold.get(first),
            cached.get(first)
        );
    }
}

fn fixture_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut paths = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            SourceFile::new(p.display().to_string(), text)
        })
        .collect()
}

/// Edits of a file's text a reconcile round may see.
fn edits(text: &str) -> Vec<(&'static str, String)> {
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let mut out = vec![
        ("same bytes", text.to_owned()),
        ("comment appended", format!("{text}\n# changed\n")),
        (
            "document added first",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n---\n{text}"),
        ),
        (
            "first document grew",
            text.replacen('\n', "\n# a longer first document\n", 1),
        ),
    ];
    if docs.len() > 1 {
        out.push(("first document dropped", docs[1..].join("\n---\n")));
        let mut swapped = docs.clone();
        swapped.swap(0, 1);
        out.push(("documents swapped", swapped.join("\n---\n")));
        out.push((
            "syntax error in the middle",
            format!(
                "{}\n---\n{{broken: [\n---\n{}",
                docs[0],
                docs[1..].join("\n---\n")
            ),
        ));
    }
    out
}

#[test]
fn every_fixture_loads_the_same_through_the_cache_after_every_edit() {
    let files = fixture_files();
    assert!(files.len() > 50, "fixtures found: {}", files.len());
    for file in &files {
        let mut cache = Cache::default();
        assert_invisible(&mut cache, std::slice::from_ref(file), &file.name);
        for (edit, text) in edits(&file.text) {
            let edited = SourceFile::new(file.name.to_string(), text);
            let what = format!("{} ({edit})", file.name);
            assert_invisible(&mut cache, std::slice::from_ref(&edited), &what);
            // And back: the original's documents come from the cache.
            assert_invisible(&mut cache, std::slice::from_ref(file), &what);
        }
    }
}

#[test]
fn all_fixtures_at_once_then_renamed_as_a_new_revision() {
    let files = fixture_files();
    let mut cache = Cache::default();
    assert_invisible(&mut cache, &files, "all fixtures");
    // A symlink swap: every file has a new name, the same bytes.
    let renamed: Vec<SourceFile> = files
        .iter()
        .map(|f| SourceFile::new(format!("rev2/{}", f.name), f.text.to_string()))
        .collect();
    assert_invisible(&mut cache, &renamed, "renamed");
    // Files with a syntax error are always read whole; nothing else is
    // parsed again.
    let whole: usize = renamed
        .iter()
        .map(|f| front::load(std::slice::from_ref(f)))
        .filter(|l| l.diagnostics.iter().any(|d| d.code == Code::Syntax))
        .map(|l| l.documents.len())
        .sum();
    assert_eq!(
        cache.parsed(),
        whole,
        "a new revision with the same documents parses only broken files"
    );
}

#[test]
fn one_changed_document_of_a_dump_is_the_only_one_parsed() {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: n\nspec:\n  ports:\n  - port: {}\n",
            1000 + i
        ));
    }
    let mut cache = Cache::default();
    let dump = SourceFile::new("dump.yaml", text.clone());
    assert_invisible(&mut cache, std::slice::from_ref(&dump), "dump");
    assert_eq!(cache.parsed(), 200);
    let edited = SourceFile::new("dump.yaml", text.replace("port: 1100\n", "port: 11000\n"));
    assert_invisible(&mut cache, std::slice::from_ref(&edited), "edited dump");
    assert_eq!(cache.parsed(), 1);
}
