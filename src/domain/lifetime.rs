//! How long a room keeps its messages when its creator asked for disappearing messages.

use std::time::Duration;

use super::{ErrorCode, Invalid};

const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Between one second and a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLifetime(Duration);

impl MessageLifetime {
    pub fn from_seconds(seconds: u64) -> Result<Self, Invalid> {
        if !(1..=MAX_SECONDS).contains(&seconds) {
            return Err(Invalid::new(
                ErrorCode::InvalidLifetime,
                format!("expire_after_seconds must be between 1 and {MAX_SECONDS} (a year), not {seconds}"),
            ));
        }
        Ok(Self(Duration::from_secs(seconds)))
    }

    /// As storage keeps it; `None` for a stored value out of range.
    pub fn from_millis(millis: i64) -> Option<Self> {
        let seconds = u64::try_from(millis / 1000).ok()?;
        Self::from_seconds(seconds).ok()
    }

    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_more_than_a_year_are_rejected() {
        assert_eq!(
            MessageLifetime::from_seconds(0).unwrap_err().code,
            ErrorCode::InvalidLifetime
        );
        assert!(MessageLifetime::from_seconds(MAX_SECONDS + 1).is_err());
        assert!(MessageLifetime::from_seconds(86_400).is_ok());
    }

    #[test]
    fn a_lifetime_round_trips_through_storage() {
        let day = MessageLifetime::from_seconds(86_400).unwrap();
        assert_eq!(MessageLifetime::from_millis(day.as_millis()), Some(day));
    }
}
