//! `knc apply` and `knc cleanup` on a real node: the runtime commands run
//! inside node1's namespace (`ip netns exec`), with a state directory in
//! the topology's temp dir, and this proves that
//!
//! * `--dry-run` prints the transaction and changes nothing (no knc table
//!   or chain, nothing in the state directory); `apply` loads a working ruleset
//!   (`full`), a second `apply` of the same input sends nothing
//!   (`incremental (nothing changed)`, 0 commands, identical listing); `cleanup` removes knc's
//!   tables / chains and only those (foreign tables, rules and chains stay
//!   through every command), and a second `cleanup` is harmless;
//! * with 1,000 Services, changing one Service's endpoints is an
//!   `incremental` transaction of a handful of commands, and the result is
//!   exactly what a fresh full apply of the same input loads;
//! * `kill -9` of an `apply` of 5,000 Services at any moment leaves either
//!   the old ruleset or the new one, never a mixture;
//! * the iptables back end installs each of its jumps exactly once however
//!   often it is applied, repairs a jump deleted by hand, leaves no KNC
//!   chain the new ruleset does not declare, and `cleanup` leaves no KNC
//!   trace while foreign rules stay;
//! * a transaction the kernel tool refuses makes `apply` exit 3 with the
//!   tool's message, and the previous ruleset stays live.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Backend, From, Inputs, Pod, Rules, Topology};
use crate::incremental::normalised;
use crate::manifests::{cluster, ep, http_service, http_slice};
use crate::{backend_tests, require_kernel};

/// What the summary line (the last line on stderr) of `knc apply` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// `full`, `incremental` or `incremental (nothing changed)`.
    change: String,
    commands: usize,
    millis: u64,
    dry_run: bool,
}

/// One finished `knc` run.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (`None`: killed by a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    summary: Option<Summary>,
}

impl Run {
    fn from_output(out: Output) -> Run {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            summary: parse_summary(&stderr),
            stderr,
        }
    }

    /// Panics unless the run exited 0 with a summary saying `change`;
    /// returns the summary.
    pub(crate) fn expect(&self, change: &str) -> &Summary {
        assert_eq!(self.code, Some(0), "knc failed: {self:#?}");
        let summary = self
            .summary
            .as_ref()
            .unwrap_or_else(|| panic!("no summary line: {self:#?}"));
        assert_eq!(summary.change, change, "{self:#?}");
        summary
    }
}

/// Parses `applied 3 Service ports for node node1 (nft): incremental, 4
/// commands, in 12 ms (read+compile …)` (or the dry-run form) from the
/// last stderr line.
fn parse_summary(stderr: &str) -> Option<Summary> {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    let dry_run = line.starts_with("dry run, nothing applied: would apply ");
    if !dry_run && !line.starts_with("applied ") {
        return None;
    }
    let (_, tail) = line.split_once("): ")?;
    let mut parts = tail.split(", ");
    let change = parts.next()?.to_owned();
    let commands = parts.next()?.strip_suffix(" commands")?.parse().ok()?;
    let millis = parts
        .next()?
        .strip_prefix("in ")?
        .split(" ms")
        .next()?
        .parse()
        .ok()?;
    Some(Summary {
        change,
        commands,
        millis,
        dry_run,
    })
}

/// Runs the real `knc` binary inside node1 of a topology, with manifests
/// written into a fresh subdirectory of the topology's temp dir per call.
pub(crate) struct Knc<'t> {
    topo: &'t Topology,
    backend: Backend,
    /// The state directory the next calls use.
    state: PathBuf,
}

/// The cluster settings every `knc apply` and `knc compile` here gets.
const SETTINGS: [&str; 4] = [
    "--cluster-cidr",
    "10.244.0.0/16",
    "--service-cidr",
    "10.96.0.0/16",
];

/// Numbers the directories [`Knc`] creates (unique in this process, so
/// several `Knc`s may share one topology).
fn next() -> usize {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    CALLS.fetch_add(1, Ordering::Relaxed)
}

