//! Health-check NodePorts, as kube-proxy serves them.
//!
//! A Service with `externalTrafficPolicy: Local` gets a
//! `healthCheckNodePort`. Cloud load balancers probe it on every node and
//! send traffic only to nodes that answer 200: those with endpoints of the
//! Service. Each node answers HTTP on that port, any path:
//!
//! * 200 when the node has local endpoints, 503 when it has none;
//! * `Content-Type: application/json`, `X-Content-Type-Options: nosniff`,
//!   and `X-Load-Balancing-Endpoint-Weight: N` (the local endpoint count,
//!   which some load balancers use as a weight);
//! * body `{"service":{"namespace":"NS","name":"NAME"},"localEndpoints":N,"serviceProxyHealthy":true}`.
//!
//! [`desired`] derives what to serve from the compiled ruleset;
//! [`HealthCheckServers`] keeps the listeners in line with it across syncs.

use knc_compiler::names::object_key;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use knc_compiler::ir::Ruleset;
use serde::Serialize;

use crate::http::{self, Reply, Server};

/// What one health-check NodePort reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    pub namespace: String,
    pub name: String,
    /// Distinct endpoint addresses of the Service on this node.
    pub local_endpoints: usize,
}

/// What to serve, from the compiled ruleset: one entry per
/// healthCheckNodePort; local endpoints = distinct local backend addresses
/// over all the Service's entries (all ports, both families).
///
/// Should two Services claim one port (the API server prevents it), the
/// first in (namespace, name) order keeps it and the clash is logged.
pub fn desired(ruleset: &Ruleset) -> BTreeMap<u16, ServiceHealth> {
    #[derive(Default)]
    struct Seen<'a> {
        addresses: BTreeSet<&'a IpAddr>,
        ports: BTreeSet<u16>,
    }
    let mut services: BTreeMap<(&str, &str), Seen> = BTreeMap::new();
    for entry in &ruleset.services {
        let seen = services
            .entry((entry.namespace.as_str(), entry.name.as_str()))
            .or_default();
        seen.addresses
            .extend(entry.backends.local.iter().map(|b| &b.address));
        if let Some(port) = entry.health_check_node_port.filter(|p| *p != 0) {
            seen.ports.insert(port);
        }
    }

    let mut out: BTreeMap<u16, ServiceHealth> = BTreeMap::new();
    for ((namespace, name), seen) in services {
        for port in seen.ports {
            if let Some(holder) = out.get(&port) {
                tracing::warn!(
                    port,
                    service = %object_key(namespace, name),
                    holder = %object_key(&holder.namespace, &holder.name),
                    "healthCheckNodePort already used by another Service; ignored"
                );
                continue;
            }
            out.insert(
                port,
                ServiceHealth {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    local_endpoints: seen.addresses.len(),
                },
            );
        }
    }
    out
}

/// The listeners of one port: one per address, sharing what they report.
#[derive(Debug)]
struct Listening {
    health: Arc<Mutex<ServiceHealth>>,
    /// Held for their `Drop`, which closes the port.
    _servers: Vec<Server>,
}

/// The open health-check listeners; opened and closed as Services come and
/// go.
#[derive(Debug)]
pub struct HealthCheckServers {
    addresses: Vec<IpAddr>,
    open: BTreeMap<u16, Listening>,
}

impl HealthCheckServers {
    /// `addresses`: where to listen (the node's addresses); empty = every
    /// address (0.0.0.0 and [::] where IPv6 exists; if binding [::] fails,
    /// IPv4 only). Nothing is opened until [`HealthCheckServers::update`].
    pub fn new(addresses: Vec<IpAddr>) -> Self {
        let mut addresses = addresses;
        addresses.sort();
        addresses.dedup();
        HealthCheckServers {
            addresses,
            open: BTreeMap::new(),
        }
    }

    /// Makes the open listeners exactly `desired`: new ports opened, gone
    /// ports closed (their threads joined), counts of kept ports updated in
    /// place without reopening. Returns the ports that could not be opened,
    /// with why (the loop logs them and carries on); they are tried again
    /// on the next update.
    pub fn update(&mut self, desired: &BTreeMap<u16, ServiceHealth>) -> Vec<(u16, io::Error)> {
        self.open.retain(|port, _| {
            let keep = desired.contains_key(port);
            if !keep {
                tracing::info!(port, "closing health-check NodePort");
            }
            keep
        });

        let mut failed = Vec::new();
        for (&port, health) in desired {
            if let Some(listening) = self.open.get(&port) {
                let mut current = lock(&listening.health);
                if *current != *health {
                    *current = health.clone();
                }
                continue;
            }
            match self.open_port(port, health) {
                Ok(listening) => {
                    tracing::info!(
                        port,
                        service = %object_key(&health.namespace, &health.name),
                        "serving health-check NodePort"
                    );
                    self.open.insert(port, listening);
                }
                Err(e) => failed.push((port, e)),
            }
        }
        failed
    }

