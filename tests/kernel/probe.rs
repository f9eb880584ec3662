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
    /// The address the attempts left with, as the kernel chose it (`None`:
    /// no route to the target).
    pub source: Option<IpAddr>,
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
    /// `pick` of every answer: (pod, source it saw, port it was reached on).
    fn answers<T: Ord>(&self, pick: impl Fn(&String, IpAddr, u16) -> T) -> BTreeSet<T> {
        self.attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Answered {
                    pod,
                    seen_source,
                    port,
                } => Some(pick(pod, *seen_source, *port)),
                _ => None,
            })
            .collect()
    }

    /// Names of the pods that answered.
    pub fn pods(&self) -> BTreeSet<String> {
        self.answers(|pod, _, _| pod.clone())
    }

    /// Source addresses the pods saw.
    pub fn sources(&self) -> BTreeSet<IpAddr> {
        self.answers(|_, source, _| source)
    }

    /// Ports the pods were reached on.
    pub fn ports(&self) -> BTreeSet<u16> {
        self.answers(|_, _, port| port)
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
/// conntrack entry), bound to `source` first when given (so the attempt
/// leaves with that source address).
pub fn probe_from(
    ns: &str,
    proto: Proto,
    source: Option<IpAddr>,
    target: SocketAddr,
    count: usize,
) -> Probes {
    let ns_owned = ns.to_owned();
    let result = thread::Builder::new()
        .name(format!("probe-{ns}"))
        .spawn(move || {
            netns::enter(&ns_owned).unwrap_or_else(|e| panic!("setns into {ns_owned}: {e}"));
            let leaves_with = route_source(source, target);
            let attempts = (0..count)
                .map(|_| {
                    let start = Instant::now();
                    let outcome = match (proto, source) {
                        (Proto::Tcp, None) => tcp_once(target),
                        (Proto::Tcp, Some(source)) => tcp_bound_once(source, target),
                        (Proto::Udp, source) => udp_once(source, target),
                    };
                    Attempt {
                        outcome,
                        elapsed: start.elapsed(),
                    }
                })
                .collect();
            (attempts, leaves_with)
        })
        .expect("spawn probe")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    let (attempts, source) = result;
    Probes {
        what: format!("{proto:?} {target} from {ns}"),
        attempts,
        source,
    }
}

/// The source address a connection to `target` leaves with: `source` when
/// bound, else the one the kernel's route gives (a connected UDP socket
/// sends nothing, it only asks the route).
fn route_source(source: Option<IpAddr>, target: SocketAddr) -> Option<IpAddr> {
    if source.is_some() {
        return source;
    }
    let any: IpAddr = match target {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    socket.connect(target).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
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

/// A pod server's reply (`POD SEEN-SOURCE PORT`) as an outcome.
pub fn parse_reply(reply: &str) -> Outcome {
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
    let stream = match TcpStream::connect_timeout(&target, TIMEOUT) {
        Ok(s) => s,
        Err(e) => return classify(&e),
    };
    read_reply(stream)
}

fn read_reply(mut stream: TcpStream) -> Outcome {
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut reply = String::new();
    match stream.read_to_string(&mut reply) {
        Ok(_) => parse_reply(&reply),
        Err(e) => Outcome::Failed(format!("connected but reading failed: {e}")),
    }
}

/// A TCP connection from `source` (any port): std cannot bind before
/// connecting, so the socket is made with libc and handed to std once
/// connected. `SO_SNDTIMEO` bounds the blocking connect (Linux returns
/// `EINPROGRESS` when it expires).
fn tcp_bound_once(source: IpAddr, target: SocketAddr) -> Outcome {
    use std::os::fd::FromRawFd;
    if source.is_ipv4() != target.is_ipv4() {
        return Outcome::Failed(format!(
            "source {source} and target {target} differ in family"
        ));
    }
    let domain = if source.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let local = sockaddr(SocketAddr::new(source, 0));
    let remote = sockaddr(target);
    let timeout = libc::timeval {
        tv_sec: TIMEOUT.as_secs() as libc::time_t,
        tv_usec: TIMEOUT.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: plain socket calls on a descriptor owned by `stream` from
    // the moment it exists; the option and address buffers outlive the
    // calls and the lengths passed are theirs.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Outcome::Failed(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let stream = TcpStream::from_raw_fd(fd);
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        if libc::bind(
            fd,
            (&local.0 as *const libc::sockaddr_storage).cast(),
            local.1,
        ) != 0
        {
            let e = std::io::Error::last_os_error();
            return Outcome::Failed(format!("bind {source}: {e}"));
        }
        if libc::connect(
            fd,
            (&remote.0 as *const libc::sockaddr_storage).cast(),
            remote.1,
        ) != 0
        {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINPROGRESS) => Outcome::Timeout,
                _ => classify(&e),
            };
        }
        read_reply(stream)
    }
}

/// A socket address in C form, with its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, valid when zeroed, and large
    // and aligned enough for both sockaddr_in and sockaddr_in6.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin =
                    &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = &mut *(&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
}

fn udp_once(source: Option<IpAddr>, target: SocketAddr) -> Outcome {
    let any: IpAddr = match target {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = match UdpSocket::bind((source.unwrap_or(any), 0)) {
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