impl<'t> Knc<'t> {
    /// For `topo`'s back end, with state directory `<dir>/state`.
    pub(crate) fn new(topo: &'t Topology) -> Knc<'t> {
        let knc = Knc {
            topo,
            backend: topo.backend(),
            state: PathBuf::new(),
        };
        knc.with_fresh_state()
    }

    /// The same, with a new empty state directory.
    fn with_fresh_state(self) -> Knc<'t> {
        let n = next();
        let state = self.topo.dir().join(format!("state-{n}"));
        std::fs::create_dir(&state).expect("state dir");
        Knc { state, ..self }
    }

    fn backend_arg(&self) -> &'static str {
        match self.backend {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }

    /// Writes `manifests` into a new directory; returns it.
    fn write(&self, manifests: &str) -> PathBuf {
        let n = next();
        let dir = self.topo.dir().join(format!("apply-{n}"));
        std::fs::create_dir(&dir).expect("manifest dir");
        std::fs::write(dir.join("cluster.yaml"), manifests).expect("write manifests");
        dir
    }

    /// `ip netns exec <node1> knc ARGS`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.topo.node1().name()])
            .arg(env!("CARGO_BIN_EXE_knc"))
            .args(args);
        cmd
    }

    /// The `knc apply` command for `manifests` with `extra` arguments,
    /// and the inputs it applies.
    fn apply_command(&self, manifests: &str, extra: &[&str]) -> (Command, Inputs) {
        let dir = self.write(manifests);
        let mut cmd = self.command(&["apply"]);
        cmd.arg(&dir)
            .args(["--node", "node1"])
            .args(SETTINGS)
            .args(["--backend", self.backend_arg()])
            .arg("--state-dir")
            .arg(&self.state)
            .args(extra);
        (cmd, Inputs::new(dir, &[&SETTINGS[..], extra].concat()))
    }

    fn run(mut cmd: Command) -> Run {
        Run::from_output(cmd.output().expect("run knc"))
    }

    /// Runs an apply; when it succeeds, node1 runs `inputs`' rules.
    fn run_apply(&self, (cmd, inputs): (Command, Inputs)) -> Run {
        let run = Knc::run(cmd);
        if run.code == Some(0) {
            self.topo.rules_are(Rules::Compiled(vec![inputs]));
        }
        run
    }

    /// `knc apply` of `manifests`.
    pub(crate) fn apply(&self, manifests: &str) -> Run {
        self.run_apply(self.apply_command(manifests, &[]))
    }

    /// `knc apply --dry-run` of `manifests` (changes nothing).
    fn dry_run(&self, manifests: &str) -> Run {
        Knc::run(self.apply_command(manifests, &["--dry-run"]).0)
    }

    /// `knc apply` of `manifests` with `dir` first in `PATH`.
    fn apply_with_path_first(&self, manifests: &str, dir: &Path) -> Run {
        let (mut cmd, inputs) = self.apply_command(manifests, &[]);
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
        self.run_apply((cmd, inputs))
    }

    /// `knc apply` of `manifests`, started and not waited for: node1 runs
    /// the old rules or these (the test says which once it knows).
    fn spawn_apply(&self, manifests: &str) -> Child {
        let (mut cmd, _) = self.apply_command(manifests, &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.topo
            .rules_are(Rules::Unknown("a knc apply killed midway".into()));
        cmd.spawn().expect("spawn knc apply")
    }

    /// `knc cleanup` (both back ends) of this state directory.
    fn cleanup(&self) -> Run {
        let mut cmd = self.command(&["cleanup", "--backend", "all", "--state-dir"]);
        cmd.arg(&self.state);
        let run = Knc::run(cmd);
        if run.code == Some(0) {
            self.topo.rules_are(Rules::Nothing);
        }
        run
    }

    /// `knc compile` of `manifests` for node1 with `extra` arguments (the
    /// same cluster as [`Knc::apply`]).
    fn compile(&self, manifests: &str, extra: &[&str]) -> String {
        let dir = self.write(manifests);
        let out = Command::new(env!("CARGO_BIN_EXE_knc"))
            .arg("compile")
            .arg(&dir)
            .args(["--node", "node1"])
            .args(SETTINGS)
            .args(extra)
            .output()
            .expect("run knc compile");
        assert!(
            out.status.success(),
            "knc compile: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn has_record(&self) -> bool {
        self.state.join("applied.json").exists()
    }
}

/// An EndpointSlice for `service`'s `http` port with ready endpoints
/// `ips` (node2's, unless in 10.244.1.0/24).
fn slice_of(service: &str, ips: &[String]) -> String {
    let mut y = format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-x1
  namespace: default
  labels:
    kubernetes.io/service-name: {service}
addressType: IPv4
ports:
- name: \"http\"
  protocol: TCP
  port: 8080
endpoints:
"
    );
    for ip in ips {
        let node = if ip.starts_with("10.244.1.") {
            "node1"
        } else {
            "node2"
        };
        y += &format!(
            "- addresses: [\"{ip}\"]\n  conditions:\n    ready: true\n  nodeName: {node}\n"
        );
    }
    y
}

