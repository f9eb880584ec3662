//! `knc reconcile` running on node1 (inside its namespace, with its own
//! state directory and its metrics on 127.0.0.1 there), fed by a manifests
//! directory whose `current` symlink is swapped atomically to new revision
//! directories the way git-sync does. These tests prove that:
//!
//! * twenty swaps that add, remove and change other Services never make a
//!   Service that stays the same miss a connection, and the ruleset left
//!   behind equals a fresh `knc apply` of the last revision; SIGTERM exits
//!   0 and leaves the rules in place;
//! * drift (a deleted element, an inserted rule, the deleted table) is
//!   repaired in one round and counted once each in
//!   `knc_drift_repairs_total`;
//! * invalid input is counted, keeps the last good ruleset (and traffic)
//!   and the next valid revision is applied;
//! * a second `knc apply` on the same state directory waits, then exits 3
//!   naming the reconcile holding the lock;
//! * a UDP flow to a backend that a revision removes has its conntrack
//!   entry deleted, so the same client socket reaches the remaining
//!   backend;
//! * health-check NodePorts answer 200 / 503 with the local endpoint count
//!   as node1's endpoints come and go, and close with their Service.
//!
//! Every test is bounded in time: a reconcile that never syncs fails the
//! test with its captured standard error.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{From, Inputs, Pod, Rules, Topology, CLIENT, SPREAD};
use crate::incremental::normalised;
use crate::manifests::{cluster, ep, http_service, http_slice, slice, Ep, ServiceYaml};
use crate::netns::Netns;
use crate::probe::{parse_reply, Attempt, Probes, Proto};
use crate::require_kernel;

/// Where reconcile serves /metrics and /healthz, inside node1.
const METRICS: &str = "127.0.0.1:10249";

/// The node and CIDR flags of every `knc apply` / `knc reconcile` here.
const NODE_FLAGS: [&str; 6] = [
    "--node",
    "node1",
    "--cluster-cidr",
    "10.244.0.0/16",
    "--service-cidr",
    "10.96.0.0/16",
];

/// The first round may take a while on a loaded machine (debug binary).
const FIRST_SYNC: Duration = Duration::from_secs(20);

