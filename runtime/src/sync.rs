//! One sync of the node's nftables with a compiled ruleset: the heart of
//! `apply` and of every reconcile round.
//!
//! The record in the state directory says what knc last applied. When the
//! kernel's generation is the one recorded right after that commit, nobody
//! has touched the ruleset since, and the transaction is the incremental
//! difference of the two models. When the generation moved, knc's tables
//! are listed and compared with the record; equal, the update stays
//! incremental; different, that is drift, and the tables are replaced
//! whole (which repairs it). Without a record, a full replace.

use std::time::{Duration, Instant};

use knc_compiler::back::nft::{
    affected_memory, forget_stale, tables, update_tables, Listed, Tables, Transaction,
    TransactionKind,
};
use knc_compiler::ir::Ruleset;

use crate::nft::{expected, Kernel};
use crate::state::{Backend, Record, StateDir};
use crate::tool::ToolError;

/// How a sync changed the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing differed: no transaction was sent.
    Unchanged,
    /// Only what changed was sent.
    Incremental,
    /// knc's tables were replaced whole.
    Full,
}

impl Change {
    /// The word for summaries: design §2 promises `incremental` or `full`,
    /// and nothing to do is the empty incremental update.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Unchanged => "incremental (nothing changed)",
            Change::Incremental => "incremental",
            Change::Full => "full",
        }
    }
}

/// What one sync did.
#[derive(Debug)]
pub struct Synced {
    pub change: Change,
    /// nft commands in the transaction.
    pub commands: usize,
    /// knc's tables had been changed by someone else, and were replaced.
    pub drift: Option<Vec<String>>,
    /// The transaction's text (for `--dry-run`).
    pub transaction: String,
    /// The ruleset that was live before, when known (for conntrack).
    pub previous: Option<Ruleset>,
    pub kernel_time: Duration,
    /// Time spent saving the record, after the kernel's commit.
    pub record_time: Duration,
    /// The ruleset generation knc's rules are known to be current at
    /// (`None` when unknown): while the kernel still reports it, nothing
    /// has changed them.
    pub generation: Option<u32>,
}

/// Why a sync applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Tool(#[from] ToolError),
    #[error("cannot read the ruleset generation: {0}")]
    Generation(std::io::Error),
    #[error("applied, but the record could not be saved in the state directory: {0}")]
    Record(std::io::Error),
}

