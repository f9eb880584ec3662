//! Small text helpers shared by the stages that write a lot of text fast:
//! numbers and IP addresses as `Display` writes them, two digits at a time
//! from a static table (the emitters write about a million of them at
//! 10,000 Services, and pushing digit by digit, checking freshly written
//! bytes as UTF-8, or going through `fmt` showed in profiles).

use std::net::{IpAddr, Ipv4Addr};

/// The two digits of every number below 100, back to back: numbers are
/// written two digits at a time, each pair a slice of this `str` (so no
/// UTF-8 check of bytes just written, and half the divisions).
const PAIRS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Appends `n` (below 100) in decimal, without a leading zero.
fn push_below_100(out: &mut String, n: u8) {
    let i = 2 * usize::from(n);
    out.push_str(if n < 10 {
        &PAIRS[i + 1..i + 2]
    } else {
        &PAIRS[i..i + 2]
    });
}

/// Appends `n` (below 100) as two digits.
fn push_pair(out: &mut String, n: u8) {
    let i = 2 * usize::from(n);
    out.push_str(&PAIRS[i..i + 2]);
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    // Pairs of digits from the least significant; u64 has 20 digits.
    let mut pairs = [0u8; 10];
    let mut k = 0;
    while n >= 100 {
        pairs[k] = (n % 100) as u8;
        k += 1;
        n /= 100;
    }
    push_below_100(out, n as u8);
    for &pair in pairs[..k].iter().rev() {
        push_pair(out, pair);
    }
}

/// Appends `a` in dotted decimal.
pub(crate) fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            push_below_100(out, octet / 100);
            push_pair(out, octet % 100);
        } else {
            push_below_100(out, octet);
        }
    }
}

/// Appends `a` as `Display` writes it (IPv4 without going through `fmt`).
pub(crate) fn push_ip(out: &mut String, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_like_display() {
        for n in [
            0u64,
            7,
            10,
            99,
            100,
            101,
            999,
            1000,
            8080,
            10000,
            65535,
            1_000_000,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
        for a in ["0.0.0.0", "10.96.0.1", "255.255.255.255", "1.20.100.9"] {
            let a: Ipv4Addr = a.parse().unwrap();
            let mut out = String::new();
            push_ipv4(&mut out, a);
            assert_eq!(out, a.to_string());
        }
        for i in 0..=255u8 {
            let a = Ipv4Addr::new(i, i / 3, 255 - i, i / 10);
            let mut out = String::new();
            push_ipv4(&mut out, a);
            assert_eq!(out, a.to_string());
        }
        for a in [
            "10.0.0.255",
            "::",
            "::1",
            "fd00:96::10",
            "::ffff:10.0.0.1",
            "1234:5678:9abc:def0:1234:5678:9abc:def0",
        ] {
            let a: IpAddr = a.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, a);
            assert_eq!(out, a.to_string());
        }
    }
}
