//! Capture timestamps: signed nanoseconds since the Unix epoch, which covers
//! 1677..2262 and every precision a pcap or pcapng file can state.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A point in capture time, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Seconds and nanoseconds, saturating outside the representable range.
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(NANOS_PER_SEC)
                .saturating_add(i64::from(nanos)),
        )
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded towards minus infinity.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Nanoseconds past [`Timestamp::secs`], always below one second.
    pub const fn subsec_nanos(self) -> u32 {
        // rem_euclid is in 0..1e9, which fits a u32.
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let d = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(d))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    pub fn to_system_time(self) -> SystemTime {
        let abs = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + abs
        } else {
            UNIX_EPOCH - abs
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(
                i64::try_from(e.duration().as_nanos())
                    .map(|n| -n)
                    .unwrap_or(i64::MIN),
            ),
        }
    }
}

/// Time since the epoch.
impl From<Duration> for Timestamp {
    fn from(d: Duration) -> Timestamp {
        Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_times_split_with_floor() {
        let t = Timestamp::from_nanos(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
        assert_eq!(format!("{t}"), "-1.999999999");
    }

    #[test]
    fn system_time_round_trip() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        let before = Timestamp::from_secs_nanos(-5, 1);
        assert_eq!(Timestamp::from(before.to_system_time()), before);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(Timestamp::from_secs_nanos(i64::MAX, 5).as_nanos(), i64::MAX);
        assert_eq!(
            Timestamp::from_nanos(i64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp::from_nanos(i64::MAX)
        );
    }
}
