//! Time as a value passed in: the [`Clock`] trait, the system clock, and a manual clock for tests.
//!
//! Reading the system clock is the only contact with the outside world this crate has; everything
//! that needs "now" takes a `&dyn Clock` (or an `Arc<dyn Clock>`), so tests can fix and move time.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use time::{Duration, OffsetDateTime};

/// Where "now" comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current instant in whole seconds since the Unix epoch.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until it is set or advanced (millisecond resolution).
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock showing `start` (truncated to the millisecond).
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock {
            millis: AtomicI64::new(to_millis(start)),
        }
    }

    /// A clock showing `unix` seconds since the epoch.
    pub fn at_unix(unix: i64) -> ManualClock {
        ManualClock {
            millis: AtomicI64::new(unix.saturating_mul(1000)),
        }
    }

    pub fn set(&self, to: OffsetDateTime) {
        self.millis.store(to_millis(to), Ordering::SeqCst);
    }

    /// Moves the clock by `by` (negative moves it back).
    pub fn advance(&self, by: Duration) {
        let delta = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
        self.millis.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let millis = self.millis.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn to_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_700_000_000);
        assert_eq!(clock.unix(), 1_700_000_000);
        assert_eq!(clock.unix(), 1_700_000_000);
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.unix(), 1_700_000_090);
        clock.advance(Duration::milliseconds(1500));
        assert_eq!(clock.now().millisecond(), 500);
        clock.set(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(clock.unix(), 0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix() > 1_577_836_800);
    }
}
