//! The node's HTTP endpoints: `/metrics` and `/healthz` for operators and
//! the kubelet, and the plumbing the health-check NodePorts
//! (`crate::healthcheck`) share.
//!
//! Servers are `tiny_http` on plain threads: one accept thread (tiny_http's)
//! and one thread of ours that answers requests. A [`Server`] owns a second
//! handle to its listening socket so that stopping it closes the port at
//! once (`shutdown(2)` on a listening socket makes Linux refuse new
//! connections and wakes the blocked `accept`), not whenever tiny_http's
//! accept thread gets round to it; a port closed this way can be bound again
//! straight away.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::metrics::{self, Metrics};

/// What /healthz judges by. The reconcile loop updates it after every sync;
/// the server reads it on every request.
#[derive(Debug, Clone)]
pub struct Health {
    /// How often the loop syncs.
    pub interval: Duration,
    /// When the last sync succeeded (monotonic clock, for the judgement).
    pub last_success: Option<Instant>,
    /// The same moment as Unix seconds (for people reading the answer).
    pub last_success_unix: Option<f64>,
    /// How long the last sync took: a slow sync must not read as a dead loop.
    pub last_sync_duration: Duration,
    /// Why the last sync failed, when it did; `None` after a success.
    pub last_error: Option<String>,
}

impl Health {
    /// Never synced yet, syncing every `interval`.
    pub fn new(interval: Duration) -> Health {
        Health {
            interval,
            last_success: None,
            last_success_unix: None,
            last_sync_duration: Duration::ZERO,
            last_error: None,
        }
    }

    /// Healthy while the last success is no older than two intervals plus
    /// the last sync's duration: one missed sync is tolerated, two are not.
    /// Never synced is unhealthy.
    pub fn is_healthy(&self, now: Instant) -> bool {
        match self.last_success {
            Some(at) => {
                now.saturating_duration_since(at) <= 2 * self.interval + self.last_sync_duration
            }
            None => false,
        }
    }

    fn to_json(&self, now: Instant) -> serde_json::Value {
        serde_json::json!({
            "healthy": self.is_healthy(now),
            "lastSuccessfulSync": self.last_success_unix.map(|s| format!("{s:.3}")),
            "secondsSinceLastSuccess": self
                .last_success
                .map(|at| now.saturating_duration_since(at).as_secs_f64()),
            "interval": format!("{}s", self.interval.as_secs_f64()),
            "lastError": self.last_error,
        })
    }
}

/// A running HTTP server; stops (and its thread is joined) on drop or
/// [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    /// A second handle to the listening socket, to shut it down.
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

/// An answer, independent of the HTTP library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn not_found() -> Reply {
        Reply {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: b"404 page not found\n".to_vec(),
        }
    }

    fn into_response(self) -> tiny_http::Response<io::Cursor<Vec<u8>>> {
        let mut response = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        let headers =
            std::iter::once(("Content-Type", self.content_type.to_owned())).chain(self.headers);
        for (name, value) in headers {
            // Names and values are ours and ASCII; a bad one is a bug.
            let header = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                .expect("valid HTTP header");
            response.add_header(header);
        }
        response
    }
}

/// A listening TCP socket on `addr`, with `SO_REUSEADDR` (so a port closed
/// a moment ago can be reopened) and, for IPv6 when `v6_only`, without
/// IPv4-mapped addresses (so `0.0.0.0` and `[::]` can both be bound).
pub(crate) fn listen(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && v6_only {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

impl Server {
    /// Serves `listener` on a new thread named `name`, answering every
    /// request with `handler(method, url)`.
    pub(crate) fn start<H>(listener: TcpListener, name: &str, handler: H) -> io::Result<Server>
    where
        H: Fn(&tiny_http::Method, &str) -> Reply + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let handle = listener.try_clone()?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map(Arc::new)
            .map_err(io::Error::other)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let http = Arc::clone(&http);
            let stopping = Arc::clone(&stopping);
            let name = name.to_owned();
            std::thread::Builder::new()
                .name(format!("{name} {addr}"))
                .spawn(move || loop {
                    match http.recv() {
                        Ok(request) => {
                            let reply = handler(request.method(), request.url());
                            if let Err(e) = request.respond(reply.into_response()) {
                                tracing::debug!(%addr, server = %name, "answering a request: {e}");
                            }
                        }
                        Err(e) => {
                            if !stopping.load(Ordering::SeqCst) {
                                tracing::error!(%addr, server = %name, "stopped accepting connections: {e}");
                            }
                            break;
                        }
                    }
                })?
        };
        tracing::debug!(%addr, server = name, "listening");
        Ok(Server {
            addr,
            listener: handle,
            stopping,
            http,
            thread: Some(thread),
        })
    }

    /// Where the server listens (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the port and joins the server's thread. When this returns, new
    /// connections are refused.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        if let Err(e) = SockRef::from(&self.listener).shutdown(std::net::Shutdown::Both) {
            tracing::warn!(addr = %self.addr, "closing the listening socket: {e}");
        }
        self.http.unblock();
        if thread.join().is_err() {
            tracing::error!(addr = %self.addr, "server thread panicked");
        }
        tracing::debug!(addr = %self.addr, "closed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Serves `GET /metrics` (the Prometheus text of `metrics`) and
/// `GET /healthz` (200 while `health` shows a recent successful sync, 503
/// otherwise, with a small JSON body either way) on `addr`. Anything else
/// is 404.
pub fn serve_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
) -> io::Result<Server> {
    let listener = listen(addr, false)?;
    Server::start(listener, "metrics", move |method, url| {
        let path = url.split('?').next().unwrap_or_default();
        if *method != tiny_http::Method::Get {
            return Reply::not_found();
        }
        match path {
            "/metrics" => Reply {
                status: 200,
                content_type: metrics::CONTENT_TYPE,
                headers: Vec::new(),
                body: metrics.encode().into_bytes(),
            },
            "/healthz" => {
                // A poisoned lock still holds the last state written.
                let health = health.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let now = Instant::now();
                let mut body = health.to_json(now).to_string();
                body.push('\n');
                Reply {
                    status: if health.is_healthy(now) { 200 } else { 503 },
                    content_type: "application/json",
                    headers: vec![("X-Content-Type-Options", "nosniff".to_owned())],
                    body: body.into_bytes(),
                }
            }
            _ => Reply::not_found(),
        }
    })
}

