//! Points in time as core sees them: whole seconds since the Unix epoch.
//!
//! Core never reads a clock. Callers pass `now` in; tests pass a fixed value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since 1970-01-01T00:00:00Z, the JWT `NumericDate` ([RFC 7519 §2]).
///
/// [RFC 7519 §2]: https://www.rfc-editor.org/rfc/rfc7519#section-2
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The given number of seconds after the epoch.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Converts a time read from a clock by the caller. Times before the epoch become the epoch.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        Self(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// This time plus `duration`, saturating at the end of time.
    #[must_use]
    pub const fn saturating_add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration.as_secs()))
    }

    /// This time minus `duration`, saturating at the epoch.
    #[must_use]
    pub const fn saturating_sub(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(duration.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_system_time_and_saturates() {
        let t = UnixTime::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(t.as_secs(), 1_700_000_000);
        assert_eq!(
            UnixTime::from_system_time(UNIX_EPOCH - Duration::from_secs(5)).as_secs(),
            0
        );
        assert_eq!(
            t.saturating_add(Duration::from_secs(10)).as_secs(),
            1_700_000_010
        );
        assert_eq!(
            UnixTime::from_secs(3)
                .saturating_sub(Duration::from_secs(10))
                .as_secs(),
            0
        );
        assert_eq!(
            UnixTime::from_secs(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .as_secs(),
            u64::MAX
        );
    }
}