/// `count` filler Services `bulk-<i>` on 10.96.(10 + i / 250).(i % 250 + 1),
/// each with two endpoints that need not exist (10.244.(20 + i / 250).*
/// and 10.244.(60 + i / 250).*), plus `extra` documents.
fn bulk(count: usize, extra: &[&str]) -> String {
    let docs: Vec<String> = (0..count)
        .flat_map(|i| {
            let (hi, lo) = (i / 250, i % 250 + 1);
            let name = format!("bulk-{i}");
            [
                http_service(&name, &format!("10.96.{}.{lo}", 10 + hi)),
                slice_of(
                    &name,
                    &[
                        format!("10.244.{}.{lo}", 20 + hi),
                        format!("10.244.{}.{lo}", 60 + hi),
                    ],
                ),
            ]
        })
        .collect();
    let mut all: Vec<&str> = extra.to_vec();
    all.extend(docs.iter().map(String::as_str));
    cluster(&all)
}

/// The lines `-A <chain> <rule>` of each of knc's iptables hooks in
/// `save` (an `iptables-save` dump), counted per hook in
/// [`hooks`](knc_compiler::back::iptables::hooks) order.
fn hook_counts(save: &str) -> Vec<usize> {
    let hooks = knc_compiler::back::iptables::hooks();
    let mut counts = vec![0; hooks.len()];
    let mut table = "";
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t;
        } else if let Some(rule) = line.strip_prefix("-A ") {
            for (i, hook) in hooks.iter().enumerate() {
                if hook.table == table && rule == format!("{} {}", hook.chain, hook.rule) {
                    counts[i] += 1;
                }
            }
        }
    }
    counts
}

/// The `(table, chain)` of every `:KNC-…` chain an `iptables-save` dump or
/// an `iptables-restore` input declares.
fn knc_chains(text: &str) -> Vec<(String, String)> {
    let mut table = "";
    let mut chains = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t;
        } else if let Some(decl) = line.strip_prefix(":KNC-") {
            let chain = decl.split_whitespace().next().unwrap_or_default();
            chains.push((table.to_owned(), format!("KNC-{chain}")));
        }
    }
    chains.sort();
    chains.dedup();
    chains
}

/// A foreign nft table with a rule, and with the iptables back end also a
/// foreign iptables rule and chain, in node1.
fn add_foreign(topo: &Topology) {
    let node1 = topo.node1();
    node1.exec("nft", &["add", "table", "inet", "foreign"]);
    node1.exec("nft", &["add", "chain", "inet", "foreign", "c"]);
    node1.exec(
        "nft",
        &["add", "rule", "inet", "foreign", "c", "counter", "accept"],
    );
    if topo.backend() == Backend::Iptables {
        node1.exec(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-m",
                "comment",
                "--comment",
                "foreign",
                "-j",
                "ACCEPT",
            ],
        );
        node1.exec("iptables", &["-t", "filter", "-N", "FOREIGN"]);
        node1.exec(
            "iptables",
            &["-t", "filter", "-A", "FOREIGN", "-j", "RETURN"],
        );
    }
}