/// Brings the kernel to `new`; with `dry_run`, only works out the
/// transaction (nothing is sent, nothing recorded).
pub fn sync_nft(
    kernel: &mut dyn Kernel,
    state: &StateDir,
    memory: &mut Option<Applied>,
    new: &Ruleset,
    dry_run: bool,
) -> Result<Synced, SyncError> {
    // What knc last applied: kept in memory by a long-running reconcile
    // (this process holds the lock, so only it writes the record), read
    // from the state directory otherwise.
    let applied = match memory.take() {
        Some(applied) => Some(applied),
        None => state
            .record()
            .filter(|r| r.backend == Backend::Nft)
            .map(Applied::from_record),
    };
    let generation = kernel.generation().map_err(SyncError::Generation)?;
    let mut applied = applied;
    let mut drift = None;
    let mut trusted = false;
    if let Some(applied) = &applied {
        if applied.record.generation == Some(generation) {
            trusted = true;
        } else {
            let live = kernel.live()?;
            let expected = expected(&applied.tables);
            if live == expected {
                trusted = true;
            } else {
                drift = Some(expected.differences(&live));
            }
        }
    }
    let (new_tables, transaction) = match applied.as_mut().filter(|_| trusted) {
        // The kernel holds what knc applied: the transaction follows from
        // the IR entries that changed (see `update_tables`), or failing
        // that from the two whole models. A dry run keeps the old model.
        Some(applied) if !dry_run => {
            let old_tables = std::mem::take(&mut applied.tables);
            match update_tables(&applied.record.ruleset, old_tables, new) {
                Ok(update) => update,
                Err(old_tables) => {
                    let new_tables = tables(new);
                    let transaction = Transaction::between(Some(&old_tables), &new_tables);
                    (new_tables, transaction)
                }
            }
        }
        Some(applied) => {
            let new_tables = tables(new);
            let transaction = Transaction::between(Some(&applied.tables), &new_tables);
            (new_tables, transaction)
        }
        None => {
            let new_tables = tables(new);
            let transaction = Transaction::between(None, &new_tables);
            (new_tables, transaction)
        }
    };
    let unchanged = transaction.kind() == TransactionKind::Incremental && transaction.is_empty();
    let mut synced = Synced {
        change: match transaction.kind() {
            _ if unchanged => Change::Unchanged,
            TransactionKind::Incremental => Change::Incremental,
            TransactionKind::Full => Change::Full,
        },
        commands: if unchanged {
            0
        } else {
            transaction.command_count()
        },
        drift,
        transaction: transaction.render(),
        previous: None,
        kernel_time: Duration::ZERO,
        record_time: Duration::ZERO,
        generation: Some(generation),
    };
    if dry_run || unchanged {
        synced.previous = applied.as_ref().map(|a| a.record.ruleset.clone());
    }
    if dry_run {
        *memory = applied;
        return Ok(synced);
    }
    if unchanged {
        // Same rules; remember the generation so the next round is cheap.
        let mut applied = applied.expect("an unchanged update has a previous ruleset");
        applied.tables = new_tables;
        if applied.record.generation != Some(generation) {
            applied.record = Record::new(Backend::Nft, new.clone(), Some(generation));
            state.save(&applied.record).map_err(SyncError::Record)?;
        }
        *memory = Some(applied);
        return Ok(synced);
    }
    let start = Instant::now();
    // `nft -f` checks a whole transaction before the kernel commits any of
    // it, so a rejected one changes nothing either way; a full replace is
    // also checked on its own first (`nft --check`), an incremental one
    // (a few element changes, on the path every endpoint change takes) is
    // not, which saves a run of nft.
    if transaction.kind() == TransactionKind::Full {
        kernel.check(&transaction)?;
    }
    let before = kernel.generation().map_err(SyncError::Generation)?;
    kernel.apply(&transaction)?;
    let forgetting = match transaction.kind() {
        TransactionKind::Incremental => forget_stale_clients(kernel, &transaction, &new_tables),
        // A full replace starts every memory afresh.
        TransactionKind::Full => 0,
    };
    let after = kernel.generation().map_err(SyncError::Generation)?;
    synced.kernel_time = start.elapsed();
    // Someone else committing between the two reads makes the generation
    // ours no longer: leave it unknown, and the next round compares.
    let ours = (after == before.wrapping_add(1 + forgetting)).then_some(after);
    synced.generation = ours;
    synced.previous = applied.map(|a| a.record.ruleset);
    let saving = Instant::now();
    let record = Record::new(Backend::Nft, new.clone(), ours);
    state.save(&record).map_err(SyncError::Record)?;
    synced.record_time = saving.elapsed();
    *memory = Some(Applied {
        record,
        tables: new_tables,
    });
    Ok(synced)
}

/// Forgets the clients session affinity remembers on backends `transaction`
/// took away from their Service ports, as kube-proxy deletes a removed
/// endpoint's affinity set with it: lists the dynamic maps concerned and
/// commits the deletions (listing again once when a client was remembered
/// anew in between, which fails the commit). Returns the commits made.
/// Failing costs little (the rules drop such a client's next new connection
/// once and forget it), so it is logged, not returned.
fn forget_stale_clients(kernel: &mut dyn Kernel, transaction: &Transaction, new: &Tables) -> u32 {
    let maps = affected_memory(transaction, new);
    for attempt in 0..2 {
        if maps.is_empty() {
            break;
        }
        let mut listed = Vec::new();
        for (family, map) in &maps {
            match kernel.list_map(*family, map) {
                Ok(elements) => listed.push(Listed {
                    family: *family,
                    map: map.clone(),
                    elements,
                }),
                Err(e) => {
                    tracing::warn!("session affinity: cannot list {map}: {e}");
                    return 0;
                }
            }
        }
        let script = forget_stale(new, &listed);
        if script.is_empty() {
            break;
        }
        match kernel.run_script(&script) {
            Ok(()) => {
                tracing::debug!(
                    clients = script.lines().count() / 2,
                    "session affinity: forgot clients of removed backends"
                );
                return 1;
            }
            Err(e) if attempt == 0 => {
                tracing::debug!("session affinity: forgetting raced, listing again: {e}")
            }
            Err(e) => tracing::warn!("session affinity: cannot forget stale clients: {e}"),
        }
    }
    0
}

