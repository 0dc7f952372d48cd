//! Replies of the time-series commands, shaped as RedisTimeSeries shapes them. In RESP2
//! a sample is `[integer timestamp, simple-string value]`, the value printed as C's
//! `%.15g` prints it (RedisTimeSeries 1.10 `src/reply.c`, `ReplyWithSample`), and the
//! value of an `EMPTY` bucket without one as `NaN` (redis.io, "TS.RANGE", the `EMPTY`
//! example). In RESP3 the value is a double (`,value`), and label lists are maps.

use crate::resp::{self, resp3, Protocol};

use super::chunk::Sample;

/// Formats `value` as `printf("%.15g")` does: 15 significant digits, trailing zeros
/// dropped, scientific notation below 1e-4 and from 1e15.
pub fn format_value(value: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_value(&mut out, value);
    String::from_utf8(out).expect("digits, signs, points and letters")
}

/// A fixed buffer that `write!` fills without allocating (long enough for `{:.14e}` of
/// any finite `f64`: 16 digits and a point, `e` and a sign, 3 exponent digits).
struct DigitBuf {
    bytes: [u8; 32],
    len: usize,
}

impl std::fmt::Write for DigitBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `value` as `printf("%.15g")` prints it ([`format_value`]), without allocating:
/// the value is rounded once to 15 significant digits (`{:.14e}`, exact), and the digits
/// are laid out in fixed or scientific notation as `%g` chooses by the exponent.
pub fn write_value(out: &mut Vec<u8>, value: f64) {
    use std::fmt::Write as _;
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if value.is_sign_negative() {
        out.push(b'-');
    }
    if value.is_infinite() {
        out.extend_from_slice(b"inf");
        return;
    }
    if value == 0.0 {
        out.push(b'0');
        return;
    }
    let mut buf = DigitBuf {
        bytes: [0; 32],
        len: 0,
    };
    write!(buf, "{:.14e}", value.abs()).expect("fits the buffer");
    let text = &buf.bytes[..buf.len];
    let e_at = text
        .iter()
        .position(|&b| b == b'e')
        .expect("{:e} has an exponent");
    let exponent: i32 = std::str::from_utf8(&text[e_at + 1..])
        .ok()
        .and_then(|e| e.parse().ok())
        .expect("{:e} exponent is an integer");
    // The 15 significant digits ("d.dddddddddddddd" without its point), zeros dropped.
    let mut digits = [0u8; 15];
    let mut count = 0;
    for &b in text[..e_at].iter().filter(|b| b.is_ascii_digit()) {
        digits[count] = b;
        count += 1;
    }
    while count > 1 && digits[count - 1] == b'0' {
        count -= 1;
    }
    let digits = &digits[..count];
    if !(-4..15).contains(&exponent) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(magnitude.to_string().as_bytes());
    } else if exponent < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
        out.extend_from_slice(digits);
    } else {
        let whole = exponent as usize + 1;
        if digits.len() <= whole {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', whole - digits.len()));
        } else {
            out.extend_from_slice(&digits[..whole]);
            out.push(b'.');
            out.extend_from_slice(&digits[whole..]);
        }
    }
}

/// Appends one sample: `*2 :ts +value` in RESP2, `*2 :ts ,value` (a double) in RESP3
/// (RedisTimeSeries `src/reply.c`, `ReplyWithSample`).
pub fn sample(out: &mut Vec<u8>, proto: Protocol, s: Sample) {
    resp::array_header(out, 2);
    resp::integer(out, s.ts_ms as i64);
    match proto {
        Protocol::Resp2 => {
            out.push(b'+');
            write_value(out, s.value);
            out.extend_from_slice(b"\r\n");
        }
        Protocol::Resp3 => resp3::double(out, proto, s.value),
    }
}

/// Appends an array of samples.
pub fn samples<'a>(
    out: &mut Vec<u8>,
    proto: Protocol,
    list: impl ExactSizeIterator<Item = &'a Sample>,
) {
    resp::array_header(out, list.len());
    for s in list {
        sample(out, proto, *s);
    }
}

/// Appends label-value pairs: an array of `[name, value]` pairs in RESP2, a map in RESP3;
/// a missing value (`SELECTED_LABELS` of a label the series lacks) is a null.
pub fn labels<'a>(
    out: &mut Vec<u8>,
    proto: Protocol,
    pairs: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) {
    match proto {
        Protocol::Resp2 => resp::array_header(out, pairs.len()),
        Protocol::Resp3 => resp3::map_header(out, proto, pairs.len()),
    }
    for (name, value) in pairs {
        if proto == Protocol::Resp2 {
            resp::array_header(out, 2);
        }
        resp::bulk(out, name);
        match value {
            Some(v) => resp::bulk(out, v),
            None => resp3::null(out, proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_printf_g15() {
        for (value, text) in [
            (25.0, "25"),
            (25.3, "25.3"),
            (0.1 + 0.2, "0.3"),
            (-1.5, "-1.5"),
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1.0 / 3.0, "0.333333333333333"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (1e300, "1e+300"),
        ] {
            assert_eq!(format_value(value), text, "{value:e}");
        }
    }

    use crate::runtime::sys::printf_g15;

    proptest::proptest! {
        /// Goal: every finite value prints exactly as C's `%.15g` (RedisTimeSeries prints
        /// with it), also for full-precision doubles, tiny and huge magnitudes.
        #[test]
        fn values_print_exactly_as_c_printf(bits in proptest::prelude::any::<u64>()) {
            let value = f64::from_bits(bits);
            if value.is_finite() {
                proptest::prop_assert_eq!(format_value(value), printf_g15(value));
            }
        }

        #[test]
        fn everyday_values_print_exactly_as_c_printf(value in -1e7f64..1e7) {
            proptest::prop_assert_eq!(format_value(value), printf_g15(value));
        }
    }
}
