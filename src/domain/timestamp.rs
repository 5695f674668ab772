//! Timestamps as the protocol writes them: RFC 3339, UTC, milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// Milliseconds since the Unix epoch, as storage keeps them.
    pub fn as_millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This moment minus `age`, or the earliest representable time if that is before it.
    pub fn earlier_by(self, age: std::time::Duration) -> Self {
        let earlier = chrono::TimeDelta::from_std(age)
            .ok()
            .and_then(|age| self.0.checked_sub_signed(age));
        Self(earlier.unwrap_or(DateTime::<Utc>::MIN_UTC))
    }

    /// This moment plus `age`, or the latest representable time if that is after it.
    pub fn later_by(self, age: std::time::Duration) -> Self {
        let later = chrono::TimeDelta::from_std(age)
            .ok()
            .and_then(|age| self.0.checked_add_signed(age));
        Self(later.unwrap_or(DateTime::<Utc>::MAX_UTC))
    }

    /// `None` for a value outside the range chrono can represent (hundreds of millennia away).
    pub fn from_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|ts| Self(ts.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialize_as_rfc3339_utc_with_milliseconds() {
        let ts = Timestamp(DateTime::from_timestamp_millis(1_700_000_000_123).unwrap());
        assert_eq!(
            serde_json::to_string(&ts).unwrap(),
            "\"2023-11-14T22:13:20.123Z\""
        );
    }

    #[test]
    fn timestamps_read_back_as_written() {
        let ts = Timestamp(DateTime::from_timestamp_millis(1_700_000_000_123).unwrap());
        let text = serde_json::to_string(&ts).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), ts);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
