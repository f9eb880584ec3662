//! Address parsing the way Kubernetes does it.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Parses an IP address like Kubernetes' `ParseIPSloppy`: IPv4 octets with
/// leading zeros are read as decimal (`010.0.0.1` is 10.0.0.1), as
/// kube-proxy has always done for objects stored before validation tightened.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    parse_ipv4_leading_zeros(text).map(IpAddr::V4)
}

/// Parses a CIDR, accepting leading-zero IPv4 octets like [`parse_ip`], and
/// normalising host bits away (`10.0.0.1/8` is 10.0.0.0/8).
pub fn parse_cidr(text: &str) -> Option<IpNet> {
    let (addr, prefix) = text.trim().split_once('/')?;
    let addr = parse_ip(addr)?;
    let prefix: u8 = prefix.parse().ok()?;
    IpNet::new(addr, prefix).ok().map(|net| net.trunc())
}

fn parse_ipv4_leading_zeros(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_are_decimal() {
        assert_eq!(
            parse_ip("010.000.001.009"),
            Some("10.0.1.9".parse().unwrap())
        );
        assert_eq!(parse_ip("1.2.3"), None);
        assert_eq!(parse_ip("1.2.3.4.5"), None);
        assert_eq!(parse_ip("256.0.0.1"), None);
        assert_eq!(parse_ip("fd00::1"), Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn cidrs_normalise() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("10.0.0.0"), None);
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
    }
}
