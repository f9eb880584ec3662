//! Keeps `knc explain` honest: every probe the kernel tests send is also
//! asked of `knc explain --output json`, for the inputs node1's rules were
//! compiled from, and the test fails when the kernel and explain disagree
//! about who may answer, the source the pod sees, or whether the
//! connection is refused or dropped.
//!
//! The harness tracks what node1 runs ([`Rules`]): a load of text it
//! compiled itself is known; `knc apply` and `knc reconcile` runs tell it
//! what they applied; rules written by hand (the harness self-test only)
//! are not predicted; any other text loaded makes the next probe panic
//! until the test says what the rules are. While a runtime may still be
//! applying a newer revision, several inputs are live candidates and
//! every attempt must agree with one of them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use crate::harness::Backend;
use crate::probe::{Attempt, Outcome, Probes, Proto};

/// Inputs knc compiled node1's rules from: a manifests path and the
/// settings flags (`--cluster-cidr`, `--masquerade-all`, …) it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inputs {
    pub path: PathBuf,
    pub settings: Vec<String>,
}

impl Inputs {
    /// `path` compiled with `settings`, the flags that change the ruleset
    /// (output flags such as `--format` are dropped).
    pub fn new(path: PathBuf, settings: &[&str]) -> Inputs {
        let mut kept = Vec::new();
        let mut args = settings.iter();
        while let Some(&arg) = args.next() {
            match arg {
                "--format" | "--iptables-hooks" | "--backend" | "--state-dir" => {
                    args.next();
                }
                "--dry-run" | "--check" => {}
                _ => kept.push(arg.to_owned()),
            }
        }
        Inputs {
            path,
            settings: kept,
        }
    }
}

/// What node1's knc rules are, as far as predicting probes goes.
#[derive(Debug, Clone)]
pub enum Rules {
    /// No knc rules: every connection passes knc untouched.
    Nothing,
    /// knc's rules compiled from one of these inputs, newest first (a
    /// runtime may not have applied the newest yet).
    Compiled(Vec<Inputs>),
    /// Rules written by hand (the harness self-test): not knc's output,
    /// so explain is not asked.
    HandWritten,
    /// Text the harness did not compile was loaded (named here): the test
    /// must say what the rules are before it probes.
    Unknown(String),
}

/// Where a probe came from, as explain is told it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// A process on node1 (`--from-this-node`).
    pub this_node: bool,
    /// The interface of node1 the connection arrives on (`--in-interface`).
    pub interface: Option<String>,
}

/// What the check knows of the topology.
pub struct World {
    /// Each pod's name and addresses (IPv4, and IPv6 in dual-stack
    /// topologies).
    pub pods: Vec<(String, Vec<IpAddr>)>,
    /// node1's local addresses: a masqueraded connection carries one.
    pub node1_local: Vec<IpAddr>,
    /// The back end loaded (selection by source hash differs by back end).
    pub backend: Backend,
}

/// An explanation as JSON, or why `knc explain` gave none.
type Answer = Result<Value, String>;

/// `knc explain` answers, by inputs and question (revision directories
/// never change once written, so one answer serves every probe).
#[derive(Default)]
pub struct Explainer {
    answers: Mutex<HashMap<(Inputs, Vec<String>), Answer>>,
}