/// A plain HTTP/1.0 client for the tests: no HTTP client crate needed.
#[cfg(test)]
pub(crate) mod test_client {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// An answer: status code, header lines (lower-cased names), body.
    #[derive(Debug)]
    pub struct Answer {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Answer {
        pub fn header(&self, name: &str) -> Option<&str> {
            let name = name.to_ascii_lowercase();
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    pub fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Answer> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(Answer {
            status,
            headers,
            body: body.to_owned(),
        })
    }

    pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
        request(addr, "GET", path)
    }
}

#[cfg(test)]
mod tests {
    use super::test_client::get;
    use super::*;

    fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn start(interval: Duration) -> (Server, Metrics, Arc<Mutex<Health>>) {
        let metrics = Metrics::new();
        let health = Arc::new(Mutex::new(Health::new(interval)));
        let server = serve_metrics(localhost(), metrics.clone(), Arc::clone(&health)).unwrap();
        (server, metrics, health)
    }

    #[test]
    fn metrics_are_served_in_the_text_format() {
        let (server, metrics, _) = start(Duration::from_secs(10));
        metrics.set_services(4);
        let answer = get(server.local_addr(), "/metrics").unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some(metrics::CONTENT_TYPE));
        assert!(
            answer.body.contains("\nknc_services 4\n"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("# TYPE knc_syncs_total counter"));
    }

    #[test]
    fn healthz_follows_the_last_successful_sync() {
        let interval = Duration::from_secs(10);
        let (server, _, health) = start(interval);
        let addr = server.local_addr();

        // Never synced.
        let answer = get(addr, "/healthz").unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["healthy"], false);
        assert_eq!(body["lastSuccessfulSync"], serde_json::Value::Null);
        assert_eq!(body["interval"], "10s");

        // Just synced.
        {
            let mut h = health.lock().unwrap();
            h.last_success = Some(Instant::now());
            h.last_success_unix = Some(1_700_000_000.25);
            h.last_sync_duration = Duration::from_millis(40);
        }
        let answer = get(addr, "/healthz").unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["healthy"], true);
        assert_eq!(body["lastSuccessfulSync"], "1700000000.250");
        assert!(body["secondsSinceLastSuccess"].as_f64().unwrap() < 5.0);
        assert_eq!(body["lastError"], serde_json::Value::Null);

        // Last success older than 2 × interval + last sync's duration.
        {
            let mut h = health.lock().unwrap();
            let Some(long_ago) = Instant::now().checked_sub(3 * interval) else {
                return; // A clock this young cannot go back; nothing to test.
            };
            h.last_success = Some(long_ago);
            h.last_error = Some("nft: exit status 1".into());
        }
        let answer = get(addr, "/healthz").unwrap();
        assert_eq!(answer.status, 503, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["healthy"], false);
        assert_eq!(body["lastError"], "nft: exit status 1");
        assert!(body["secondsSinceLastSuccess"].as_f64().unwrap() >= 30.0);
    }

    #[test]
    fn window_is_two_intervals_plus_the_last_sync() {
        let now = Instant::now() + Duration::from_secs(100);
        let mut h = Health::new(Duration::from_secs(10));
        h.last_sync_duration = Duration::from_secs(1);
        h.last_success = Some(now - Duration::from_secs(21));
        assert!(h.is_healthy(now));
        h.last_success = Some(now - Duration::from_millis(21_001));
        assert!(!h.is_healthy(now));
    }

    #[test]
    fn other_paths_and_methods_are_not_found() {
        let (server, _, _) = start(Duration::from_secs(10));
        let addr = server.local_addr();
        assert_eq!(get(addr, "/").unwrap().status, 404);
        assert_eq!(get(addr, "/metricsx").unwrap().status, 404);
        assert_eq!(
            test_client::request(addr, "POST", "/metrics")
                .unwrap()
                .status,
            404
        );
        assert_eq!(get(addr, "/metrics?x=1").unwrap().status, 200);
    }

    #[test]
    fn stop_closes_the_port() {
        let (server, _, _) = start(Duration::from_secs(10));
        let addr = server.local_addr();
        assert_eq!(get(addr, "/metrics").unwrap().status, 200);
        server.stop();
        let err = get(addr, "/metrics").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        // And the port can be had again at once.
        let again = serve_metrics(
            addr,
            Metrics::new(),
            Arc::new(Mutex::new(Health::new(Duration::from_secs(1)))),
        )
        .unwrap();
        assert_eq!(get(again.local_addr(), "/metrics").unwrap().status, 200);
    }
}
