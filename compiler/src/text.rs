//! Small text helpers shared by stages that write a lot of text fast.

/// Appends `n` in decimal, as `Display` writes it, without going through
/// `fmt` (measurably cheaper when writing hundreds of thousands of numbers).
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
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_like_display() {
        for n in [0u64, 7, 10, 65535, u64::MAX] {
            let mut out = String::new();
            super::push_decimal(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}
