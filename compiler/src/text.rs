//! Small text helpers shared by the stages that write a lot of text fast:
//! numbers and IPv4 addresses as `Display` writes them, each appended with
//! one `push_str` (the emitters write about a million of them at 10,000
//! Services, and pushing digit by digit or through `fmt` showed in
//! profiles).

use std::net::{IpAddr, Ipv4Addr};

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // One character at a time: the digits were just stored one by one, and
    // reading them back as one block (`push_str`) cannot take them from the
    // store buffer, so it waits for the stores to land (and validating them
    // as UTF-8 again costs more than the pushes).
    out.reserve(digits.len() - i);
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Appends `a` in dotted decimal.
pub(crate) fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    let mut text = [0u8; 15];
    let len = write_ipv4(&mut text, a);
    out.push_str(ascii(&text[..len]));
}

/// Writes `a` in dotted decimal at the start of `text`; its length.
fn write_ipv4(text: &mut [u8], a: Ipv4Addr) -> usize {
    let mut len = 0;
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    len
}

/// An IP address as `Display` writes it, in a buffer on the stack: for
/// text that repeats one address (formatted once, appended several times).
pub(crate) struct AddrText {
    /// Longest form: eight groups of four hex digits and seven colons.
    bytes: [u8; 39],
    len: u8,
}

impl AddrText {
    pub fn new(a: IpAddr) -> AddrText {
        let mut text = AddrText {
            bytes: [0; 39],
            len: 0,
        };
        match a {
            IpAddr::V4(v4) => text.len = write_ipv4(&mut text.bytes, v4) as u8,
            IpAddr::V6(v6) => {
                use std::fmt::Write as _;
                let _ = write!(text, "{v6}");
            }
        }
        text
    }

    pub fn as_str(&self) -> &str {
        ascii(self.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        self.bytes
            .get_mut(start..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_like_display() {
        for n in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
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
            assert_eq!(AddrText::new(IpAddr::V4(a)).as_str(), a.to_string());
        }
        for a in [
            "::",
            "::1",
            "fd00:96::10",
            "::ffff:10.0.0.1",
            "1234:5678:9abc:def0:1234:5678:9abc:def0",
        ] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(AddrText::new(a).as_str(), a.to_string());
        }
    }
}
