//! Values flowing through a query, with the comparison rules of the language.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use seclog_model::Timestamp;

/// A value of a field or expression.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// Absent.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(Arc<str>),
    /// A point in time (Unix nanoseconds).
    Time(i64),
}

impl Value {
    /// A string value.
    pub fn str(text: &str) -> Value {
        Value::Str(Arc::from(text))
    }

    /// Whether the value is absent.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, when it is one or reads as one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(int) => Some(*int as f64),
            Value::Float(float) => Some(*float),
            Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
            Value::Str(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            Value::Time(nanos) => Some(*nanos as f64 / 1e6),
            Value::Null => None,
        }
    }

    /// The value as a time (Unix ns): times, RFC 3339 strings, or numbers as epoch milliseconds.
    pub fn as_time(&self) -> Option<i64> {
        match self {
            Value::Time(nanos) => Some(*nanos),
            Value::Str(text) => Timestamp::parse_rfc3339(text)
                .ok()
                .map(Timestamp::unix_nanos),
            Value::Int(ms) => ms.checked_mul(1_000_000),
            Value::Float(ms) => Some((ms * 1e6) as i64),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_))
    }

    /// Truth value in a filter.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(flag) => *flag,
            Value::Int(int) => *int != 0,
            Value::Float(float) => *float != 0.0,
            Value::Str(text) => !text.is_empty(),
            Value::Time(_) => true,
        }
    }

    /// The text form (what `like`, `parse` and string functions see).
    pub fn to_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        Some(match self {
            Value::Null => return None,
            Value::Bool(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
            Value::Int(int) => Cow::Owned(int.to_string()),
            Value::Float(float) => Cow::Owned(format_float(*float)),
            Value::Str(text) => Cow::Borrowed(text),
            Value::Time(nanos) => Cow::Owned(Timestamp::from_unix_nanos(*nanos).to_rfc3339()),
        })
    }

    /// JSON form for answers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(flag) => serde_json::Value::Bool(*flag),
            Value::Int(int) => serde_json::Value::from(*int),
            Value::Float(float) => serde_json::Number::from_f64(*float)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(text) => serde_json::Value::String(text.to_string()),
            Value::Time(nanos) => {
                serde_json::Value::String(Timestamp::from_unix_nanos(*nanos).to_rfc3339())
            }
        }
    }

    /// `=`: false when either side is absent; numbers compare as numbers, times as times, and
    /// everything else by its text (so the string `"200"` equals the number 200, but `"200.0"`
    /// and `true` do not).
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                self.as_f64() == other.as_f64()
            }
            (Value::Time(_), _) | (_, Value::Time(_)) => match (self.as_time(), other.as_time()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
            _ => match (self.to_text(), other.to_text()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// Ordering for `< <= > >=`: `None` when either side is absent or they do not compare.
    /// Numbers (and strings that read as numbers, against a number) compare as numbers, IP
    /// addresses as addresses, times as times, other strings by code point.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        if self.is_null() || other.is_null() {
            return None;
        }
        if (self.is_number() || other.is_number())
            && let (Some(a), Some(b)) = (self.as_f64(), other.as_f64())
        {
            return a.partial_cmp(&b);
        }
        if (matches!(self, Value::Time(_)) || matches!(other, Value::Time(_)))
            && let (Some(a), Some(b)) = (self.as_time(), other.as_time())
        {
            return Some(a.cmp(&b));
        }
        let (a, b) = (self.to_text()?, other.to_text()?);
        if let (Ok(a), Ok(b)) = (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            return Some(ip_key(a).cmp(&ip_key(b)));
        }
        Some(a.as_ref().cmp(b.as_ref()))
    }

    /// Total order used by `sort`: absent first, then text (natural order, digits runs by
    /// value), then numbers and times.
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        fn rank(value: &Value) -> u8 {
            match value {
                Value::Null => 0,
                Value::Bool(_) | Value::Str(_) => 1,
                Value::Int(_) | Value::Float(_) => 2,
                Value::Time(_) => 3,
            }
        }
        match (self, other) {
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            _ if rank(self) == 2 && rank(other) == 2 => self
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&other.as_f64().unwrap_or(0.0)),
            _ if rank(self) == 1 && rank(other) == 1 => {
                let (a, b) = (
                    self.to_text().unwrap_or_default(),
                    other.to_text().unwrap_or_default(),
                );
                natural_cmp(&a, &b)
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// Key for grouping and dedup (equal values give equal keys).
    pub fn group_key(&self) -> GroupKey {
        match self {
            Value::Null => GroupKey::Null,
            Value::Bool(flag) => GroupKey::Bool(*flag),
            Value::Int(int) => GroupKey::Int(*int),
            Value::Float(float) if float.fract() == 0.0 && float.abs() < 9e15 => {
                GroupKey::Int(*float as i64)
            }
            Value::Float(float) => GroupKey::Float(float.to_bits()),
            Value::Str(text) => GroupKey::Str(Arc::clone(text)),
            Value::Time(nanos) => GroupKey::Time(*nanos),
        }
    }
}

/// Hashable form of a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    /// Absent.
    Null,
    /// Boolean.
    Bool(bool),
    /// Whole number.
    Int(i64),
    /// Other number (bits).
    Float(u64),
    /// Text.
    Str(Arc<str>),
    /// Time.
    Time(i64),
}

impl GroupKey {
    /// Back to a value.
    pub fn to_value(&self) -> Value {
        match self {
            GroupKey::Null => Value::Null,
            GroupKey::Bool(flag) => Value::Bool(*flag),
            GroupKey::Int(int) => Value::Int(*int),
            GroupKey::Float(bits) => Value::Float(f64::from_bits(*bits)),
            GroupKey::Str(text) => Value::Str(Arc::clone(text)),
            GroupKey::Time(nanos) => Value::Time(*nanos),
        }
    }
}

fn ip_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (4, u32::from(v4) as u128),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

/// Formats a float without a trailing `.0` when whole.
pub fn format_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Natural order: runs of digits compare by length then value, other characters by code point.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let a_len = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let b_len = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let (a_run, b_run) = (
                    a[..a_len].trim_start_matches('0'),
                    b[..b_len].trim_start_matches('0'),
                );
                let order = a_run.len().cmp(&b_run.len()).then_with(|| a_run.cmp(b_run));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[a_len..];
                b = &b[b_len..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a = &a[x.len_utf8()..];
                b = &b[y.len_utf8()..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_types() {
        assert!(Value::str("200").equals(&Value::Int(200)));
        assert!(!Value::str("200.0").equals(&Value::Int(200)));
        assert!(!Value::Bool(true).equals(&Value::Int(1)));
        assert!(Value::Float(2.0).equals(&Value::Int(2)));
        assert!(!Value::Null.equals(&Value::Null));
        assert_eq!(
            Value::str("10.0.0.9").compare(&Value::str("10.0.0.10")),
            Some(Ordering::Less)
        );
        assert_eq!(
            Value::str("b").compare(&Value::str("a")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::Int(9).compare(&Value::str("10")),
            Some(Ordering::Less)
        );
        assert_eq!(natural_cmp("a9", "a10"), Ordering::Less);
        assert_eq!(Value::str("x").sort_cmp(&Value::Int(1)), Ordering::Less);
    }
}