/// Panics unless what [`add_foreign`] added is all still there.
fn assert_foreign_intact(topo: &Topology, after: &str) {
    let table = topo.nft(&["list", "table", "inet", "foreign"]);
    assert!(
        table.contains("chain c") && table.contains("counter") && table.contains("accept"),
        "foreign nft table damaged after {after}:\n{table}"
    );
    if topo.backend() == Backend::Iptables {
        let save = topo.iptables_save();
        for line in [
            "-A PREROUTING -m comment --comment foreign -j ACCEPT",
            ":FOREIGN",
            "-A FOREIGN -j RETURN",
        ] {
            assert!(
                save.lines().any(|l| l.starts_with(line)),
                "foreign iptables `{line}` gone after {after}:\n{save}"
            );
        }
    }
}

/// True when node1 has any knc table (nft) or KNC chain (iptables, both
/// families).
fn knc_present(topo: &Topology) -> bool {
    let tables = topo.nft(&["list", "tables"]);
    let ip6 = topo.node1().exec("ip6tables-save", &[]);
    tables.lines().any(|l| l.trim().ends_with(" knc"))
        || topo.iptables_save().contains("KNC")
        || ip6.contains("KNC")
}

/// What this back end's listing of node1 is, for comparing two rulesets.
fn listing(topo: &Topology) -> Value {
    match topo.backend() {
        Backend::Nft => normalised(topo),
        Backend::Iptables => Value::String(topo.iptables_save()),
    }
}

backend_tests!(apply_loads_reapply_changes_nothing_dry_run_touches_nothing);
fn apply_loads_reapply_changes_nothing_dry_run_touches_nothing(backend: Backend) {
    require_kernel!("apply_loads_reapply_changes_nothing_dry_run_touches_nothing");
    let topo = Topology::build_for(
        backend,
        "apl",
        &[
            Pod::web("web-a", "10.244.1.1"),
            Pod::web("web-r", "10.244.2.1"),
        ],
    );
    add_foreign(&topo);
    let knc = Knc::new(&topo);
    let manifests = cluster(&[
        &http_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.1"), ep("10.244.2.1")]),
    ]);

    let dry = knc.dry_run(&manifests);
    let summary = dry.expect("full");
    assert!(summary.dry_run, "{dry:#?}");
    let marker = match backend {
        Backend::Nft => "table ip knc",
        Backend::Iptables => "-j KNC-SERVICES",
    };
    assert!(
        dry.stdout.contains(marker),
        "no transaction on stdout: {dry:#?}"
    );
    assert!(dry.stdout.contains("10.96.0.10"), "{dry:#?}");
    assert!(!knc_present(&topo), "the dry run loaded rules");
    assert!(!knc.has_record(), "the dry run wrote applied.json");
    assert!(
        std::fs::read_dir(&knc.state).unwrap().next().is_none(),
        "the dry run wrote into the state directory"
    );
    assert_foreign_intact(&topo, "apply --dry-run");

    let first = knc.apply(&manifests);
    let full = first.expect("full").clone();
    assert!(full.commands > 0, "{first:#?}");
    assert!(knc.has_record());
    assert_foreign_intact(&topo, "apply");
    let elsewhere = topo.client().exec("nft", &["list", "ruleset"]);
    assert!(
        elsewhere.trim().is_empty(),
        "rules appeared outside node1, in the client's namespace:\n{elsewhere}"
    );
    topo.tcp(From::Client, "10.96.0.10:80", 30)
        .assert_pods(&["web-a", "web-r"]);
    let loaded = listing(&topo);

    let again = knc.apply(&manifests);
    assert_eq!(
        again.expect("incremental (nothing changed)").commands,
        0,
        "{again:#?}"
    );
    assert_eq!(listing(&topo), loaded, "a second apply changed the ruleset");
    assert_foreign_intact(&topo, "a second apply");
    topo.tcp(From::Client, "10.96.0.10:80", 30)
        .assert_pods(&["web-a", "web-r"]);
    eprintln!(
        "[{}] apply: full, {} commands, {} ms; again: unchanged in {} ms",
        topo.id(),
        full.commands,
        full.millis,
        again.summary.as_ref().unwrap().millis
    );

    let cleanup = knc.cleanup();
    assert_eq!(cleanup.code, Some(0), "{cleanup:#?}");
    assert!(!knc_present(&topo), "cleanup left knc rules behind");
    assert!(!knc.has_record(), "cleanup kept applied.json");
    assert_foreign_intact(&topo, "cleanup");
    let twice = knc.cleanup();
    assert_eq!(twice.code, Some(0), "{twice:#?}");
    assert_foreign_intact(&topo, "a second cleanup");
}