    /// The ports being served, ascending.
    pub fn ports(&self) -> Vec<u16> {
        self.open.keys().copied().collect()
    }

    /// Binds every address first, so that a port is served everywhere or
    /// nowhere; then starts a server per address.
    fn open_port(&self, port: u16, health: &ServiceHealth) -> io::Result<Listening> {
        let listeners = self.bind(port)?;
        let health = Arc::new(Mutex::new(health.clone()));
        let servers = listeners
            .into_iter()
            .map(|listener| {
                let health = Arc::clone(&health);
                Server::start(listener, "healthcheck", move |_, _| answer(&lock(&health)))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Listening {
            health,
            _servers: servers,
        })
    }

    fn bind(&self, port: u16) -> io::Result<Vec<TcpListener>> {
        let with_address = |addr: SocketAddr| {
            move |e: io::Error| io::Error::new(e.kind(), format!("listening on {addr}: {e}"))
        };
        if self.addresses.is_empty() {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
            let mut listeners = vec![http::listen(v4, true).map_err(with_address(v4))?];
            let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
            match http::listen(v6, true) {
                Ok(listener) => listeners.push(listener),
                Err(e) => tracing::debug!(port, "IPv4 only: listening on {v6}: {e}"),
            }
            return Ok(listeners);
        }
        self.addresses
            .iter()
            .map(|ip| {
                let addr = SocketAddr::new(*ip, port);
                http::listen(addr, true).map_err(with_address(addr))
            })
            .collect()
    }
}

impl Drop for HealthCheckServers {
    /// Closes every port and joins every thread.
    fn drop(&mut self) {
        self.open.clear();
    }
}

fn lock(health: &Mutex<ServiceHealth>) -> std::sync::MutexGuard<'_, ServiceHealth> {
    // A poisoned lock still holds the last state written.
    health.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    service: ServiceName<'a>,
    local_endpoints: usize,
    service_proxy_healthy: bool,
}

#[derive(Serialize)]
struct ServiceName<'a> {
    namespace: &'a str,
    name: &'a str,
}

