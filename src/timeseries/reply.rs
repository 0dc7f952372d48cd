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
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{value:.14e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if !(-4..15).contains(&exponent) {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (14 - exponent) as usize;
        strip_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Appends one sample: `*2 :ts +value` in RESP2, `*2 :ts ,value` (a double) in RESP3
/// (RedisTimeSeries `src/reply.c`, `ReplyWithSample`).
pub fn sample(out: &mut Vec<u8>, proto: Protocol, s: Sample) {
    resp::array_header(out, 2);
    resp::integer(out, s.ts_ms as i64);
    match proto {
        Protocol::Resp2 => resp::simple(out, &format_value(s.value)),
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
}
