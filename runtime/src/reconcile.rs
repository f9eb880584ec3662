//! `knc reconcile`: rounds at start, soon after PATH changes (watched,
//! debounced), and at least every interval. A round reads one snapshot of
//! PATH, compiles it when its bytes changed, and syncs the kernel (which
//! also finds and repairs drift); then conntrack, health-check NodePorts
//! and metrics follow. Invalid input leaves the last good ruleset in the
//! kernel. SIGTERM and SIGINT end the loop after the round in flight.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use knc_compiler::compile::{Failure, NodeChoice};
use knc_compiler::front::Diagnostic;
use knc_compiler::ir::Ruleset;
use knc_compiler::session::Session;
use notify::{RecursiveMode, Watcher};

use crate::healthcheck::{self, HealthCheckServers};
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::node::{Node, Target};
use crate::state::unix_now;
use crate::sync::Change;

/// How `knc reconcile` runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub interval: Duration,
    pub once: bool,
    pub metrics_addr: Option<SocketAddr>,
    /// Quiet time after a change of PATH before the round starts, so that
    /// a burst of writes is read once, finished.
    pub debounce: Duration,
}

/// What woke the loop.
enum Event {
    Changed,
    Stop,
}

/// Exit status of a round, as `apply` would exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundStatus {
    Applied = 0,
    InvalidInput = 1,
    /// The command line cannot be met by the input (an unknown node).
    Usage = 2,
    Refused = 3,
}

/// Runs reconcile until SIGTERM/SIGINT (exit 0) or, with `once`, for one
/// round (its status). `on_invalid` renders diagnostics (the binary owns
/// the terminal's format).
pub fn run(mut node: Node, config: Config, on_invalid: &dyn Fn(&[Diagnostic])) -> i32 {
    let (events, inbox) = mpsc::channel();
    let signals = match stop_on_signals(events.clone()) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!("cannot catch SIGTERM/SIGINT: {e}");
            None
        }
    };
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::new(config.interval)));
    let _server = match config.metrics_addr {
        Some(addr) => match http::serve_metrics(addr, metrics.clone(), health.clone()) {
            Ok(server) => {
                tracing::info!("serving /metrics and /healthz on {}", server.local_addr());
                Some(server)
            }
            Err(e) => {
                tracing::error!("cannot serve metrics on {addr}: {e}");
                return RoundStatus::Refused as i32;
            }
        },
        None => None,
    };
    let mut reconciler = Reconciler {
        config: &config,
        metrics,
        health,
        health_checks: None,
        last_input: None,
        watcher: None,
        watched: Vec::new(),
        dirty: Arc::new(AtomicBool::new(true)),
        changes: Arc::new(Mutex::new(Changes::default())),
        reader: crate::inputs::Reader::default(),
        session: Session::default(),
        compile_summary: String::from("not compiled (input unchanged)"),
        clean_hash: None,
        last_scan: Instant::now(),
    };
    loop {
        reconciler.watch(&events);
        let status = reconciler.round(&mut node, on_invalid);
        if config.once {
            return status as i32;
        }
        if wait(&inbox, config.interval, config.debounce) {
            tracing::info!("stopping: the rules stay in place (`knc cleanup` removes them)");
            if let Some(handle) = signals {
                handle.close();
            }
            return 0;
        }
    }
}

/// Waits for the next round; true when asked to stop.
fn wait(inbox: &Receiver<Event>, interval: Duration, debounce: Duration) -> bool {
    match inbox.recv_timeout(interval) {
        Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
        Ok(Event::Changed) => {}
        Err(RecvTimeoutError::Timeout) => return false,
    }
    // Debounce: wait until PATH has been quiet for `debounce`, but never
    // longer than a second, so a directory that never rests is still read.
    let latest = Instant::now() + Duration::from_secs(1);
    loop {
        let quiet = debounce.min(latest.saturating_duration_since(Instant::now()));
        match inbox.recv_timeout(quiet) {
            Ok(Event::Stop) => return true,
            Ok(Event::Changed) if Instant::now() < latest => continue,
            Ok(Event::Changed) | Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => return true,
        }
    }
}

fn stop_on_signals(events: Sender<Event>) -> std::io::Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if events.send(Event::Stop).is_err() {
                break;
            }
        }
    });
    Ok(handle)
}

/// The last input compiled successfully: its bytes' hash and the result.
struct Compiled {
    hash: u64,
    ruleset: Ruleset,
}

struct Reconciler<'a> {
    config: &'a Config,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
    health_checks: Option<HealthCheckServers>,
    last_input: Option<Compiled>,
    watcher: Option<notify::RecommendedWatcher>,
    /// The snapshot roots the watcher watches.
    watched: Vec<PathBuf>,
    /// Set by the watcher: something under PATH may have changed.
    dirty: Arc<AtomicBool>,
    /// What the watcher saw change since the last read.
    changes: Arc<Mutex<Changes>>,
    /// Reads only files whose metadata changed.
    reader: crate::inputs::Reader,
    /// Compiles only what changed.
    session: Session,
    /// How the last compile went, for the round's log line.
    compile_summary: String,
    /// The hash of the last complete read, when it had no problems.
    clean_hash: Option<u64>,
    last_scan: Instant,
}