fn answer(health: &ServiceHealth) -> Reply {
    let body = Body {
        service: ServiceName {
            namespace: &health.namespace,
            name: &health.name,
        },
        local_endpoints: health.local_endpoints,
        service_proxy_healthy: true,
    };
    let mut body = serde_json::to_vec(&body).expect("serialising a plain struct");
    body.push(b'\n');
    Reply {
        status: if health.local_endpoints > 0 { 200 } else { 503 },
        content_type: "application/json",
        headers: vec![
            ("X-Content-Type-Options", "nosniff".to_owned()),
            (
                "X-Load-Balancing-Endpoint-Weight",
                health.local_endpoints.to_string(),
            ),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_client::{get, request};
    use knc_compiler::ir::{Backend, BackendSets, Entry, Family, Protocol, Ruleset};

    fn localhost() -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    /// A port nothing listens on right now.
    fn free_port() -> u16 {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn health(namespace: &str, name: &str, local_endpoints: usize) -> ServiceHealth {
        ServiceHealth {
            namespace: namespace.into(),
            name: name.into(),
            local_endpoints,
        }
    }

    #[test]
    fn answers_by_local_endpoints_and_closes() {
        let port = free_port();
        let at = SocketAddr::new(localhost(), port);
        let mut servers = HealthCheckServers::new(vec![localhost()]);

        let mut want = BTreeMap::from([(port, health("shop", "web", 2))]);
        assert!(servers.update(&want).is_empty());
        assert_eq!(servers.ports(), vec![port]);

        let answer = get(at, "/any/path").unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("x-load-balancing-endpoint-weight"), Some("2"));
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "service": {"namespace": "shop", "name": "web"},
                "localEndpoints": 2,
                "serviceProxyHealthy": true,
            })
        );
        // Any method too, as a load balancer may probe with HEAD or POST.
        assert_eq!(request(at, "POST", "/").unwrap().status, 200);

        // The last local endpoint goes: same port, same listener, now 503.
        want.insert(port, health("shop", "web", 0));
        let before = Arc::as_ptr(&servers.open[&port].health);
        assert!(servers.update(&want).is_empty());
        assert_eq!(Arc::as_ptr(&servers.open[&port].health), before);
        let answer = get(at, "/").unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header("x-load-balancing-endpoint-weight"), Some("0"));
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["localEndpoints"], 0);

        // The Service goes: the port is closed.
        assert!(servers.update(&BTreeMap::new()).is_empty());
        assert!(servers.ports().is_empty());
        let err = get(at, "/").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

        // And comes back at once on the same port.
        want.insert(port, health("shop", "web", 1));
        assert!(servers.update(&want).is_empty());
        assert_eq!(get(at, "/").unwrap().status, 200);
    }

    #[test]
    fn a_port_in_use_is_reported_and_the_rest_served() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy = taken.local_addr().unwrap().port();
        let free = free_port();
        let mut servers = HealthCheckServers::new(vec![localhost()]);
        let want = BTreeMap::from([
            (busy, health("a", "busy", 1)),
            (free, health("b", "free", 1)),
        ]);

        let failed = servers.update(&want);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, busy);
        assert_eq!(failed[0].1.kind(), io::ErrorKind::AddrInUse);
        assert!(failed[0].1.to_string().contains(&busy.to_string()));
        assert_eq!(servers.ports(), vec![free]);

        // Retried on the next update, and served once the port is free.
        drop(taken);
        assert!(servers.update(&want).is_empty());
        assert_eq!(servers.ports(), {
            let mut p = vec![busy, free];
            p.sort();
            p
        });
        let answer = get(SocketAddr::new(localhost(), busy), "/").unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains(r#""name":"busy""#), "{}", answer.body);
    }

    #[test]
    fn drop_closes_everything() {
        let port = free_port();
        let mut servers = HealthCheckServers::new(vec![localhost()]);
        assert!(servers
            .update(&BTreeMap::from([(port, health("a", "b", 1))]))
            .is_empty());
        drop(servers);
        let err = get(SocketAddr::new(localhost(), port), "/").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    fn backend(address: &str, port: u16) -> Backend {
        Backend {
            address: address.parse().unwrap(),
            port,
            weight: 1,
        }
    }

    fn entry(
        family: Family,
        namespace: &str,
        name: &str,
        port_name: &str,
        hc: Option<u16>,
        local: Vec<Backend>,
    ) -> Entry {
        Entry {
            family,
            namespace: namespace.into(),
            name: name.into(),
            port_name: port_name.into(),
            protocol: Protocol::Tcp,
            frontends: Vec::new(),
            backends: BackendSets {
                cluster: local.clone(),
                local,
            },
            affinity_timeout_seconds: None,
            health_check_node_port: hc,
            selection: Default::default(),
        }
    }

    #[test]
    fn desired_counts_distinct_local_addresses_per_service() {
        let v4 = |port| vec![backend("10.1.0.5", port), backend("10.1.0.6", port)];
        let v6 = |port| vec![backend("fd00::5", port), backend("fd00::6", port)];
        let ruleset = Ruleset::with_services(
            Some("node-a".into()),
            vec![
                // Dual-stack, two ports: four entries, four distinct addresses.
                entry(Family::Ipv4, "shop", "web", "http", Some(32000), v4(8080)),
                entry(Family::Ipv4, "shop", "web", "https", Some(32000), v4(8443)),
                entry(Family::Ipv6, "shop", "web", "http", Some(32000), v6(8080)),
                entry(Family::Ipv6, "shop", "web", "https", Some(32000), v6(8443)),
                // ETP Local without local endpoints: served, as 503.
                entry(Family::Ipv4, "shop", "cart", "", Some(32001), Vec::new()),
                // ETP Cluster: no health check.
                entry(Family::Ipv4, "shop", "api", "", None, v4(80)),
            ],
        );
        assert_eq!(
            desired(&ruleset),
            BTreeMap::from([
                (32000, health("shop", "web", 4)),
                (32001, health("shop", "cart", 0)),
            ])
        );
    }

    #[test]
    fn desired_keeps_the_first_claim_on_a_port() {
        let ruleset = Ruleset::with_services(
            None,
            vec![
                entry(Family::Ipv4, "a", "one", "", Some(32000), Vec::new()),
                entry(Family::Ipv4, "b", "two", "", Some(32000), Vec::new()),
            ],
        );
        assert_eq!(
            desired(&ruleset),
            BTreeMap::from([(32000, health("a", "one", 0))])
        );
    }
}
