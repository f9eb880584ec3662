//! The kernel's nftables generation: a counter the kernel increments on
//! every committed ruleset transaction in this network namespace, by any
//! program (nft, iptables-nft, a CNI plugin). Reading it is one netlink
//! round trip, so reconcile can tell "nothing touched the ruleset since
//! our last commit" without listing 10,000 Services' worth of tables.

use std::io;
use std::mem::size_of;

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN` (linux/netfilter/nfnetlink.h,
/// nf_tables.h).
const GETGEN: u16 = (10 << 8) | 16;
/// `NFTA_GEN_ID`: the generation attribute of the reply.
const NFTA_GEN_ID: u16 = 1;
const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;

/// The current generation of this network namespace's nftables ruleset.
pub fn generation() -> io::Result<u32> {
    // SAFETY: plain socket call; the descriptor is owned by `Socket`.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let socket = Socket(fd);
    let mut request = [0u8; NLMSG_HDR + NFGENMSG];
    request[0..4].copy_from_slice(&((NLMSG_HDR + NFGENMSG) as u32).to_ne_bytes());
    request[4..6].copy_from_slice(&GETGEN.to_ne_bytes());
    request[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id 0.
    // SAFETY: an all-zero sockaddr_nl is valid; nl_pid 0 is the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: the buffer and address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            socket.0,
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut reply = [0u8; 4096];
    // SAFETY: the buffer is valid for its length.
    let received = unsafe { libc::recv(socket.0, reply.as_mut_ptr().cast(), reply.len(), 0) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_reply(&reply[..received as usize])
}

fn parse_reply(reply: &[u8]) -> io::Result<u32> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if reply.len() < NLMSG_HDR {
        return Err(bad("short netlink reply"));
    }
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if kind == libc::NLMSG_ERROR as u16 {
        let code = reply
            .get(NLMSG_HDR..NLMSG_HDR + 4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        return Err(io::Error::from_raw_os_error(-code));
    }
    let mut attributes = reply.get(NLMSG_HDR + NFGENMSG..).unwrap_or_default();
    while attributes.len() >= 4 {
        let length = u16::from_ne_bytes([attributes[0], attributes[1]]) as usize;
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]) & 0x3fff;
        if length < 4 || length > attributes.len() {
            break;
        }
        if kind == NFTA_GEN_ID && length >= 8 {
            let v = &attributes[4..8];
            return Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        }
        attributes = &attributes[(length + 3) & !3..];
    }
    Err(bad("netlink reply without a generation"))
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned and closed once.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_generation_attribute() {
        let mut reply = vec![0u8; NLMSG_HDR + NFGENMSG];
        reply[4..6].copy_from_slice(&GETGEN.to_ne_bytes());
        reply.extend_from_slice(&8u16.to_ne_bytes());
        reply.extend_from_slice(&NFTA_GEN_ID.to_ne_bytes());
        reply.extend_from_slice(&1234u32.to_be_bytes());
        assert_eq!(parse_reply(&reply).unwrap(), 1234);
    }

    #[test]
    fn a_netlink_error_is_an_error() {
        let mut reply = vec![0u8; NLMSG_HDR + 4];
        reply[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        reply[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse_reply(&reply).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
    }
}

#[cfg(test)]
mod kernel {
    /// Read-only: asks this namespace's kernel for its generation.
    #[test]
    fn the_kernel_answers_when_root() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let first = super::generation().expect("generation");
        let second = super::generation().expect("generation");
        assert!(second >= first);
    }
}