/// Polls `cond` every 50 ms until it holds (returns how long that took) or
/// `timeout` passes (returns `None`).
fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` over HTTP/1.0 to `addr` from a thread inside `ns`: the status
/// and the body.
fn http_get(ns: &Netns, addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let path = path.to_owned();
    ns.run_in(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.set_write_timeout(Some(Duration::from_secs(3)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no HTTP status in {head:?}")))?;
        Ok((status, body.to_owned()))
    })
}

/// The value of the sample `name` (with its labels exactly as exposed, e.g.
/// `knc_syncs_total{result="success"}`) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Runs `knc ARGS` inside node1; returns (exit status, stderr, how long it
/// took).
fn knc_in(topo: &Topology, args: &[&str]) -> (ExitStatus, String, Duration) {
    let start = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            topo.node1().name(),
            env!("CARGO_BIN_EXE_knc"),
        ])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run knc");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

/// A `knc reconcile` running in node1 on a manifests directory of its own
/// (`<topology dir>/manifests/rev-N`, `current` pointing at the latest),
/// with its own state directory. Stopped (SIGTERM by pid, then SIGKILL)
/// and waited for when dropped, also when the test panics; a panicking
/// test prints its standard error.
struct Reconcile<'t> {
    topo: &'t Topology,
    manifests: PathBuf,
    state: PathBuf,
    log: PathBuf,
    revisions: Cell<usize>,
    /// The valid revisions node1 may run, newest first: the newest may not
    /// be applied yet ([`Reconcile::wait_rounds`] narrows them to it).
    live: RefCell<Vec<Inputs>>,
    child: RefCell<Option<Child>>,
    pid: u32,
}

impl<'t> Reconcile<'t> {
    /// Writes `first` as revision 1 and starts reconcile on it with
    /// `--interval interval`; returns once the first sync succeeded.
    fn start(topo: &'t Topology, first: &str, interval: &str) -> Reconcile<'t> {
        let manifests = topo.dir().join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let state = topo.dir().join("state");
        let log = topo.dir().join("reconcile.stderr");
        let mut r = Reconcile {
            topo,
            manifests,
            state,
            log,
            revisions: Cell::new(0),
            live: RefCell::new(Vec::new()),
            child: RefCell::new(None),
            pid: 0,
        };
        r.swap(first);
        let stderr = std::fs::File::create(&r.log).unwrap();
        let current = r.current();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                topo.node1().name(),
                env!("CARGO_BIN_EXE_knc"),
            ])
            .arg("reconcile")
            .arg(&current)
            .args(NODE_FLAGS)
            .args(["--interval", interval, "--metrics-addr", METRICS])
            .arg("--state-dir")
            .arg(&r.state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn knc reconcile");
        r.pid = child.id();
        *r.child.borrow_mut() = Some(child);
        r.wait_until(FIRST_SYNC, "the first successful sync", || {
            r.try_metric("knc_syncs_total{result=\"success\"}")
                .is_some_and(|v| v >= 1.0)
        });
        r.narrow();
        r
    }

    /// Tells the topology which revisions node1 may run now.
    fn tell(&self) {
        self.topo
            .rules_are(Rules::Compiled(self.live.borrow().clone()));
    }

    /// A round read the newest revision: node1 runs it.
    fn narrow(&self) {
        self.live.borrow_mut().truncate(1);
        self.tell();
    }

    /// The PATH reconcile reads: the symlink to the latest revision.
    fn current(&self) -> PathBuf {
        self.manifests.join("current")
    }

    /// Writes `yaml` as the next revision directory and points `current` at
    /// it atomically (a new symlink renamed over the old, as git-sync does).
    fn swap(&self, yaml: &str) -> usize {
        let n = self.write_revision(yaml);
        let rev = self.manifests.join(format!("rev-{n}"));
        self.live
            .borrow_mut()
            .insert(0, Inputs::new(rev, &NODE_FLAGS[2..]));
        self.tell();
        n
    }

    /// Like [`Reconcile::swap`], for a revision knc refuses (invalid
    /// input is never applied: node1 keeps what it runs).
    fn swap_invalid(&self, yaml: &str) -> usize {
        self.write_revision(yaml)
    }

    /// Writes the next revision and points `current` at it.
    fn write_revision(&self, yaml: &str) -> usize {
        let n = self.revisions.get() + 1;
        self.revisions.set(n);
        let rev = format!("rev-{n}");
        let dir = self.manifests.join(&rev);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cluster.yaml"), yaml).unwrap();
        let tmp = self.manifests.join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&rev, &tmp).unwrap();
        std::fs::rename(&tmp, self.current()).unwrap();
        n
    }

    /// Panics (with reconcile's stderr) when reconcile has exited.
    fn assert_running(&self) {
        let mut child = self.child.borrow_mut();
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                child.take();
                panic!(
                    "knc reconcile exited early ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Polls `cond` (bounded by `timeout`, checking reconcile is still
    /// running); panics naming `what` when it never holds.
    fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut() -> bool,
    ) -> Duration {
        let took = poll(timeout, || {
            self.assert_running();
            cond()
        });
        took.unwrap_or_else(|| {
            panic!(
                "[{}] timed out after {timeout:?} waiting for {what}",
                self.topo.id()
            )
        })
    }

    /// reconcile's standard error so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rounds that changed the kernel so far (each logs one `synced` line).
    fn synced_lines(&self) -> usize {
        self.stderr()
            .lines()
            .filter(|l| l.contains(" synced "))
            .count()
    }

    /// `GET path` on the metrics address, from inside node1.
    fn get_metrics_addr(&self, path: &str) -> io::Result<(u16, String)> {
        http_get(self.topo.node1(), METRICS.parse().unwrap(), path)
    }

    /// The status of `/healthz`.
    fn healthz(&self) -> u16 {
        match self.get_metrics_addr("/healthz") {
            Ok((status, _)) => status,
            Err(e) => panic!("GET /healthz: {e}"),
        }
    }

    fn try_metric(&self, name: &str) -> Option<f64> {
        match self.get_metrics_addr("/metrics") {
            Ok((200, text)) => sample(&text, name),
            _ => None,
        }
    }

    /// The current value of the sample `name` (labels included).
    fn metric(&self, name: &str) -> f64 {
        let (status, text) = self
            .get_metrics_addr("/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(status, 200, "GET /metrics: {text}");
        sample(&text, name).unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
    }

    fn successes(&self) -> f64 {
        self.metric("knc_syncs_total{result=\"success\"}")
    }

    /// Waits until `n` more successful rounds have completed than now;
    /// after a swap, `n = 2` proves a round read the new revision (the first
    /// may have started before the swap).
    fn wait_rounds(&self, n: usize, timeout: Duration) -> Duration {
        let goal = self.successes() + n as f64;
        let took = self.wait_until(timeout, &format!("{n} more successful rounds"), || {
            self.try_metric("knc_syncs_total{result=\"success\"}")
                .is_some_and(|v| v >= goal)
        });
        if n >= 2 {
            self.narrow();
        }
        took
    }

    /// SIGTERM by pid; the exit status, within `limit`.
    fn stop(&self, limit: Duration) -> ExitStatus {
        let mut child = self.child.borrow_mut().take().expect("reconcile running");
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped yet (so the pid cannot have been reused).
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait reconcile") {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "knc reconcile did not exit within {limit:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Reconcile<'_> {
    /// After reconcile stopped: the ruleset it left lists exactly as one
    /// `knc apply` of the current revision into clean tables.
    fn assert_lists_like_a_fresh_apply(&self) {
        let topo = self.topo;
        let live = normalised(topo);
        let state = self.state.to_str().unwrap().to_owned();
        let (status, err, _) = knc_in(topo, &["cleanup", "--state-dir", &state]);
        assert!(status.success(), "knc cleanup: {status}\n{err}");
        let fresh_state = topo.dir().join("fresh-state");
        let current = self.current();
        let mut args = vec!["apply", current.to_str().unwrap()];
        args.extend(NODE_FLAGS);
        args.extend(["--state-dir", fresh_state.to_str().unwrap()]);
        let (status, err, _) = knc_in(topo, &args);
        assert!(status.success(), "knc apply: {status}\n{err}");
        self.narrow();
        assert_eq!(
            live,
            normalised(topo),
            "the ruleset reconcile left differs from a fresh apply of the current revision"
        );
    }
}

impl Drop for Reconcile<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().take() {
            if let Ok(None) = child.try_wait() {
                // SAFETY: as in `stop`: our own, unreaped child.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
                let start = Instant::now();
                while matches!(child.try_wait(), Ok(None))
                    && start.elapsed() < Duration::from_secs(5)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "\n===== [{}] knc reconcile stderr =====\n{}",
                self.topo.id(),
                self.stderr()
            );
        }
    }
}

/// Appends the documents of `docs` after the Nodes.
fn cluster_of(docs: &[String]) -> String {
    cluster(&docs.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The Service every churn revision keeps exactly as it is.
fn stable_docs() -> Vec<String> {
    vec![
        http_service("stable", "10.96.3.1"),
        http_slice("stable", &[ep("10.244.1.1"), ep("10.244.1.2")]),
    ]
}

/// Revision `i` of the churn: `stable` unchanged; `other-0..3` each absent
/// from every third revision, with endpoints rotating over three pods;
/// `other-3` is a NodePort Service, so its coming and going changes the
/// ruleset's structure, not only its elements.
fn churn(i: usize) -> String {
    const POOL: [&str; 3] = ["10.244.1.3", "10.244.1.4", "10.244.2.1"];
    let mut docs = stable_docs();
    for j in 0..4 {
        if (i + j).is_multiple_of(3) {
            continue;
        }
        let name = format!("other-{j}");
        let ip = format!("10.96.3.{}", 10 + j);
        let eps: Vec<Ep> = (0..3)
            .filter(|&k| (i + j + k).is_multiple_of(2) || k == (i + j) % 3)
            .map(|k| ep(POOL[k]))
            .collect();
        let service = if j == 3 {
            ServiceYaml::cluster_ip(&name, &ip)
                .http()
                .node_port(30090)
                .yaml()
        } else {
            http_service(&name, &ip)
        };
        docs.push(service);
        docs.push(http_slice(&name, &eps));
    }
    cluster_of(&docs)
}

#[test]
fn reconcile_under_change_drops_no_probe() {
    require_kernel!("reconcile_under_change_drops_no_probe");
    let topo = Topology::build(
        "rc-churn",
        &[
            Pod::web("s-a", "10.244.1.1"),
            Pod::web("s-b", "10.244.1.2"),
            Pod::web("o-1", "10.244.1.3"),
            Pod::web("o-2", "10.244.1.4"),
            Pod::web("o-r", "10.244.2.1"),
        ],
    );
    let r = Reconcile::start(&topo, &churn(0), "1s");
    topo.tcp(From::Client, "10.96.3.1:80", SPREAD)
        .assert_pods(&["s-a", "s-b"]);

    let mut probes = Vec::new();
    let mut latencies = Vec::new();
    let start = Instant::now();
    for i in 1..=20 {
        let before = r.synced_lines();
        let swapped = Instant::now();
        r.swap(&churn(i));
        let mut seen = None;
        for k in 0..4 {
            probes.push(topo.tcp(From::Client, "10.96.3.1:80", 1));
            std::thread::sleep(Duration::from_millis(50 + ((i * 4 + k) * 37 % 100) as u64));
            if seen.is_none() && r.synced_lines() > before {
                seen = Some(swapped.elapsed());
            }
        }
        latencies.push(seen);
        r.assert_running();
    }
    let churned = start.elapsed();
    let failed: Vec<_> = probes
        .iter()
        .filter(|p| p.pods().len() != p.attempts.len())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} probes of the stable Service failed during the churn:\n{failed:#?}",
        failed.len(),
        probes.len()
    );
    let answered: BTreeSet<String> = probes.iter().flat_map(|p| p.pods()).collect();
    assert!(
        answered.iter().all(|p| p == "s-a" || p == "s-b"),
        "the stable Service reached {answered:?}"
    );

    // Two more successful rounds: one of them read the last revision.
    r.wait_rounds(2, Duration::from_secs(10));
    let log = r.stderr();
    let synced: Vec<&str> = log.lines().filter(|l| l.contains(" synced ")).collect();
    let full = synced.iter().filter(|l| l.contains(": full,")).count();
    eprintln!(
        "[{}] churn: 20 swaps in {churned:?}, {} probes all answered ({answered:?}), \
         {} rounds changed the kernel ({full} full replaces, the rest incremental); \
         first `synced` line seen after a swap (within the probe loop): {latencies:?}",
        topo.id(),
        probes.len(),
        synced.len()
    );

    let stopping = Instant::now();
    let status = r.stop(Duration::from_secs(5));
    eprintln!(
        "[{}] SIGTERM: exited {status} after {:?}",
        topo.id(),
        stopping.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exit status; stderr:\n{}",
        r.stderr()
    );
    let tables = topo.nft(&["list", "tables"]);
    assert!(
        tables.contains("table ip knc"),
        "knc's table is gone after SIGTERM:\n{tables}"
    );
    topo.tcp(From::Client, "10.96.3.1:80", SPREAD)
        .assert_pods(&["s-a", "s-b"]);

    r.assert_lists_like_a_fresh_apply();
}

/// The text form of a key in nft's JSON listing (`a . b . c`).
fn nft_key(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.contains_key("concat") => o["concat"]
            .as_array()
            .unwrap()
            .iter()
            .map(nft_key)
            .collect::<Vec<_>>()
            .join(" . "),
        Value::Object(o) if o.contains_key("elem") => nft_key(&o["elem"]["val"]),
        Value::Object(o) if o.contains_key("prefix") => {
            format!("{}/{}", nft_key(&o["prefix"]["addr"]), o["prefix"]["len"])
        }
        other => panic!("unexpected nft key {other}"),
    }
}

#[test]
fn drift_is_repaired_in_one_round_and_counted() {
    require_kernel!("drift_is_repaired_in_one_round_and_counted");
    let topo = Topology::build(
        "rc-drift",
        &[Pod::web("d-a", "10.244.1.1"), Pod::web("d-b", "10.244.1.2")],
    );
    let mut docs = stable_docs();
    docs.push(http_service("second", "10.96.3.2"));
    docs.push(http_slice("second", &[ep("10.244.1.2")]));
    let r = Reconcile::start(&topo, &cluster_of(&docs), "500ms");
    r.wait_rounds(1, Duration::from_secs(5));
    let expected = normalised(&topo);
    assert_eq!(r.metric("knc_drift_repairs_total"), 0.0);

    let listing: Value =
        serde_json::from_str(&topo.nft(&["-j", "list", "map", "ip", "knc", "frontends"])).unwrap();
    let map = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("map"))
        .expect("the frontends map");
    let key = nft_key(&map["elem"][0][0]);

    let element = format!("{{ {key} }}");
    let drifts: [(&str, Vec<&str>); 3] = [
        (
            "an element deleted",
            vec!["delete", "element", "ip", "knc", "frontends", &element],
        ),
        (
            "a rule inserted",
            vec![
                "insert", "rule", "ip", "knc", "services", "counter", "accept",
            ],
        ),
        ("the table deleted", vec!["delete", "table", "ip", "knc"]),
    ];
    for (n, (what, command)) in drifts.iter().enumerate() {
        let n = (n + 1) as f64;
        // (`nft` panics when the command fails; whether it made a
        // difference is not checked here, as the next round may already
        // have repaired it: the counter below proves it was seen.)
        topo.nft(command);
        let took = r.wait_until(
            Duration::from_secs(5),
            &format!("{what}: repaired and counted"),
            || r.try_metric("knc_drift_repairs_total") == Some(n) && normalised(&topo) == expected,
        );
        eprintln!("[{}] {what}: repaired and counted in {took:?}", topo.id());
        // Two more rounds: nothing more to repair, nothing more counted.
        r.wait_rounds(2, Duration::from_secs(5));
        assert_eq!(r.metric("knc_drift_repairs_total"), n, "after {what}");
        assert_eq!(normalised(&topo), expected, "after {what}");
    }
    topo.tcp(From::Client, "10.96.3.1:80", SPREAD)
        .assert_pods(&["d-a", "d-b"]);
}

#[test]
fn invalid_input_keeps_the_last_good_ruleset_and_recovers() {
    require_kernel!("invalid_input_keeps_the_last_good_ruleset_and_recovers");
    let topo = Topology::build(
        "rc-invalid",
        &[
            Pod::web("i-a", "10.244.1.1"),
            Pod::web("i-b", "10.244.1.2"),
            Pod::web("i-n", "10.244.1.3"),
        ],
    );
    let r = Reconcile::start(&topo, &cluster_of(&stable_docs()), "1s");
    r.wait_rounds(1, Duration::from_secs(5));
    let good = normalised(&topo);
    let invalid_failures = "knc_sync_failures_total{reason=\"invalid-input\"}";
    let failures = r.metric(invalid_failures);
    assert_eq!(failures, 0.0);

    let mut docs = stable_docs();
    docs.push(
        "apiVersion: v1
kind: Service
metadata:
  name: broken
  namespace: default
spec:
  type: ClusterIP
  clusterIP: 10.96.3.30
  ports:
  - name: http
    protocol: TCP
    port: 70000
    targetPort: 8080
"
        .to_owned(),
    );
    r.swap_invalid(&cluster_of(&docs));
    let took = r.wait_until(Duration::from_secs(5), "an invalid-input failure", || {
        r.try_metric(invalid_failures).is_some_and(|v| v > failures)
    });
    eprintln!("[{}] invalid revision counted after {took:?}", topo.id());
    assert!(
        r.metric("knc_syncs_total{result=\"failure\"}") >= 1.0,
        "failures are counted in knc_syncs_total too"
    );
    assert_eq!(
        normalised(&topo),
        good,
        "the invalid revision changed the ruleset"
    );
    topo.tcp(From::Client, "10.96.3.1:80", SPREAD)
        .assert_pods(&["i-a", "i-b"]);
    assert_eq!(r.healthz(), 200, "/healthz right after one invalid round");
    assert!(
        r.stderr().contains("70000"),
        "the diagnostics name the bad port:\n{}",
        r.stderr()
    );

    let mut docs = stable_docs();
    docs.push(http_service("fresh", "10.96.3.20"));
    docs.push(http_slice("fresh", &[ep("10.244.1.3")]));
    assert_eq!(r.metric("knc_services"), 1.0);
    r.swap(&cluster_of(&docs));
    let applied = r.wait_until(
        Duration::from_secs(5),
        "the fixed revision to be applied (knc_services 2)",
        || r.try_metric("knc_services") == Some(2.0),
    );
    // Before the round, the new ClusterIP is an unallocated address of the
    // service CIDR (dropped: a probe times out after a second).
    let took = r.wait_until(
        Duration::from_secs(5),
        "the fixed revision's new Service to answer",
        || {
            topo.tcp(From::Client, "10.96.3.20:80", 1)
                .pods()
                .contains("i-n")
        },
    );
    eprintln!(
        "[{}] fixed revision applied {applied:?} after the swap, answering {took:?} after that",
        topo.id()
    );
    topo.tcp(From::Client, "10.96.3.20:80", 5)
        .assert_all_answered()
        .assert_pods(&["i-n"]);
    topo.tcp(From::Client, "10.96.3.1:80", SPREAD)
        .assert_pods(&["i-a", "i-b"]);
    let settled = r.metric(invalid_failures);
    r.wait_rounds(2, Duration::from_secs(5));
    assert_eq!(
        r.metric(invalid_failures),
        settled,
        "failures still counted after the fix"
    );
    assert_eq!(r.healthz(), 200);
    let last = r.metric("knc_last_successful_sync_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - last).abs() < 5.0,
        "last successful sync {last}, now {now}"
    );
}

#[test]
fn a_second_apply_waits_then_exits_3_naming_the_holder() {
    require_kernel!("a_second_apply_waits_then_exits_3_naming_the_holder");
    let topo = Topology::build("rc-lock", &[Pod::web("l-a", "10.244.1.1")]);
    let docs = [
        http_service("stable", "10.96.3.1"),
        http_slice("stable", &[ep("10.244.1.1")]),
    ];
    let r = Reconcile::start(&topo, &cluster_of(&docs), "1s");
    let current = r.current();
    let mut args = vec!["apply", current.to_str().unwrap()];
    args.extend(NODE_FLAGS);
    args.extend(["--state-dir", r.state.to_str().unwrap()]);
    let (status, err, took) = knc_in(&topo, &args);
    eprintln!(
        "[{}] second apply: {status} after {took:?}: {err}",
        topo.id()
    );
    assert_eq!(status.code(), Some(3), "exit status; stderr:\n{err}");
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(8),
        "the second apply gave up after {took:?}, not after waiting ~3 s"
    );
    assert!(
        err.contains("knc reconcile") && err.contains(&format!("pid {}", r.pid)),
        "stderr does not name the holder (knc reconcile, pid {}):\n{err}",
        r.pid
    );
    r.assert_running();
    let status = r.stop(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "SIGTERM exit status");
}

/// Pod name in a pod server's reply `<pod> <source> <port>`.
fn pod_of(reply: &str) -> String {
    reply
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The reply sources (`src=` of the reply direction) of node1's UDP
/// conntrack entries to `dst`:`dport`.
fn conntrack_replies(topo: &Topology, dst: &str, dport: u16) -> Vec<IpAddr> {
    let out = topo.node1().exec("conntrack", &["-L", "-p", "udp"]);
    out.lines()
        .filter(|l| l.contains(&format!("dst={dst} ")) && l.contains(&format!("dport={dport} ")))
        .filter_map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.strip_prefix("src="))
                .nth(1)
                .and_then(|ip| ip.parse().ok())
        })
        .collect()
}

fn dns_docs(eps: &[Ep]) -> Vec<String> {
    vec![
        ServiceYaml::cluster_ip("dns", "10.96.4.53")
            .udp_port("dns", 53, 5353)
            .yaml(),
        slice("dns", "x1", &[("dns", "UDP", 5353)], eps),
    ]
}

#[test]
fn udp_conntrack_to_a_removed_backend_is_cleared() {
    require_kernel!("udp_conntrack_to_a_removed_backend_is_cleared");
    let topo = Topology::build(
        "rc-ct",
        &[
            Pod::new("u-a", "10.244.1.1").udp(&[5353]),
            Pod::new("u-b", "10.244.1.2").udp(&[5353]),
        ],
    );
    let r = Reconcile::start(
        &topo,
        &cluster_of(&dns_docs(&[ep("10.244.1.1"), ep("10.244.1.2")])),
        "1s",
    );
    let target: SocketAddr = "10.96.4.53:53".parse().unwrap();
    // One socket, one source port, for the whole test.
    let socket = topo.client().run_in(|| {
        let socket = UdpSocket::bind("0.0.0.0:40053").expect("bind the client's UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket
    });
    let ask = |socket: &UdpSocket| -> String {
        let sent = Instant::now();
        socket.send_to(b"who\n", target).expect("send");
        let mut buf = [0u8; 1500];
        let (n, from) = socket.recv_from(&mut buf).expect("a UDP answer within 2 s");
        assert_eq!(from, target, "answer from {from}");
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The first datagram, and the first after the removed backend's
        // entry went, are new connections: explain predicts them (and
        // the flow's own backend is one of them otherwise).
        topo.explained(
            From::Client,
            Proto::Udp,
            target,
            Probes {
                what: format!("UDP {target} from the client's port 40053"),
                attempts: vec![Attempt {
                    outcome: parse_reply(&reply),
                    elapsed: sent.elapsed(),
                }],
                source: Some(CLIENT),
            },
        );
        pod_of(&reply)
    };
    let first = ask(&socket);
    let (gone, kept, gone_ip, kept_ip) = match first.as_str() {
        "u-a" => ("u-a", "u-b", "10.244.1.1", "10.244.1.2"),
        "u-b" => ("u-b", "u-a", "10.244.1.2", "10.244.1.1"),
        other => panic!("answered by {other}"),
    };
    let gone_addr: IpAddr = gone_ip.parse().unwrap();
    assert_eq!(ask(&socket), gone, "the flow sticks to its backend");
    let entries = conntrack_replies(&topo, "10.96.4.53", 53);
    assert!(
        entries.contains(&gone_addr),
        "no conntrack entry with reply from {gone_ip}: {entries:?}"
    );
    let deleted_before = r.metric("knc_conntrack_entries_deleted_total");

    let swapped = Instant::now();
    r.swap(&cluster_of(&dns_docs(&[ep(kept_ip)])));
    r.wait_until(
        Duration::from_secs(5),
        "the conntrack entry to the removed backend to go",
        || !conntrack_replies(&topo, "10.96.4.53", 53).contains(&gone_addr),
    );
    let took = swapped.elapsed();
    r.wait_until(
        Duration::from_secs(5),
        "knc_conntrack_entries_deleted_total to grow",
        || {
            r.try_metric("knc_conntrack_entries_deleted_total")
                .is_some_and(|v| v >= deleted_before + 1.0)
        },
    );
    eprintln!(
        "[{}] conntrack entry to {gone} deleted {took:?} after the swap; deleted total {}",
        topo.id(),
        r.metric("knc_conntrack_entries_deleted_total")
    );
    for _ in 0..3 {
        assert_eq!(
            ask(&socket),
            kept,
            "the same socket reaches the remaining backend"
        );
    }
}

fn hc_docs(eps: &[Ep]) -> Vec<String> {
    vec![
        ServiceYaml::cluster_ip("hc", "10.96.5.1")
            .http()
            .node_port(30081)
            .extra("  externalTrafficPolicy: Local\n  healthCheckNodePort: 32001\n")
            .yaml(),
        http_slice("hc", eps),
    ]
}

#[test]
fn health_check_node_port_follows_local_endpoints() {
    require_kernel!("health_check_node_port_follows_local_endpoints");
    let topo = Topology::build(
        "rc-hc",
        &[Pod::web("h-1", "10.244.1.1"), Pod::web("h-2", "10.244.2.1")],
    );
    let mut docs = stable_docs();
    docs.extend(hc_docs(&[ep("10.244.1.1"), ep("10.244.2.1")]));
    let r = Reconcile::start(&topo, &cluster_of(&docs), "1s");
    let hc: SocketAddr = "172.30.0.1:32001".parse().unwrap();
    let check = |status: u16, local: u64| -> Duration {
        let mut last = None;
        let took = poll(Duration::from_secs(5), || {
            let answer = http_get(topo.client(), hc, "/");
            let ok = matches!(&answer, Ok((s, _)) if *s == status);
            last = Some(answer);
            ok
        });
        let (got, body) = match last {
            Some(Ok(answer)) if took.is_some() => answer,
            other => panic!(
                "health check never answered {status}: last {other:?}; stderr:\n{}",
                r.stderr()
            ),
        };
        assert_eq!(got, status);
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["service"]["namespace"], "default", "{body}");
        assert_eq!(json["service"]["name"], "hc", "{body}");
        assert_eq!(json["localEndpoints"], local, "{body}");
        assert_eq!(json["serviceProxyHealthy"], true, "{body}");
        assert_eq!(r.healthz(), 200);
        took.unwrap()
    };
    check(200, 1);

    let mut docs = stable_docs();
    docs.extend(hc_docs(&[ep("10.244.2.1")]));
    r.swap(&cluster_of(&docs));
    let took = check(503, 0);
    eprintln!("[{}] 503 after {took:?}", topo.id());

    r.swap(&cluster_of(&stable_docs()));
    let took = r.wait_until(
        Duration::from_secs(5),
        "the health-check port to close",
        || {
            matches!(
                http_get(topo.client(), hc, "/"),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
            )
        },
    );
    eprintln!("[{}] closed after {took:?}", topo.id());
    assert_eq!(r.healthz(), 200);
}

/// Revision `i` of an edit-in-place walk: `web` with one to three of three
/// pods (some not ready), `other` with one or two, and every fourth
/// revision `web` as a NodePort Service (a Service change: everything is
/// compiled again).
fn edited(i: usize) -> String {
    let pods = ["10.244.1.1", "10.244.1.2", "10.244.2.1"];
    let web_eps: Vec<Ep> = (0..3)
        .filter(|k| !(i + k).is_multiple_of(3) || i.is_multiple_of(2))
        .map(|k| {
            let e = ep(pods[k]);
            if (i + k) % 5 == 4 {
                e.not_ready()
            } else {
                e
            }
        })
        .collect();
    let web = if i % 4 == 3 {
        ServiceYaml::cluster_ip("web", "10.96.4.1")
            .http()
            .node_port(30091)
            .yaml()
    } else {
        http_service("web", "10.96.4.1")
    };
    let other_eps: Vec<Ep> = (0..1 + i % 2).map(|k| ep(pods[2 - k])).collect();
    cluster_of(&[
        web,
        http_slice("web", &web_eps),
        http_service("other", "10.96.4.2"),
        http_slice("other", &other_eps),
    ])
}

/// A round after a document is edited in place (the file renamed over, in
/// the revision reconcile reads) leaves the kernel exactly as a cold
/// compile and apply of the same files: the documents taken from the
/// cache, the endpoints-only compile and the transaction worked out from
/// the changed IR entries are invisible.
#[test]
fn edits_in_place_leave_what_a_cold_apply_leaves() {
    require_kernel!("edits_in_place_leave_what_a_cold_apply_leaves");
    let topo = Topology::build(
        "rc-edit",
        &[
            Pod::web("w-a", "10.244.1.1"),
            Pod::web("w-b", "10.244.1.2"),
            Pod::web("w-r", "10.244.2.1"),
        ],
    );
    let r = Reconcile::start(&topo, &edited(0), "60s");
    let file = r.current().join("cluster.yaml");
    for i in 1..=12 {
        let before = r.synced_lines();
        let tmp = r.current().join("cluster.yaml.tmp");
        std::fs::write(&tmp, edited(i)).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        r.wait_until(Duration::from_secs(20), &format!("edit {i} synced"), || {
            r.synced_lines() > before
        });
    }
    let log = r.stderr();
    let watched = log.matches("read, watched").count();
    let endpoints_only = log.matches("changed endpoints only").count();
    assert!(
        watched >= 10 && endpoints_only >= 4,
        "edits should be read as watched files ({watched}) and mostly compile \
         endpoints only ({endpoints_only}); stderr:\n{log}"
    );
    let status = r.stop(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", r.stderr());
    r.assert_lists_like_a_fresh_apply();
}
