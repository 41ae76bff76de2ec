//! Wall-clock time as Unix milliseconds: what every expiry rule is computed in.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(since.as_millis() as u64)
    }

    pub fn plus_seconds(self, seconds: u64) -> Self {
        Millis(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    /// Whole seconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn seconds_since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0) / 1000
    }
}

/// Serialised as RFC 3339 in UTC with whole seconds, e.g. `2026-11-27T23:00:00Z`.
impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at = DateTime::from_timestamp((self.0 / 1000) as i64, 0).unwrap_or_default();
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

/// Read back from what [`Serialize`] writes (any RFC 3339 time).
impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let at = DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(Millis(at.timestamp_millis().max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_rfc3339_utc_seconds() {
        let at = Millis(1_795_820_400_999);
        assert_eq!(
            serde_json::to_string(&at).unwrap(),
            "\"2026-11-27T23:00:00Z\""
        );
    }

    #[test]
    fn seconds_since_never_goes_negative() {
        assert_eq!(Millis(5_000).seconds_since(Millis(1_500)), 3);
        assert_eq!(Millis(1_000).seconds_since(Millis(9_000)), 0);
    }
}