#[test]
fn incremental_at_1000_services() {
    require_kernel!("incremental_at_1000_services");
    let topo = Topology::build(
        "a1k",
        &[
            Pod::web("web-a", "10.244.1.1"),
            Pod::web("web-b", "10.244.1.2"),
            Pod::web("web-c", "10.244.1.3"),
            Pod::web("web-r", "10.244.2.1"),
        ],
    );
    let with = |ips: &[&str]| {
        let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        bulk(
            999,
            &[&http_service("web", "10.96.0.10"), &slice_of("web", &ips)],
        )
    };
    let old = with(&["10.244.1.1", "10.244.1.2"]);
    let new = with(&["10.244.1.3", "10.244.2.1"]);
    let knc = Knc::new(&topo);

    let first = knc.apply(&old);
    let full = first.expect("full").clone();
    topo.tcp(From::Client, "10.96.0.10:80", 30)
        .assert_pods(&["web-a", "web-b"]);

    let second = knc.apply(&new);
    let incremental = second.expect("incremental").clone();
    assert!(
        incremental.commands <= 6,
        "one Service's endpoints changed, yet {} commands: {second:#?}",
        incremental.commands
    );
    topo.tcp(From::Client, "10.96.0.10:80", 30)
        .assert_pods(&["web-c", "web-r"]);
    let after_incremental = normalised(&topo);

    let cleanup = knc.cleanup();
    assert_eq!(cleanup.code, Some(0), "{cleanup:#?}");
    let fresh = Knc::new(&topo);
    let reload = fresh.apply(&new);
    let reloaded = reload.expect("full").clone();
    assert!(
        normalised(&topo) == after_incremental,
        "the incremental apply left a ruleset different from a full apply of the same input"
    );
    eprintln!(
        "[{}] 1,000 Services: full {} commands in {} ms; one endpoint change: \
         incremental {} commands in {} ms; fresh full {} commands in {} ms",
        topo.id(),
        full.commands,
        full.millis,
        incremental.commands,
        incremental.millis,
        reloaded.commands,
        reloaded.millis
    );
}

/// Reads [`normalised`] until two reads 200 ms apart agree (an `nft`
/// started by a killed knc may still be committing); at most 30 s.
fn settled(topo: &Topology) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = normalised(topo);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = normalised(topo);
        if now == last {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "node1's ruleset kept changing for 30 s"
        );
        last = now;
    }
}

