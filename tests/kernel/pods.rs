//! Pod servers: a dedicated thread per pod, inside the pod's network
//! namespace, answering on TCP and UDP ports with
//! `<pod name> <source address it saw> <local port>\n`.
//!
//! Every port is served on IPv4 and IPv6.
//! The name says which endpoint a connection landed on, the source says
//! whether it was masqueraded, and the port says which target port the
//! Service port was translated to.

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use crate::netns;

/// A running pod server; stops (and joins its thread) when dropped.
pub struct PodServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PodServer {
    /// Starts serving in namespace `ns`; returns once every port is bound.
    pub fn start(ns: &str, pod: &str, tcp_ports: &[u16], udp_ports: &[u16]) -> PodServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (ns, pod) = (ns.to_owned(), pod.to_owned());
        let (tcp_ports, udp_ports) = (tcp_ports.to_vec(), udp_ports.to_vec());
        let stop_flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("pod-{pod}"))
            .spawn(move || {
                let bound = netns::enter(&ns)
                    .map_err(|e| format!("setns into {ns}: {e}"))
                    .and_then(|()| bind(&tcp_ports, &udp_ports));
                match bound {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok((tcp, udp)) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&pod, &tcp, &udp, &stop_flag);
                    }
                }
            })
            .expect("spawn pod server");
        match ready_rx.recv() {
            Ok(Ok(())) => PodServer {
                stop,
                thread: Some(thread),
            },
            Ok(Err(e)) => panic!("pod server: {e}"),
            Err(_) => panic!("pod server thread died before binding"),
        }
    }
}

impl Drop for PodServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Bound = (Vec<(TcpListener, u16)>, Vec<(UdpSocket, u16)>);

fn bind(tcp_ports: &[u16], udp_ports: &[u16]) -> Result<Bound, String> {
    // One socket per family: pod namespaces set `net.ipv6.bindv6only=1`
    // (see the harness), so `::` does not also claim IPv4 and IPv4 peers
    // are reported as IPv4 addresses, not v4-mapped IPv6 ones.
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for any in [
        IpAddr::from(Ipv4Addr::UNSPECIFIED),
        Ipv6Addr::UNSPECIFIED.into(),
    ] {
        for &port in tcp_ports {
            let l = TcpListener::bind((any, port)).map_err(|e| format!("tcp {any} {port}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            tcp.push((l, port));
        }
        for &port in udp_ports {
            let s = UdpSocket::bind((any, port)).map_err(|e| format!("udp {any} {port}: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            udp.push((s, port));
        }
    }
    Ok((tcp, udp))
}

fn serve(pod: &str, tcp: &[(TcpListener, u16)], udp: &[(UdpSocket, u16)], stop: &AtomicBool) {
    let mut fds: Vec<libc::pollfd> = tcp
        .iter()
        .map(|(l, _)| l.as_raw_fd())
        .chain(udp.iter().map(|(s, _)| s.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: fds is a valid, correctly sized array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if n <= 0 {
            continue;
        }
        for (listener, port) in tcp {
            loop {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let reply = format!("{pod} {} {port}\n", peer.ip());
                        let _ = stream.write_all(reply.as_bytes());
                        let _ = stream.shutdown(Shutdown::Write);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        for (socket, port) in udp {
            let mut buf = [0u8; 1500];
            while let Ok((_, peer)) = socket.recv_from(&mut buf) {
                let reply = format!("{pod} {} {port}\n", peer.ip());
                let _ = socket.send_to(reply.as_bytes(), peer);
            }
        }
    }
}
