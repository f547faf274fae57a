//! Timestamp values as they appear in JSON events.
//!
//! ```text
//! "2023-07-10T11:45:00.123456789+02:00"   RFC 3339, any offset
//! "2023-07-10 11:45:00Z"                  RFC 3339 with a space separator
//! 1688989500 | 1688989500.25 | "1688989500"      epoch seconds     |v| < 1e11
//! 1688989500123 | "1688989500123"                epoch milliseconds |v| < 1e14
//! 1688989500123456                               epoch microseconds |v| < 1e17
//! 1688989500123456789                            epoch nanoseconds  otherwise
//! ```
//!
//! Epoch values are converted with integer arithmetic so that nanosecond values and
//! numeric strings keep their exact precision; only JSON numbers that serde_json already
//! holds as `f64` go through their shortest decimal form.

use seclog_model::Timestamp;

/// No timestamp form we accept is longer (RFC 3339 with nine fraction digits and an offset
/// is 35 bytes); refusing longer strings early bounds the work spent on a hostile field.
const MAX_TIME_TEXT_LEN: usize = 64;

/// Nanoseconds per unit, chosen by the integer part's magnitude (the brief's table).
const UNIT_THRESHOLDS: [(u64, u64); 3] = [
    (100_000_000_000, 1_000_000_000), // seconds
    (100_000_000_000_000, 1_000_000), // milliseconds
    (100_000_000_000_000_000, 1_000), // microseconds
];

/// Parses one timestamp value: an RFC 3339 string (any offset, `T` or space separator, with or
/// without a fraction), or a number / numeric string of epoch seconds (may be fractional),
/// milliseconds, microseconds or nanoseconds, chosen by magnitude (|v| < 1e11 seconds,
/// < 1e14 ms, < 1e17 µs, else ns).
///
/// Returns `None` for anything else, including values outside the `Timestamp` range
/// (1677..2262).
///
/// ```
/// use seclog_formats::parse_time_value;
/// let t = parse_time_value(&serde_json::json!(1688989500123_u64)).unwrap();
/// assert_eq!(t.to_rfc3339(), "2023-07-10T11:45:00.123000000Z");
/// assert_eq!(parse_time_value(&serde_json::json!("yesterday")), None);
/// ```
pub fn parse_time_value(value: &serde_json::Value) -> Option<Timestamp> {
    match value {
        serde_json::Value::String(text) => parse_time_str(text),
        serde_json::Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                parse_epoch_u64(unsigned)
            } else if let Some(signed) = number.as_i64() {
                parse_epoch_i64(signed)
            } else {
                parse_epoch_f64(number.as_f64()?)
            }
        }
        _ => None,
    }
}

/// A string value: a numeric epoch if it is a plain decimal, else RFC 3339.
pub(crate) fn parse_time_str(text: &str) -> Option<Timestamp> {
    if text.len() > MAX_TIME_TEXT_LEN {
        return None;
    }
    // An RFC 3339 string fails the decimal parse at its first '-', so trying it first is cheap.
    parse_epoch_decimal(text).or_else(|| Timestamp::parse_rfc3339(text).ok())
}

/// A JSON unsigned integer epoch value.
pub(crate) fn parse_epoch_u64(value: u64) -> Option<Timestamp> {
    epoch_to_timestamp(false, value, b"")
}

/// A JSON negative integer epoch value.
pub(crate) fn parse_epoch_i64(value: i64) -> Option<Timestamp> {
    epoch_to_timestamp(value < 0, value.unsigned_abs(), b"")
}

/// A JSON number that serde_json holds as `f64` (it had a fraction or exponent).
pub(crate) fn parse_epoch_f64(value: f64) -> Option<Timestamp> {
    // 1e19 exceeds every representable nanosecond count; the guard also keeps the decimal
    // form below short (f64's Display never uses an exponent).
    if !value.is_finite() || value.abs() >= 1e19 {
        return None;
    }
    // Display prints the shortest decimal that round-trips, so 1688989500.123 stays
    // "1688989500.123" instead of becoming ...122999906 ns through float multiplication.
    parse_epoch_decimal(&value.to_string())
}

/// `-?[0-9]+(\.[0-9]+)?` as an epoch value, exactly; `None` for any other text.
fn parse_epoch_decimal(text: &str) -> Option<Timestamp> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer_digits, fraction_digits) = match unsigned.split_once('.') {
        Some((integer, fraction)) if !fraction.is_empty() => (integer, fraction),
        Some(_) => return None,
        None => (unsigned, ""),
    };
    let all_digits =
        |digits: &str| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(integer_digits) || !(fraction_digits.is_empty() || all_digits(fraction_digits)) {
        return None;
    }
    // u64 parsing rejects overflow; leading zeros are harmless.
    let integer_part: u64 = integer_digits.parse().ok()?;
    epoch_to_timestamp(negative, integer_part, fraction_digits.as_bytes())
}