#[test]
fn kill_9_during_a_large_apply_leaves_old_or_new() {
    require_kernel!("kill_9_during_a_large_apply_leaves_old_or_new");
    let topo = Topology::build("kill", &[Pod::web("web-a", "10.244.1.1")]);
    let old = cluster(&[
        &http_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.1")]),
    ]);
    let new = bulk(5000, &[]);
    let mut knc = Knc::new(&topo);
    knc.apply(&old).expect("full");
    let old_listing = normalised(&topo);

    // The new listing, from an apply left to finish; its wall time sets
    // the kill delays, so that kills land during the compile, during
    // `nft --check`, during the commit and around its end.
    knc = knc.with_fresh_state();
    let started = Instant::now();
    let done = knc.apply(&new);
    let wall = started.elapsed().as_millis() as u64;
    let full = done.expect("full").clone();
    let new_listing = normalised(&topo);
    assert!(new_listing != old_listing);

    let mut delays = vec![0, 30, 100, 300];
    delays.extend([50, 70, 80, 85, 90, 95, 98, 105].map(|percent| wall * percent / 100));
    let mut outcomes = Vec::new();
    for &delay in &delays {
        knc = knc.with_fresh_state();
        knc.apply(&old).expect("full");
        assert!(normalised(&topo) == old_listing, "reset to old failed");
        let mut child = knc.spawn_apply(&new);
        std::thread::sleep(Duration::from_millis(delay));
        // `ip netns exec` execs knc: this pid is knc's.
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill on the pid of our own child, not yet waited for.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let status = child.wait().expect("wait knc");
        let live = settled(&topo);
        // Whatever the kill left in the state directory (a record of old
        // or of new, a transaction file), the next apply with it recovers.
        let recover = knc.apply(&old);
        assert_eq!(
            recover.code,
            Some(0),
            "after the kill at {delay} ms: {recover:#?}"
        );
        assert!(
            normalised(&topo) == old_listing,
            "apply after the kill at {delay} ms did not bring back old: {recover:#?}"
        );
        let recovered = recover.summary.map(|s| s.change).unwrap_or_default();
        outcomes.push((delay, status, live, recovered));
    }

    let mut report = Vec::new();
    let (mut olds, mut news) = (0, 0);
    for (delay, status, live, recovered) in &outcomes {
        let which = if *live == old_listing {
            olds += 1;
            "old"
        } else if *live == new_listing {
            news += 1;
            "new"
        } else {
            panic!("kill -9 after {delay} ms ({status}) left neither the old nor the new ruleset")
        };
        report.push(format!(
            "{delay} ms: {which} ({status}; back to old: {recovered})"
        ));
    }
    eprintln!(
        "[{}] kill -9 of an apply of 5,000 Services (full apply: {} commands, {} ms wall): \
         {olds} old, {news} new; {}",
        topo.id(),
        full.commands,
        wall,
        report.join("; ")
    );
}

