/*!
The core's notion of time: a duration since an epoch the caller picks.

The core never reads a clock (see the crate doc). The tokio driver passes
`Instant::now() - start`, a simulator passes virtual time. Only differences
between two [`Time`]s mean anything.
*/

use std::fmt;
use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in time, as the duration since the caller's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(Duration);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(Duration::ZERO);

    pub const fn from_duration(since_epoch: Duration) -> Time {
        Time(since_epoch)
    }

    pub const fn from_millis(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    /// The duration since the epoch.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - d`, or the epoch.
    pub fn saturating_sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(d))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        self.0 = self.0.saturating_add(d);
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:.3}s", self.0.as_secs_f64())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whole seconds left until `deadline`, rounded up; 0 when it has passed.
pub(crate) fn secs_left(now: Time, deadline: Time) -> u32 {
    let left = deadline.saturating_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_left_rounds_up_and_saturates() {
        let now = Time::from_millis(1_000);
        assert_eq!(secs_left(now, Time::from_millis(1_001)), 1);
        assert_eq!(secs_left(now, Time::from_millis(3_000)), 2);
        assert_eq!(secs_left(now, Time::from_millis(500)), 0);
        assert_eq!(Time::from_millis(5).saturating_since(now), Duration::ZERO);
    }
}
