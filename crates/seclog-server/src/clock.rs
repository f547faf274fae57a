//! The time retention trusts: the wall clock while it agrees with the monotonic clock, else
//! the last trusted time advanced by the monotonic clock only.
//!
//! A wall clock moved forward (by an attacker, a bad NTP source or a wrong manual setting)
//! would make retention delete early. So the commit thread keeps a trusted time, saved in the
//! metadata store and first taken from the newest signed checkpoint. Each sweep compares the
//! wall clock with the trusted time plus the monotonic time elapsed since: within the
//! tolerance, the wall clock is trusted; ahead or behind by more, expiry uses the trusted time
//! advanced by the monotonic clock only, and a health event is raised once. Time that passes
//! while seclog is stopped cannot be told from a clock moved forward, so after a restart
//! longer than the tolerance expiry runs on trusted time until an admin confirms the clock
//! (`POST /api/v1/clock`). Nothing is ever deleted earlier than the trusted time allows.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How the wall clock compares with the trusted time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Within the tolerance: the wall clock is trusted.
    Consistent,
    /// Ahead of the trusted time by more than the tolerance.
    Ahead,
    /// Behind the trusted time by more than the tolerance.
    Behind,
}

/// One reading of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// The time expiry uses (Unix nanoseconds; RFC 3339 in JSON).
    #[serde(rename = "trusted", serialize_with = "rfc3339")]
    pub trusted_nanos: i64,
    /// The wall clock (Unix nanoseconds; RFC 3339 in JSON).
    #[serde(rename = "wall", serialize_with = "rfc3339")]
    pub wall_nanos: i64,
    /// How they compare.
    pub state: ClockState,
    /// True when the state differs from the previous reading's.
    #[serde(skip)]
    pub changed: bool,
}

/// The trusted time and the monotonic instant it was taken at.
#[derive(Debug, Clone)]
pub struct RetentionClock {
    trusted_nanos: i64,
    at: Instant,
    tolerance: Duration,
    state: ClockState,
}

fn rfc3339<S: serde::Serializer>(nanos: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&seclog_model::Timestamp::from_unix_nanos(*nanos).to_rfc3339())
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

impl RetentionClock {
    /// A clock trusting `base_nanos` at `at`.
    pub fn new(base_nanos: i64, at: Instant, tolerance: Duration) -> Self {
        RetentionClock {
            trusted_nanos: base_nanos,
            at,
            tolerance,
            state: ClockState::Consistent,
        }
    }

    /// Compares `wall_nanos` read at `now` with the trusted time and moves the trusted time on.
    pub fn read(&mut self, wall_nanos: i64, now: Instant) -> Reading {
        let expected = self
            .trusted_nanos
            .saturating_add(nanos(now.saturating_duration_since(self.at)));
        let tolerance = nanos(self.tolerance);
        let state = if wall_nanos > expected.saturating_add(tolerance) {
            ClockState::Ahead
        } else if wall_nanos < expected.saturating_sub(tolerance) {
            ClockState::Behind
        } else {
            ClockState::Consistent
        };
        self.trusted_nanos = match state {
            // A wall clock within the tolerance is followed, but never ahead of what the
            // monotonic clock allows (small forward steps repeated at every sweep must not
            // add up) and never backwards.
            ClockState::Consistent => wall_nanos.min(expected).max(self.trusted_nanos),
            ClockState::Ahead | ClockState::Behind => expected,
        };
        self.at = now;
        let changed = state != self.state;
        self.state = state;
        Reading {
            trusted_nanos: self.trusted_nanos,
            wall_nanos,
            state,
            changed,
        }
    }

    /// An admin confirmed the wall clock: it becomes the trusted time.
    pub fn confirm(&mut self, wall_nanos: i64, now: Instant) -> Reading {
        self.trusted_nanos = wall_nanos;
        self.at = now;
        let changed = self.state != ClockState::Consistent;
        self.state = ClockState::Consistent;
        Reading {
            trusted_nanos: wall_nanos,
            wall_nanos,
            state: ClockState::Consistent,
            changed,
        }
    }

    /// The trusted time now, without comparing (Unix nanoseconds).
    pub fn trusted_nanos(&self, now: Instant) -> i64 {
        self.trusted_nanos
            .saturating_add(nanos(now.saturating_duration_since(self.at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const FIVE_YEARS: i64 = 1826 * 86_400 * SECOND;

    #[test]
    fn a_wall_clock_jump_is_not_trusted_until_confirmed() {
        let start = Instant::now();
        let base = 1_800_000_000 * SECOND;
        let mut clock = RetentionClock::new(base, start, Duration::from_secs(60));
        // Ten seconds later, the wall clock agrees (with a small step ahead, not taken).
        let reading = clock.read(base + 12 * SECOND, start + Duration::from_secs(10));
        assert_eq!(reading.state, ClockState::Consistent);
        assert_eq!(reading.trusted_nanos, base + 10 * SECOND);
        // Five years ahead: expiry keeps the monotonic time.
        let reading = clock.read(base + FIVE_YEARS, start + Duration::from_secs(20));
        assert_eq!(reading.state, ClockState::Ahead);
        assert!(reading.changed);
        assert_eq!(reading.trusted_nanos, base + 20 * SECOND);
        let reading = clock.read(
            base + FIVE_YEARS + 10 * SECOND,
            start + Duration::from_secs(30),
        );
        assert_eq!((reading.state, reading.changed), (ClockState::Ahead, false));
        assert_eq!(reading.trusted_nanos, base + 30 * SECOND);
        // Confirmed by an admin: the wall clock is trusted again.
        let reading = clock.confirm(
            base + FIVE_YEARS + 11 * SECOND,
            start + Duration::from_secs(31),
        );
        assert_eq!(reading.state, ClockState::Consistent);
        assert_eq!(
            clock
                .read(
                    base + FIVE_YEARS + 21 * SECOND,
                    start + Duration::from_secs(41)
                )
                .state,
            ClockState::Consistent
        );
    }

    #[test]
    fn steps_within_the_tolerance_do_not_add_up() {
        // A clock pushed 59 minutes ahead before every sweep: the trusted time still advances
        // only as fast as the monotonic clock.
        let start = Instant::now();
        let base = 1_800_000_000 * SECOND;
        let mut clock = RetentionClock::new(base, start, Duration::from_secs(3600));
        let mut wall = base;
        for sweep in 1..=100i64 {
            wall += 300 * SECOND + 59 * 60 * SECOND;
            let reading = clock.read(wall, start + Duration::from_secs(300 * sweep as u64));
            assert!(reading.trusted_nanos <= base + 300 * sweep * SECOND);
        }
    }

    #[test]
    fn a_clock_set_back_does_not_move_trusted_time_back() {
        let start = Instant::now();
        let base = 1_800_000_000 * SECOND;
        let mut clock = RetentionClock::new(base, start, Duration::from_secs(60));
        let reading = clock.read(base - 3600 * SECOND, start + Duration::from_secs(5));
        assert_eq!(reading.state, ClockState::Behind);
        assert_eq!(reading.trusted_nanos, base + 5 * SECOND);
        // A step back within the tolerance is followed, but never below the trusted time.
        let mut clock = RetentionClock::new(base, start, Duration::from_secs(60));
        let reading = clock.read(base - 30 * SECOND, start + Duration::from_secs(1));
        assert_eq!(reading.state, ClockState::Consistent);
        assert_eq!(reading.trusted_nanos, base);
    }
}