/// Scales an epoch value (sign, integer part, ASCII fraction digits) to nanoseconds.
///
/// The integer part alone decides the unit: `integer < 1e11` exactly when `|v| < 1e11`.
/// Fraction digits finer than a nanosecond are truncated.
fn epoch_to_timestamp(
    negative: bool,
    integer_part: u64,
    fraction_digits: &[u8],
) -> Option<Timestamp> {
    let nanos_per_unit = UNIT_THRESHOLDS
        .iter()
        .find(|(limit, _)| integer_part < *limit)
        .map_or(1, |(_, nanos)| *nanos);
    let mut fraction_nanos: u64 = 0;
    let mut place = nanos_per_unit;
    for digit in fraction_digits {
        if place == 1 {
            break;
        }
        place /= 10;
        fraction_nanos += u64::from(digit.wrapping_sub(b'0')) * place;
    }
    let magnitude = integer_part
        .checked_mul(nanos_per_unit)?
        .checked_add(fraction_nanos)?;
    let magnitude = i64::try_from(magnitude).ok()?;
    let nanos = if negative { -magnitude } else { magnitude };
    Some(Timestamp::from_unix_nanos(nanos))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rfc3339(value: serde_json::Value) -> Option<String> {
        parse_time_value(&value).map(Timestamp::to_rfc3339)
    }

    #[test]
    fn parses_rfc3339_strings() {
        let cases = [
            ("2023-07-10T11:45:00Z", "2023-07-10T11:45:00.000000000Z"),
            ("2023-07-10 11:45:00Z", "2023-07-10T11:45:00.000000000Z"),
            (
                "2023-07-10T13:45:00.123456789+02:00",
                "2023-07-10T11:45:00.123456789Z",
            ),
            (
                "2023-07-10T06:45:00.5-05:00",
                "2023-07-10T11:45:00.500000000Z",
            ),
            ("2023-07-10t11:45:00z", "2023-07-10T11:45:00.000000000Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(rfc3339(json!(text)).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn parses_epoch_numbers_by_magnitude() {
        let cases = [
            (json!(1688989500), "2023-07-10T11:45:00.000000000Z"),
            (json!(1688989500.123), "2023-07-10T11:45:00.123000000Z"),
            (json!(1688989500.25), "2023-07-10T11:45:00.250000000Z"),
            (json!(1688989500123_u64), "2023-07-10T11:45:00.123000000Z"),
            (json!(1688989500123.5), "2023-07-10T11:45:00.123500000Z"),
            (
                json!(1688989500123456_u64),
                "2023-07-10T11:45:00.123456000Z",
            ),
            (
                json!(1688989500123456789_u64),
                "2023-07-10T11:45:00.123456789Z",
            ),
            (json!(0), "1970-01-01T00:00:00.000000000Z"),
            (json!(-1), "1969-12-31T23:59:59.000000000Z"),
            (json!(-1.5), "1969-12-31T23:59:58.500000000Z"),
            (json!(1.6889895e9), "2023-07-10T11:45:00.000000000Z"),
        ];
        for (value, expected) in cases {
            assert_eq!(rfc3339(value.clone()).as_deref(), Some(expected), "{value}");
        }
    }

    #[test]
    fn parses_numeric_strings_exactly() {
        let cases = [
            ("1688989500", "2023-07-10T11:45:00.000000000Z"),
            ("1688989500.123456789", "2023-07-10T11:45:00.123456789Z"),
            ("1688989500.1234567891234", "2023-07-10T11:45:00.123456789Z"),
            ("1688989500123", "2023-07-10T11:45:00.123000000Z"),
            ("1688989500123.456", "2023-07-10T11:45:00.123456000Z"),
            ("1688989500123456", "2023-07-10T11:45:00.123456000Z"),
            ("1688989500123456789", "2023-07-10T11:45:00.123456789Z"),
            ("-0.5", "1969-12-31T23:59:59.500000000Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(rfc3339(json!(text)).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn unit_boundaries_follow_the_magnitude_table() {
        // Just below 1e11 is still seconds: year 5138, out of range, not reread as ms.
        assert_eq!(rfc3339(json!(99_999_999_999_u64)), None);
        assert_eq!(rfc3339(json!(99_999_999_999_999_u64)), None);
        assert_eq!(
            rfc3339(json!(9_000_000_000_u64)).as_deref(),
            Some("2255-03-14T16:00:00.000000000Z")
        );
        assert_eq!(
            rfc3339(json!(100_000_000_000_u64)).as_deref(),
            Some("1973-03-03T09:46:40.000000000Z")
        );
        assert_eq!(
            rfc3339(json!(100_000_000_000_000_u64)),
            rfc3339(json!(100_000_000_000_u64))
        );
        assert_eq!(
            rfc3339(json!(100_000_000_000_000_000_u64)),
            rfc3339(json!(100_000_000_000_u64))
        );
    }

    #[test]
    fn refuses_everything_else() {
        let cases = [
            json!(null),
            json!(true),
            json!([1688989500]),
            json!({"seconds": 1688989500}),
            json!(""),
            json!("yesterday"),
            json!("2023-07-10T11:45:00"),
            json!("2023-13-10T11:45:00Z"),
            json!("1688989500."),
            json!(".5"),
            json!("+1688989500"),
            json!(" 1688989500"),
            json!("1e9"),
            json!("NaN"),
            json!(u64::MAX),
            json!(1e300),
            json!("99999999999999999999999"),
            json!(format!("2023-07-10T11:45:00.{}Z", "1".repeat(80))),
        ];
        for value in cases {
            assert_eq!(parse_time_value(&value), None, "{value}");
        }
    }
}