/// What knc last applied, with its model: kept between reconcile rounds so
/// that a round neither reads the record back nor rebuilds the model.
#[derive(Debug, Clone)]
pub struct Applied {
    pub record: Record,
    pub tables: Tables,
}

impl Applied {
    fn from_record(record: Record) -> Applied {
        let tables = tables(&record.ruleset);
        Applied { record, tables }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::FakeKernel;
    use crate::state::LOCK_WAIT;
    use knc_compiler::back::nft::TableFamily;
    use knc_compiler::compile::{compile, NodeChoice, Settings};
    use knc_compiler::front::SourceFile;

    fn ruleset(backends: &[&str]) -> Ruleset {
        let mut yaml = String::from(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{port: 8080}]\nendpoints:\n",
        );
        for b in backends {
            yaml.push_str(&format!(
                "- addresses: [{b}]\n  conditions: {{ready: true}}\n"
            ));
        }
        let files = [SourceFile::new("in.yaml", yaml)];
        compile(&files, vec![], &Settings::default(), &NodeChoice::Agnostic)
            .unwrap()
            .into_single()
    }

    fn state() -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path(), "test", LOCK_WAIT).unwrap();
        (dir, state)
    }

    #[test]
    fn first_full_then_incremental_then_unchanged() {
        let (_dir, state) = state();
        let mut kernel = FakeKernel::default();
        let one = ruleset(&["10.244.1.1", "10.244.1.2"]);
        let first = sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
        assert_eq!(first.change, Change::Full);
        let two = ruleset(&["10.244.1.1", "10.244.1.3"]);
        let second = sync_nft(&mut kernel, &state, &mut None, &two, false).unwrap();
        assert_eq!(second.change, Change::Incremental);
        assert!(second.commands <= 4, "{}", second.transaction);
        assert_eq!(kernel.fake.tables(), tables(&two).normalised());
        let third = sync_nft(&mut kernel, &state, &mut None, &two, false).unwrap();
        assert_eq!(third.change, Change::Unchanged);
        assert_eq!(kernel.applied.len(), 2);
    }

    #[test]
    fn a_foreign_commit_that_left_knc_alone_is_not_drift() {
        let (_dir, state) = state();
        let mut kernel = FakeKernel::default();
        let one = ruleset(&["10.244.1.1"]);
        sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
        kernel.touched();
        let again = sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
        assert_eq!(again.change, Change::Unchanged);
        assert!(again.drift.is_none());
        assert_eq!(
            state.record().unwrap().generation,
            Some(kernel.generation),
            "the new generation is remembered"
        );
    }

    #[test]
    fn drift_is_detected_and_repaired_by_a_full_replace() {
        let (_dir, state) = state();
        let one = ruleset(&["10.244.1.1", "10.244.1.2"]);
        for damage in 0..3 {
            let mut kernel = FakeKernel::default();
            sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
            match damage {
                0 => {
                    let key = kernel.fake.tables().tables[0].elements["frontends"][0]
                        .key()
                        .to_string();
                    assert!(kernel
                        .fake
                        .delete_element(TableFamily::Ip, "frontends", &key));
                }
                1 => kernel
                    .fake
                    .insert_rule(TableFamily::Ip, "services", "accept"),
                _ => kernel.fake.delete_table(TableFamily::Ip),
            }
            kernel.touched();
            let repaired = sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
            assert_eq!(repaired.change, Change::Full, "damage {damage}");
            assert!(repaired.drift.is_some(), "damage {damage}");
            assert_eq!(
                kernel.fake.tables(),
                tables(&one).normalised(),
                "damage {damage}"
            );
        }
    }

    #[test]
    fn a_long_running_sync_keeps_what_it_applied_in_memory() {
        let (dir, state) = state();
        let mut kernel = FakeKernel::default();
        let mut memory = None;
        let one = ruleset(&["10.244.1.1", "10.244.1.2"]);
        sync_nft(&mut kernel, &state, &mut memory, &one, false).unwrap();
        // The record is not read back: its loss does not cost a full replace.
        std::fs::remove_file(dir.path().join("applied.json")).unwrap();
        let two = ruleset(&["10.244.1.1", "10.244.1.3"]);
        let second = sync_nft(&mut kernel, &state, &mut memory, &two, false).unwrap();
        assert_eq!(second.change, Change::Incremental);
        assert_eq!(memory.as_ref().unwrap().record.ruleset, two);
        assert_eq!(kernel.fake.tables(), tables(&two).normalised());
    }

    /// Taking a backend away from a Service port with session affinity
    /// forgets the clients remembered on it, and only those, right after
    /// the update (the generation stays knc's: the next round is cheap).
    #[test]
    fn clients_of_a_removed_backend_are_forgotten() {
        let (_dir, state) = state();
        let mut kernel = FakeKernel::default();
        let sticky = |backends: &[&str]| {
            let mut rs = ruleset(backends);
            rs.entry_mut(0).affinity_timeout_seconds = Some(60);
            rs
        };
        let one = sticky(&["10.244.1.1", "10.244.1.2"]);
        sync_nft(&mut kernel, &state, &mut None, &one, false).unwrap();
        let model = tables(&one);
        let id = model.tables[0].elements["affinity-backends"][0]
            .key()
            .rsplit(" . ")
            .next()
            .unwrap()
            .to_string();
        let memory = model.tables[0]
            .objects
            .iter()
            .map(|o| o.name().to_string())
            .find(|n| n.starts_with("affinity-memory-"))
            .unwrap();
        kernel.remembered.insert(
            (TableFamily::Ip, memory.clone()),
            vec![
                (format!("10.0.0.7 . {id}"), "10.244.1.1 . 8080".into()),
                (format!("10.0.0.8 . {id}"), "10.244.1.2 . 8080".into()),
            ],
        );
        let grown = sticky(&["10.244.1.1", "10.244.1.2", "10.244.1.3"]);
        sync_nft(&mut kernel, &state, &mut None, &grown, false).unwrap();
        assert!(
            kernel.scripts.is_empty(),
            "nothing to forget when backends only come"
        );
        let shrunk = sticky(&["10.244.1.1", "10.244.1.3"]);
        let synced = sync_nft(&mut kernel, &state, &mut None, &shrunk, false).unwrap();
        assert_eq!(synced.change, Change::Incremental);
        assert_eq!(
            kernel.scripts,
            [format!(
                "add element ip knc {memory} {{ 10.0.0.8 . {id} timeout 1s : 10.244.1.2 . 8080 }}\n\
                 delete element ip knc {memory} {{ 10.0.0.8 . {id} }}\n"
            )]
        );
        assert_eq!(synced.generation, Some(kernel.generation));
    }

    #[test]
    fn dry_run_changes_nothing() {
        let (_dir, state) = state();
        let mut kernel = FakeKernel::default();
        let synced = sync_nft(
            &mut kernel,
            &state,
            &mut None,
            &ruleset(&["10.244.1.1"]),
            true,
        )
        .unwrap();
        assert_eq!(synced.change, Change::Full);
        assert!(synced.transaction.contains("table ip knc"));
        assert!(kernel.applied.is_empty());
        assert_eq!(state.record(), None);
    }
}