#[test]
fn iptables_apply_reapply_cleanup_no_duplicate_jumps_no_leftovers() {
    require_kernel!("iptables_apply_reapply_cleanup_no_duplicate_jumps_no_leftovers");
    let topo = Topology::build_for(
        Backend::Iptables,
        "aipt",
        &[
            Pod::web("web-a", "10.244.1.1"),
            Pod::web("web-b", "10.244.1.2"),
        ],
    );
    add_foreign(&topo);
    let knc = Knc::new(&topo);
    let a = cluster(&[
        &http_service("one", "10.96.3.1"),
        &http_slice("one", &[ep("10.244.1.1")]),
        &http_service("two", "10.96.3.2"),
        &http_slice("two", &[ep("10.244.1.2")]),
    ]);
    let b = cluster(&[
        &http_service("one", "10.96.3.1"),
        &http_slice("one", &[ep("10.244.1.1")]),
    ]);

    let check = |manifests: &str, after: &str| {
        let save = topo.iptables_save();
        assert_eq!(
            hook_counts(&save),
            vec![1; knc_compiler::back::iptables::hooks().len()],
            "knc's jumps are not there exactly once each after {after}:\n{save}"
        );
        let declared = knc_chains(&knc.compile(manifests, &["--format", "iptables"]));
        assert!(!declared.is_empty());
        assert_eq!(
            knc_chains(&save),
            declared,
            "live KNC chains differ from the compiled ones after {after}:\n{save}"
        );
        assert_foreign_intact(&topo, after);
        topo.tcp(From::Client, "10.96.3.1:80", 3)
            .assert_pods(&["web-a"]);
    };

    knc.apply(&a).expect("full");
    check(&a, "apply A");
    topo.tcp(From::Client, "10.96.3.2:80", 3)
        .assert_pods(&["web-b"]);
    let again = knc.apply(&a);
    assert_eq!(again.expect("incremental (nothing changed)").commands, 0);
    check(&a, "apply A again");
    knc.apply(&b).expect("full");
    check(&b, "apply B");
    topo.tcp(From::Client, "10.96.3.2:80", 2).assert_timeout();

    topo.node1().exec(
        "iptables",
        &[
            "-t",
            "nat",
            "-D",
            "PREROUTING",
            "-m",
            "comment",
            "--comment",
            "knc-services",
            "-j",
            "KNC-SERVICES",
        ],
    );
    assert_eq!(hook_counts(&topo.iptables_save())[0], 0);
    let repair = knc.apply(&b);
    repair.expect("full");
    assert!(
        repair.stderr.contains("differed from the last apply"),
        "the deleted jump was not reported as drift: {repair:#?}"
    );
    check(&b, "apply B after deleting a jump by hand");

    let cleanup = knc.cleanup();
    assert_eq!(cleanup.code, Some(0), "{cleanup:#?}");
    let save = topo.node1().exec("iptables-save", &[]);
    let save6 = topo.node1().exec("ip6tables-save", &[]);
    assert!(
        !save.contains("KNC"),
        "iptables-save after cleanup:\n{save}"
    );
    assert!(
        !save6.contains("KNC"),
        "ip6tables-save after cleanup:\n{save6}"
    );
    assert_foreign_intact(&topo, "cleanup");
}

#[test]
fn a_failed_apply_leaves_the_previous_ruleset_and_exits_3() {
    require_kernel!("a_failed_apply_leaves_the_previous_ruleset_and_exits_3");
    let topo = Topology::build(
        "afail",
        &[
            Pod::web("web-a", "10.244.1.1"),
            Pod::web("web-b", "10.244.1.2"),
        ],
    );
    let knc = Knc::new(&topo);
    let a = cluster(&[
        &http_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.1")]),
    ]);
    let b = cluster(&[
        &http_service("web", "10.96.0.10"),
        &http_slice("web", &[ep("10.244.1.2")]),
        &http_service("more", "10.96.0.11"),
        &http_slice("more", &[ep("10.244.1.1")]),
    ]);
    knc.apply(&a).expect("full");
    let applied = normalised(&topo);

    // An `nft` that refuses everything, first in PATH for one apply.
    let fake = topo.dir().join("fake-bin");
    std::fs::create_dir(&fake).unwrap();
    let script = fake.join("nft");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Error: simulated refusal' >&2\nexit 1\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();

    let refused = knc.apply_with_path_first(&b, &fake);
    assert_eq!(refused.code, Some(3), "{refused:#?}");
    assert!(
        refused.stderr.contains("Error: simulated refusal"),
        "the tool's message is missing: {refused:#?}"
    );
    assert!(
        normalised(&topo) == applied,
        "a refused apply changed the live ruleset"
    );
    topo.tcp(From::Client, "10.96.0.10:80", 3)
        .assert_pods(&["web-a"]);

    let later = knc.apply(&b);
    assert_eq!(later.code, Some(0), "{later:#?}");
    topo.tcp(From::Client, "10.96.0.10:80", 3)
        .assert_pods(&["web-b"]);
    topo.tcp(From::Client, "10.96.0.11:80", 3)
        .assert_pods(&["web-a"]);
    eprintln!(
        "[{}] refused apply: exit 3; the next apply: {:?}",
        topo.id(),
        later.summary
    );
}
