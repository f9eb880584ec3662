//! Client probes: dedicated threads that enter a namespace and open real
//! TCP connections or send real UDP datagrams, recording who answered,
//! whether the attempt was refused (TCP reset or ICMP unreachable), or
//! whether it timed out.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::netns;

/// How long one attempt may take before it counts as a timeout.
pub const TIMEOUT: Duration = Duration::from_millis(1000);

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A pod answered: its name, the source address it saw, and the port
    /// it was reached on.
    Answered {
        pod: String,
        seen_source: IpAddr,
        port: u16,
    },
    /// Refused fast: TCP reset / ICMP port unreachable (`ECONNREFUSED`) or
    /// another ICMP unreachable (`EHOSTUNREACH`, `ENETUNREACH`).
    Refused(String),
    /// Nothing came back within [`TIMEOUT`].
    Timeout,
    /// Anything else (a bug in the test or a garbled reply).
    Failed(String),
}

/// One attempt and how long it took.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// The attempts of one probe run.
#[derive(Clone)]
pub struct Probes {
    pub what: String,
    pub attempts: Vec<Attempt>,
}

impl fmt::Debug for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({} attempts):", self.what, self.attempts.len())?;
        for a in &self.attempts {
            writeln!(f, "  {:?} after {:?}", a.outcome, a.elapsed)?;
        }
        Ok(())
    }
}

impl Probes {
    /// Names of the pods that answered.
    pub fn pods(&self) -> BTreeSet<String> {
        self.attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Answered { pod, .. } => Some(pod.clone()),
                _ => None,
            })
            .collect()
    }

    /// Source addresses the pods saw.
    pub fn sources(&self) -> BTreeSet<IpAddr> {
        self.attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Answered { seen_source, .. } => Some(*seen_source),
                _ => None,
            })
            .collect()
    }

    /// Ports the pods were reached on.
    pub fn ports(&self) -> BTreeSet<u16> {
        self.attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Answered { port, .. } => Some(*port),
                _ => None,
            })
            .collect()
    }

    /// Panics unless every attempt was answered.
    pub fn assert_all_answered(&self) -> &Self {
        assert!(
            self.attempts
                .iter()
                .all(|a| matches!(a.outcome, Outcome::Answered { .. })),
            "expected every attempt to be answered; {self:?}"
        );
        self
    }

    /// Panics unless every attempt was answered and the answering pods are
    /// exactly `pods`.
    pub fn assert_pods(&self, pods: &[&str]) -> &Self {
        self.assert_all_answered();
        let want: BTreeSet<String> = pods.iter().map(|p| p.to_string()).collect();
        assert_eq!(self.pods(), want, "answering pods differ; {self:?}");
        self
    }

    /// Panics unless every answer was on `port`.
    pub fn assert_port(&self, port: u16) -> &Self {
        assert_eq!(
            self.ports(),
            BTreeSet::from([port]),
            "target port; {self:?}"
        );
        self
    }

    /// Panics unless every pod saw one of `sources`.
    pub fn assert_sources_within(&self, sources: &[IpAddr]) -> &Self {
        let seen = self.sources();
        assert!(
            !seen.is_empty() && seen.iter().all(|s| sources.contains(s)),
            "pods saw sources {seen:?}, expected only addresses from {sources:?}; {self:?}"
        );
        self
    }

    /// Panics unless every attempt was refused, each faster than `limit`.
    pub fn assert_refused_within(&self, limit: Duration) -> &Self {
        for a in &self.attempts {
            assert!(
                matches!(a.outcome, Outcome::Refused(_)) && a.elapsed < limit,
                "expected refused within {limit:?}; {self:?}"
            );
        }
        self
    }

    /// Panics unless every attempt timed out.
    pub fn assert_timeout(&self) -> &Self {
        assert!(
            self.attempts.iter().all(|a| a.outcome == Outcome::Timeout),
            "expected timeouts; {self:?}"
        );
        self
    }
}

/// Protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Makes `count` attempts to `target` from inside namespace `ns`, one after
/// the other, each from a fresh socket (so a fresh source port and a fresh
/// conntrack entry).
pub fn probe(ns: &str, proto: Proto, target: SocketAddr, count: usize) -> Probes {
    let ns_owned = ns.to_owned();
    let attempts = thread::Builder::new()
        .name(format!("probe-{ns}"))
        .spawn(move || {
            netns::enter(&ns_owned).unwrap_or_else(|e| panic!("setns into {ns_owned}: {e}"));
            (0..count)
                .map(|_| {
                    let start = Instant::now();
                    let outcome = match proto {
                        Proto::Tcp => tcp_once(target),
                        Proto::Udp => udp_once(target),
                    };
                    Attempt {
                        outcome,
                        elapsed: start.elapsed(),
                    }
                })
                .collect()
        })
        .expect("spawn probe")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    Probes {
        what: format!("{proto:?} {target} from {ns}"),
        attempts,
    }
}

fn classify(e: &std::io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused("ECONNREFUSED".into()),
        Some(libc::EHOSTUNREACH) => Outcome::Refused("EHOSTUNREACH".into()),
        Some(libc::ENETUNREACH) => Outcome::Refused("ENETUNREACH".into()),
        Some(libc::ETIMEDOUT) => Outcome::Timeout,
        _ if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Outcome::Timeout,
        _ => Outcome::Failed(e.to_string()),
    }
}

fn parse_reply(reply: &str) -> Outcome {
    let mut words = reply.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(pod), Some(src), Some(port)) => match (src.parse(), port.parse()) {
            (Ok(seen_source), Ok(port)) => Outcome::Answered {
                pod: pod.to_owned(),
                seen_source,
                port,
            },
            _ => Outcome::Failed(format!("garbled reply {reply:?}")),
        },
        _ => Outcome::Failed(format!("garbled reply {reply:?}")),
    }
}

fn tcp_once(target: SocketAddr) -> Outcome {
    let mut stream = match TcpStream::connect_timeout(&target, TIMEOUT) {
        Ok(s) => s,
        Err(e) => return classify(&e),
    };
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut reply = String::new();
    match stream.read_to_string(&mut reply) {
        Ok(_) => parse_reply(&reply),
        Err(e) => Outcome::Failed(format!("connected but reading failed: {e}")),
    }
}

fn udp_once(target: SocketAddr) -> Outcome {
    let socket = match UdpSocket::bind(("0.0.0.0", 0)) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("bind: {e}")),
    };
    if let Err(e) = socket.connect(target) {
        return classify(&e);
    }
    let _ = socket.set_read_timeout(Some(TIMEOUT));
    if let Err(e) = socket.send(b"ping\n") {
        return classify(&e);
    }
    let mut buf = [0u8; 1500];
    match socket.recv(&mut buf) {
        Ok(n) => parse_reply(&String::from_utf8_lossy(&buf[..n])),
        Err(e) => classify(&e),
    }
}