/// The paths the watcher reported since the last read.
#[derive(Debug, Default)]
struct Changes {
    /// Something changed that names no file (or the watcher lost events):
    /// read everything.
    all: bool,
    paths: Vec<PathBuf>,
}

/// How long rounds may trust the watcher before PATH is scanned anyway.
const SCAN_EVERY: Duration = Duration::from_secs(60);

impl Reconciler<'_> {
    /// (Re)watches every PATH and its parent directory: a symlink swapped
    /// by git-sync changes the parent, not the old target.
    fn watch(&mut self, events: &Sender<Event>) {
        let roots: Vec<PathBuf> = self
            .config
            .target
            .paths
            .iter()
            .map(|p| crate::inputs::snapshot_root(p))
            .collect();
        if self.watcher.is_some() && roots == self.watched {
            return;
        }
        // A new revision (or the first round): read everything.
        self.dirty.store(true, Ordering::SeqCst);
        self.watched = roots;
        let sender = events.clone();
        let dirty = Arc::clone(&self.dirty);
        let changes = Arc::clone(&self.changes);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Errors (an overflowing event queue) count as changes to
            // everything.
            let event = match event {
                Ok(event) if event.kind.is_access() => return,
                Ok(event) => Some(event),
                Err(_) => None,
            };
            if let Ok(mut changes) = changes.lock() {
                match event {
                    Some(e) if !e.paths.is_empty() && !e.need_rescan() => {
                        changes.paths.extend(e.paths)
                    }
                    _ => changes.all = true,
                }
            }
            dirty.store(true, Ordering::SeqCst);
            let _ = sender.send(Event::Changed);
        });
        let mut watcher = match watcher {
            Ok(watcher) => watcher,
            Err(e) => {
                tracing::warn!("cannot watch PATH ({e}); rounds run every interval only");
                self.watcher = None;
                return;
            }
        };
        for path in &self.config.target.paths {
            let _ = watcher.watch(path, RecursiveMode::Recursive);
            if let Some(parent) = parent_of(path) {
                let _ = watcher.watch(&parent, RecursiveMode::NonRecursive);
            }
        }
        self.watcher = Some(watcher);
    }

    /// Reads PATH unless the watcher saw nothing since the last complete
    /// read (then the last read's hash stands); every
    /// round [`SCAN_EVERY`] after the last complete read reads anyway, in
    /// case a change escaped the watcher. Unchanged files are not read again either way.
    /// Returns the problems reading found and the input's hash; the files
    /// are the reader's.
    fn read(&mut self) -> (Vec<Diagnostic>, u64) {
        let dirty = self.dirty.swap(false, Ordering::SeqCst);
        let changes = self
            .changes
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or(Changes {
                all: true,
                paths: Vec::new(),
            });
        // Trusted only when the last complete read also compiled.
        let compiled = self.last_input.as_ref().map(|last| last.hash);
        let trusted = self.watcher.is_some()
            && self.last_scan.elapsed() < SCAN_EVERY
            && self.clean_hash.is_some()
            && self.clean_hash == compiled;
        if let (false, true, Some(hash)) = (dirty, trusted, self.clean_hash) {
            return (Vec::new(), hash);
        }
        // The watcher named the files that changed: read those again only.
        if trusted && !changes.all {
            if let Some(problems) = self.reader.refresh(&changes.paths) {
                let hash = self.reader.input_hash();
                self.clean_hash = problems.is_empty().then_some(hash);
                return (problems, hash);
            }
        }
        self.last_scan = Instant::now();
        let problems = self.reader.read(&self.config.target.paths);
        let hash = self.reader.input_hash();
        self.clean_hash = problems.is_empty().then_some(hash);
        (problems, hash)
    }

    fn round(&mut self, node: &mut Node, on_invalid: &dyn Fn(&[Diagnostic])) -> RoundStatus {
        let start = Instant::now();
        let (problems, hash) = self.read();
        let target = &self.config.target;
        let read = start.elapsed();
        // When the documents are parsed (read's time when nothing was).
        let mut parsed = read;
        if problems.is_empty() && node.quiet(hash) {
            return self.succeeded(start, None);
        }
        let ruleset = match &self.last_input {
            Some(last) if last.hash == hash && problems.is_empty() => last.ruleset.clone(),
            _ => {
                let choice = NodeChoice::Named(target.node.clone());
                self.session.load(self.reader.files());
                parsed = start.elapsed();
                match self
                    .session
                    .compile_loaded(problems, &target.settings, &choice)
                {
                    Ok(compiled) => {
                        self.compile_summary = format!(
                            "{}, {} documents parsed",
                            self.session.path().as_str(),
                            self.session.parsed()
                        );
                        on_invalid(&compiled.warnings);
                        let ruleset = compiled.into_single();
                        self.last_input = Some(Compiled {
                            hash,
                            ruleset: ruleset.clone(),
                        });
                        ruleset
                    }
                    Err(failure) => {
                        let (why, status) = match failure {
                            Failure::Invalid(diagnostics) => {
                                on_invalid(&diagnostics);
                                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                                let why = format!(
                                    "invalid input ({errors} problems); the last good ruleset stays"
                                );
                                (why, RoundStatus::InvalidInput)
                            }
                            Failure::Usage(message) => (
                                format!("{message}; the last good ruleset stays"),
                                RoundStatus::Usage,
                            ),
                        };
                        node.forget();
                        return self.failed(start, "invalid-input", why, status);
                    }
                }
            }
        };
        let compiled = start.elapsed();
        let synced = match node.sync(&ruleset, false) {
            Ok(synced) => synced,
            Err(e) => {
                node.forget();
                let why = format!("the node refused: {e}; the previous ruleset stays");
                return self.failed(start, "apply", why, RoundStatus::Refused);
            }
        };
        let synced_at = start.elapsed();
        node.remember(hash, &synced);
        if let Some(drift) = &synced.drift {
            self.metrics.drift_repaired();
            tracing::warn!(
                "repaired drift in knc's rules: {}",
                drift.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            );
        }
        let deleted = Node::clean_conntrack(synced.previous.as_ref(), &ruleset);
        self.metrics.conntrack_deleted(deleted.entries);
        for error in &deleted.errors {
            tracing::warn!("conntrack cleanup: {error}");
        }
        self.serve_health_checks(&ruleset);
        // After the commit, off the change's path: a round's transient
        // buffers (a re-read file, the record's serialisation) go back.
        give_back_memory();
        self.metrics.set_services(ruleset.services.len() as u64);
        self.metrics.set_endpoints(endpoint_count(&ruleset));
        let took = start.elapsed();
        if synced.change != Change::Unchanged {
            tracing::info!(
                "synced {} Service ports: {}, {} commands, {} conntrack entries deleted, in {} ms \
                 (read {} ms: {}; parse {} ms, model+lower {} ms: {}; diff {} ms, kernel {} ms, \
                 record {} ms, after {} ms)",
                ruleset.services.len(),
                synced.change.as_str(),
                synced.commands,
                deleted.entries,
                took.as_millis(),
                read.as_millis(),
                self.reader.last_read(),
                parsed.saturating_sub(read).as_millis(),
                compiled.saturating_sub(parsed).as_millis(),
                self.compile_summary,
                synced_at
                    .saturating_sub(compiled)
                    .saturating_sub(synced.kernel_time)
                    .saturating_sub(synced.record_time)
                    .as_millis(),
                synced.kernel_time.as_millis(),
                synced.record_time.as_millis(),
                took.saturating_sub(synced_at).as_millis(),
            );
        } else {
            tracing::debug!("round: nothing changed ({} µs)", took.as_micros());
        }
        self.succeeded(start, Some(took))
    }

    /// Records a successful round (`took` when already measured).
    fn succeeded(&self, start: Instant, took: Option<Duration>) -> RoundStatus {
        let took = took.unwrap_or_else(|| start.elapsed());
        self.metrics.sync_succeeded(took, unix_now());
        if let Ok(mut health) = self.health.lock() {
            health.last_success = Some(Instant::now());
            health.last_success_unix = Some(unix_now());
            health.last_sync_duration = took;
            health.last_error = None;
        }
        RoundStatus::Applied
    }

    fn failed(
        &self,
        start: Instant,
        reason: &str,
        why: String,
        status: RoundStatus,
    ) -> RoundStatus {
        tracing::error!("{why}");
        self.metrics.sync_failed(start.elapsed(), reason);
        if let Ok(mut health) = self.health.lock() {
            health.last_error = Some(why);
        }
        status
    }

    fn serve_health_checks(&mut self, ruleset: &Ruleset) {
        let desired = healthcheck::desired(ruleset);
        if desired.is_empty() && self.health_checks.is_none() {
            return;
        }
        // Every local address, as kube-proxy's default: the Node object's
        // addresses need not be local (a cloud's external IP often is not).
        let servers = self
            .health_checks
            .get_or_insert_with(|| HealthCheckServers::new(Vec::new()));
        for (port, error) in servers.update(&desired) {
            tracing::warn!("cannot serve the health-check NodePort {port}: {error}");
        }
    }
}

/// Returns the heap's free memory to the system. A full compile's parse
/// trees and a full transaction's text are freed by then, but glibc keeps
/// freed memory in the middle of the heap mapped: without this a node
/// agent's resident memory stays at its first round's peak.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of glibc's heap; it
    // touches no memory the program uses and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn parent_of(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute.parent().map(Path::to_path_buf)
}

/// Distinct backends (address and port) over every entry.
fn endpoint_count(ruleset: &Ruleset) -> u64 {
    let mut all = std::collections::BTreeSet::new();
    for entry in &ruleset.services {
        for backend in entry.backends.cluster.iter().chain(&entry.backends.local) {
            all.insert((backend.address, backend.port));
        }
    }
    all.len() as u64
}
