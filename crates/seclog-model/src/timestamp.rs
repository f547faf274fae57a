//! UTC timestamps with nanosecond precision.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant in UTC, as nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A timestamp could not be parsed or is out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp: {0}")]
pub struct TimestampError(String);

impl Timestamp {
    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (floored).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
        };
        Timestamp(nanos)
    }

    /// Parses an RFC 3339 timestamp with any offset; the result is UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|error| TimestampError(format!("{text:?}: {error}")))?;
        let nanos = i64::try_from(parsed.unix_timestamp_nanos())
            .map_err(|_| TimestampError(format!("{text:?}: out of range")))?;
        Ok(Timestamp(nanos))
    }

    /// Formats as RFC 3339 UTC with exactly nine fractional digits.
    pub fn to_rfc3339(self) -> String {
        match OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0)) {
            Ok(datetime) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                datetime.year(),
                u8::from(datetime.month()),
                datetime.day(),
                datetime.hour(),
                datetime.minute(),
                datetime.second(),
                datetime.nanosecond()
            ),
            // Every i64 nanosecond count is within time's range; keep a total function anyway.
            Err(_) => format!("@{}ns", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_with_offsets() {
        let t = Timestamp::parse_rfc3339("2023-07-10T11:45:00.123456789+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2023-07-10T09:45:00.123456789Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn formats_epoch_and_negative() {
        assert_eq!(
            Timestamp::from_unix_nanos(0).to_rfc3339(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(Timestamp::from_unix_nanos(-1).unix_seconds(), -1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert!(Timestamp::parse_rfc3339("2023-13-01T00:00:00Z").is_err());
    }
}
