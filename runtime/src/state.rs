//! The state directory: a lock so that one `apply` or `reconcile` at a time
//! programs the node, and the record of what knc last applied, so the next
//! apply can send only what changed. Losing the directory costs one full
//! replace, nothing else.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use knc_compiler::ir::{Ruleset, Violation};
use serde::{Deserialize, Serialize};

/// How long a second `apply` or `reconcile` waits for the lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Format version of [`Record`]; a record of another version is ignored
/// (costing one full replace).
const RECORD_VERSION: u32 = 2;

/// Which netfilter interface a record was applied through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nft,
    Iptables,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }
}

/// What knc last applied to this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub backend: Backend,
    /// The IR the live rules were rendered from.
    pub ruleset: Ruleset,
    /// The nftables generation right after knc's commit, when no one else
    /// committed in between; `None` when unknown.
    pub generation: Option<u32>,
    /// Milliseconds since the Unix epoch (an integer: JSON round-trips it
    /// exactly, which a float need not).
    pub applied_at_ms: u64,
}

impl Record {
    pub fn new(backend: Backend, ruleset: Ruleset, generation: Option<u32>) -> Record {
        Record {
            version: RECORD_VERSION,
            backend,
            ruleset,
            generation,
            applied_at_ms: (unix_now() * 1000.0) as u64,
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another knc holds the lock on `{dir}` ({holder}); waited {waited:?}")]
    Locked {
        dir: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error("state directory `{dir}`: {error}")]
    Io { dir: PathBuf, error: std::io::Error },
}

/// Why the record in the state directory was not used. Each costs one full
/// replace, nothing else; [`StateDir::record`] logs it.
#[derive(Debug, thiserror::Error)]
pub enum IgnoredRecord {
    #[error("cannot read `{path}`: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("unreadable record: {0}")]
    Unreadable(serde_json::Error),
    #[error("record format version {found}, this knc reads version {RECORD_VERSION}")]
    Version { found: u32 },
    /// The recorded IR fails `ir::validate` (another IR version, or edited
    /// by hand): rendering it could produce rules no one compiled.
    #[error("the recorded IR breaks its invariants: {}", list(.0))]
    InvalidIr(Vec<Violation>),
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A locked state directory; the lock is released on drop.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// `None` for a read-only view ([`StateDir::read_only`]).
    _lock: Option<File>,
}

impl StateDir {
    /// Creates `dir` if needed and takes its lock, waiting up to `wait`.
    /// `holder` (e.g. "knc reconcile") is written into the lock file so that
    /// the next one to wait can name it.
    pub fn lock(dir: &Path, holder: &str, wait: Duration) -> Result<StateDir, StateError> {
        let io = |error| StateError::Io {
            dir: dir.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(StateError::Locked {
                        dir: dir.to_path_buf(),
                        holder: holder.trim().to_string(),
                        waited: wait,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let _ = writeln!(
            file,
            "pid {} ({holder}) since {:.0}",
            std::process::id(),
            unix_now()
        );
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: Some(file),
        })
    }

    /// A view that only reads the record: no lock, nothing created (for
    /// `--dry-run`, which must change nothing, the state directory
    /// included). Saving through it is refused.
    pub fn read_only(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
            _lock: None,
        }
    }

    fn writable(&self) -> std::io::Result<()> {
        match self._lock {
            Some(_) => Ok(()),
            None => Err(std::io::Error::other(
                "the state directory was opened read-only (dry run)",
            )),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("applied.json")
    }

    /// The record of the last apply, if there is a usable one: readable,
    /// of this version, and holding IR that passes `ir::validate`. Anything
    /// else means "unknown" (one full replace), and is logged with why.
    pub fn record(&self) -> Option<Record> {
        match self.read_record() {
            Ok(record) => record,
            Err(why) => {
                tracing::warn!(
                    dir = %self.dir.display(),
                    "ignoring the record of the last apply (the next apply replaces everything): {why}"
                );
                None
            }
        }
    }

    /// The record of the last apply: `Ok(None)` when there is none, the
    /// reason when there is one that cannot be trusted.
    pub fn read_record(&self) -> Result<Option<Record>, IgnoredRecord> {
        let path = self.record_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(IgnoredRecord::Io { path, error }),
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(IgnoredRecord::Unreadable)?;
        if record.version != RECORD_VERSION {
            return Err(IgnoredRecord::Version {
                found: record.version,
            });
        }
        knc_compiler::ir::validate(&record.ruleset).map_err(IgnoredRecord::InvalidIr)?;
        Ok(Some(record))
    }

    /// Replaces the record atomically.
    pub fn save(&self, record: &Record) -> std::io::Result<()> {
        self.writable()?;
        crate::write::atomically_with(&self.record_path(), |out| {
            serde_json::to_writer(out, record).map_err(std::io::Error::other)
        })
    }

    /// Forgets the record (after `knc cleanup`).
    pub fn forget(&self) -> std::io::Result<()> {
        self.writable()?;
        match std::fs::remove_file(self.record_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A file in the state directory for a transaction about to be applied:
    /// the tool reads it whole, so a knc killed mid-apply cannot hand the
    /// kernel half a transaction.
    pub fn transaction_file(&self, name: &str, text: &str) -> std::io::Result<PathBuf> {
        self.writable()?;
        let path = self.dir.join(name);
        crate::write::atomically(&path, text.as_bytes())?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knc_compiler::ir::Invariant;

    #[test]
    fn a_second_locker_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateDir::lock(dir.path(), "knc reconcile", LOCK_WAIT).unwrap();
        let second = StateDir::lock(dir.path(), "knc apply", Duration::from_millis(200));
        let message = second.unwrap_err().to_string();
        assert!(message.contains("knc reconcile"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
    }

    #[test]
    fn a_read_only_view_creates_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("state");
        let view = StateDir::read_only(&missing);
        assert_eq!(view.record(), None);
        assert!(view.forget().is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateDir::lock(dir.path(), "a", LOCK_WAIT).unwrap());
        StateDir::lock(dir.path(), "b", Duration::ZERO).unwrap();
    }

    #[test]
    fn records_round_trip_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path(), "t", LOCK_WAIT).unwrap();
        assert_eq!(state.record(), None);
        let record = saved(&state);
        assert_eq!(state.record(), Some(record));
        state.forget().unwrap();
        assert_eq!(state.record(), None);
    }

    fn saved(state: &StateDir) -> Record {
        let ruleset = knc_compiler::compile::compile(
            &[],
            vec![],
            &Default::default(),
            &knc_compiler::compile::NodeChoice::Agnostic,
        )
        .unwrap()
        .into_single();
        let record = Record::new(Backend::Nft, ruleset, Some(7));
        state.save(&record).unwrap();
        record
    }

    #[test]
    fn a_record_whose_ir_breaks_its_invariants_is_ignored_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path(), "t", LOCK_WAIT).unwrap();
        let mut record = saved(&state);
        assert_eq!(state.read_record().unwrap(), Some(record.clone()));

        // IR of another format version.
        record.ruleset.version = knc_compiler::ir::VERSION + 1;
        state.save(&record).unwrap();
        let why = state.read_record().unwrap_err();
        let IgnoredRecord::InvalidIr(violations) = &why else {
            panic!("{why}")
        };
        assert_eq!(violations[0].invariant, Invariant::Version);
        assert!(why.to_string().contains("format version"), "{why}");
        assert_eq!(state.record(), None);

        // Current version, but two ClusterIPs out of order.
        record.ruleset.version = knc_compiler::ir::VERSION;
        record.ruleset.cluster_ips =
            vec!["10.96.0.2".parse().unwrap(), "10.96.0.1".parse().unwrap()];
        state.save(&record).unwrap();
        let why = state.read_record().unwrap_err();
        assert!(
            matches!(&why, IgnoredRecord::InvalidIr(v) if v[0].invariant == Invariant::Sorted),
            "{why}"
        );
        assert_eq!(state.record(), None);
    }

    #[test]
    fn a_record_from_before_ir_versions_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path(), "t", LOCK_WAIT).unwrap();
        saved(&state);
        let path = dir.path().join("applied.json");
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["ruleset"].as_object_mut().unwrap().remove("version");
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let why = state.read_record().unwrap_err();
        assert!(
            matches!(&why, IgnoredRecord::InvalidIr(v) if v[0].invariant == Invariant::Version),
            "{why}"
        );
    }

    #[test]
    fn unreadable_and_other_version_records_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path(), "t", LOCK_WAIT).unwrap();
        let mut record = saved(&state);
        record.version = RECORD_VERSION + 1;
        state.save(&record).unwrap();
        assert!(matches!(
            state.read_record(),
            Err(IgnoredRecord::Version { found }) if found == RECORD_VERSION + 1
        ));
        std::fs::write(dir.path().join("applied.json"), "{").unwrap();
        assert!(matches!(
            state.read_record(),
            Err(IgnoredRecord::Unreadable(_))
        ));
        assert_eq!(state.record(), None);
    }
}