impl Explainer {
    /// `knc explain --output json` of `inputs` for `args` (`--to`, …).
    fn explain(&self, inputs: &Inputs, args: Vec<String>) -> Answer {
        let key = (inputs.clone(), args);
        if let Some(answer) = self.answers.lock().unwrap().get(&key) {
            return answer.clone();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_knc"))
            .arg("explain")
            .arg(&inputs.path)
            .args(["--node", "node1", "--output", "json"])
            .args(&inputs.settings)
            .args(&key.1)
            .output()
            .expect("run knc explain");
        let answer = if out.status.success() {
            serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("knc explain printed no JSON: {e}"))
        } else {
            Err(format!(
                "knc explain failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        };
        self.answers.lock().unwrap().insert(key, answer.clone());
        answer
    }
}

/// The `knc explain` arguments describing one probe.
fn question(proto: Proto, target: SocketAddr, source: IpAddr, origin: &Origin) -> Vec<String> {
    let proto = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    let mut args = vec![
        "--to".to_owned(),
        format!("{target}/{proto}"),
        "--from".to_owned(),
        source.to_string(),
    ];
    if origin.this_node {
        args.push("--from-this-node".into());
    } else if let Some(interface) = &origin.interface {
        args.extend(["--in-interface".into(), interface.clone()]);
    }
    args
}

/// Checks every attempt of `probes` against what explain predicts for
/// `rules`; `Err` says where they disagree. `source` is the address the
/// probe's connections left with (`None`: no route, nothing to predict).
#[allow(clippy::too_many_arguments)]
pub fn check(
    rules: &Rules,
    explainer: &Explainer,
    world: &World,
    proto: Proto,
    target: SocketAddr,
    source: Option<IpAddr>,
    origin: &Origin,
    probes: &Probes,
) -> Result<(), String> {
    tally(rules, probes);
    let candidates = match rules {
        Rules::HandWritten => return Ok(()),
        Rules::Unknown(what) => {
            return Err(format!(
                "node1 runs rules the harness did not compile ({what}); say what they are \
                 (Topology::rules_are) before probing, so explain can predict the probe"
            ))
        }
        Rules::Nothing => Vec::new(),
        Rules::Compiled(inputs) => inputs.clone(),
    };
    let Some(source) = source else {
        return match probes
            .attempts
            .iter()
            .find(|a| matches!(a.outcome, Outcome::Answered { .. }))
        {
            Some(a) => Err(format!("no route to {target}, yet answered: {a:?}")),
            None => Ok(()),
        };
    };
    let args = question(proto, target, source, origin);
    let mut answers = Vec::new();
    for inputs in &candidates {
        match explainer.explain(inputs, args.clone()) {
            Ok(answer) => answers.push((inputs, answer)),
            // Invalid inputs are never loaded: not a candidate.
            Err(e) if e.contains("exit status: 1") => {}
            Err(e) => return Err(e),
        }
    }
    if !candidates.is_empty() && answers.is_empty() {
        return Err(format!(
            "knc explain failed for every candidate input: {candidates:?}"
        ));
    }
    for (n, attempt) in probes.attempts.iter().enumerate() {
        let verdicts: Vec<Result<(), String>> = if answers.is_empty() {
            vec![untouched(attempt, target, source, world)]
        } else {
            answers
                .iter()
                .map(|(_, answer)| agrees(answer, attempt, target, source, world))
                .collect()
        };
        if verdicts.iter().any(Result::is_ok) {
            continue;
        }
        let mut report = format!(
            "explain and the kernel disagree on attempt {n} ({:?} from {source}, {origin:?}): \
             the kernel said {:?}\n",
            proto, attempt.outcome
        );
        if answers.is_empty() {
            let _ = writeln!(report, "  no knc rules are loaded: {:?}", verdicts[0]);
        }
        for ((inputs, answer), verdict) in answers.iter().zip(&verdicts) {
            let _ = writeln!(
                report,
                "  knc explain {} --node node1 {} {}\n  -> {}\n  explain said:\n{}",
                inputs.path.display(),
                inputs.settings.join(" "),
                args.join(" "),
                verdict.as_ref().unwrap_err(),
                serde_json::to_string_pretty(answer).unwrap_or_default()
            );
        }
        return Err(report);
    }
    Ok(())
}

/// With `KNC_PREDICT_TALLY=FILE`, appends a line per probe run (what node1
/// ran, the attempts), to count what the suite checked.
fn tally(rules: &Rules, probes: &Probes) {
    let Some(path) = std::env::var_os("KNC_PREDICT_TALLY") else {
        return;
    };
    let kind = match rules {
        Rules::Nothing => "nothing",
        Rules::Compiled(inputs) if inputs.len() == 1 => "compiled",
        Rules::Compiled(_) => "compiled-candidates",
        Rules::HandWritten => "hand-written",
        Rules::Unknown(_) => "unknown",
    };
    let line = format!("{kind} {} {}\n", probes.attempts.len(), probes.what);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = std::io::Write::write_all(&mut file, line.as_bytes());
    }
}

/// Whether `attempt` is what `answer` (one explanation) predicts.
fn agrees(
    answer: &Value,
    attempt: &Attempt,
    target: SocketAddr,
    source: IpAddr,
    world: &World,
) -> Result<(), String> {
    let sources = answer["sources"].as_array().cloned().unwrap_or_default();
    let [verdict] = sources.as_slice() else {
        return Err(format!(
            "explain gave {} verdicts; the probe's origin should decide one",
            sources.len()
        ));
    };
    match verdict["verdict"].as_str() {
        Some("forwarded") => forwarded(verdict, attempt, target, source, world),
        Some("rejected") => match attempt.outcome {
            Outcome::Refused(_) => Ok(()),
            _ => Err("explain said rejected".into()),
        },
        Some("dropped") => match attempt.outcome {
            Outcome::Timeout => Ok(()),
            _ => Err("explain said dropped".into()),
        },
        Some("no-frontend") => untouched(attempt, target, source, world),
        other => Err(format!("unknown verdict {other:?}")),
    }
}

/// A forwarded verdict: answered by one of its backends with a non-zero
/// chance (the hashed one under selection by source hash), on the
/// backend's port, seeing a node address when masqueraded (or hairpin)
/// and the client's own otherwise.
fn forwarded(
    verdict: &Value,
    attempt: &Attempt,
    target: SocketAddr,
    source: IpAddr,
    world: &World,
) -> Result<(), String> {
    let Some((pod, seen_source, port)) = answer(attempt) else {
        return Err("explain said forwarded".into());
    };
    let address = pod_address(world, pod, target)?;
    let backends = verdict["backends"].as_array().cloned().unwrap_or_default();
    let backend = backends
        .iter()
        .find(|b| is_endpoint(b, address, port))
        .ok_or_else(|| format!("{pod} ({address}:{port}) is none of the backends explain named"))?;
    if backend["probability"].as_f64().unwrap_or(0.0) <= 0.0 {
        return Err(format!("explain gave {pod} no chance"));
    }
    let hashed = match world.backend {
        Backend::Nft => &verdict["source_hash"]["nft"],
        Backend::Iptables => &verdict["source_hash"]["iptables"],
    };
    if !hashed.is_null() && !is_endpoint(hashed, address, port) {
        return Err(format!(
            "the client hashes to {hashed}, but {pod} ({address}:{port}) answered"
        ));
    }
    let masqueraded =
        verdict["masquerade"].as_bool() == Some(true) || backend["hairpin"].as_bool() == Some(true);
    match (masqueraded, world.node1_local.contains(&seen_source)) {
        (true, true) => Ok(()),
        (true, false) => Err(format!(
            "explain said masqueraded, but {pod} saw {seen_source}"
        )),
        (false, _) if seen_source == source => Ok(()),
        (false, _) => Err(format!(
            "explain said the source is kept, but {pod} saw {seen_source} (sent from {source})"
        )),
    }
}

/// Not knc's business: an answer can only come from the destination itself,
/// unchanged (a refusal or a timeout is the network's).
fn untouched(
    attempt: &Attempt,
    target: SocketAddr,
    source: IpAddr,
    world: &World,
) -> Result<(), String> {
    let Some((pod, seen_source, port)) = answer(attempt) else {
        return Ok(());
    };
    let address = pod_address(world, pod, target)?;
    if SocketAddr::new(address, port) != target || seen_source != source {
        return Err(format!(
            "nothing of knc's applies, yet {pod} ({address}:{port}) answered, seeing {seen_source}"
        ));
    }
    Ok(())
}

/// Who answered `attempt`, the source it saw and the port it was reached
/// on; `None` when nobody answered.
fn answer(attempt: &Attempt) -> Option<(&str, IpAddr, u16)> {
    match &attempt.outcome {
        Outcome::Answered {
            pod,
            seen_source,
            port,
        } => Some((pod, *seen_source, *port)),
        _ => None,
    }
}

/// Whether explain's `endpoint` (with `address` and `port`) is
/// `address`:`port`.
fn is_endpoint(endpoint: &Value, address: IpAddr, port: u16) -> bool {
    endpoint["address"].as_str() == Some(&address.to_string())
        && endpoint["port"].as_u64() == Some(u64::from(port))
}

/// The address of `pod` in `target`'s family.
fn pod_address(world: &World, pod: &str, target: SocketAddr) -> Result<IpAddr, String> {
    world
        .pods
        .iter()
        .find(|(name, _)| name == pod)
        .and_then(|(_, addresses)| {
            addresses
                .iter()
                .copied()
                .find(|a| a.is_ipv4() == target.is_ipv4())
        })
        .ok_or_else(|| format!("no address of pod {pod} in {target}'s family"))
}
