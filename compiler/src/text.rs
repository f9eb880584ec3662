//! Small text helpers shared by the stages that write a lot of text fast:
//! numbers and IPv4 addresses as `Display` writes them, each appended with
//! one `push_str` (the emitters write about a million of them at 10,000
//! Services, and pushing digit by digit or through `fmt` showed in
//! profiles).

use std::net::Ipv4Addr;

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
    out.push_str(ascii(&digits[i..]));
}

/// Appends `a` in dotted decimal.
pub(crate) fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    let mut text = [0u8; 15];
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
    out.push_str(ascii(&text[..len]));
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
        }
    }
}
