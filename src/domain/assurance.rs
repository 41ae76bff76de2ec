//! How long a session of each assurance level may last (NIST SP 800-63B-4): at AAL2 an hour
//! idle and 24 hours from its authentication, at AAL3 15 minutes and 12 hours — whatever the
//! service's own idle timeout and maximum lifetime.

use super::Millis;

/// The highest assurance level.
pub const MAX_LEVEL: u8 = 3;

/// `SESSIOND_ASSURANCE_TIMEOUTS`: for levels 2 and 3, the longest idle timeout and the longest
/// time since the last authentication, in seconds. Level 1 has no limits of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssuranceTimeouts {
    /// `(idle, since authentication)` for levels 2 and 3; `None`: no limit for that level.
    levels: [Option<(u32, u64)>; 2],
}

impl Default for AssuranceTimeouts {
    fn default() -> Self {
        AssuranceTimeouts {
            levels: [Some((3_600, 86_400)), Some((900, 43_200))],
        }
    }
}

impl AssuranceTimeouts {
    /// `2=3600/86400,3=900/43200`; a level left out has no limit of its own (`none`: neither).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut levels = [None, None];
        if text == "none" {
            return Ok(AssuranceTimeouts { levels });
        }
        for part in text.split(',').map(str::trim) {
            let bad = || format!("{part:?} is not LEVEL=IDLE/MAXIMUM (like 2=3600/86400)");
            let (level, limits) = part.split_once('=').ok_or_else(bad)?;
            let (idle, max) = limits.split_once('/').ok_or_else(bad)?;
            let slot = match level.trim() {
                "2" => 0,
                "3" => 1,
                other => return Err(format!("level {other:?}: only levels 2 and 3 have limits")),
            };
            let idle: u32 = idle.trim().parse().map_err(|_| bad())?;
            let max: u64 = max.trim().parse().map_err(|_| bad())?;
            if idle == 0 || max == 0 || u64::from(idle) > max {
                return Err(format!(
                    "{part:?}: both limits must be positive, the idle one no longer than the maximum"
                ));
            }
            levels[slot] = Some((idle, max));
        }
        Ok(AssuranceTimeouts { levels })
    }

    fn limits(&self, level: u8) -> Option<(u32, u64)> {
        match level {
            2 | 3 => self.levels[usize::from(level - 2)],
            _ => None,
        }
    }

    /// The idle timeout a session of `level` gets when it asked for `timeout_seconds`.
    pub fn idle_timeout(&self, level: u8, timeout_seconds: u32) -> u32 {
        self.limits(level)
            .map_or(timeout_seconds, |(idle, _)| timeout_seconds.min(idle))
    }

    /// When an authentication of `level` at `at` is too old: the session ends then.
    pub fn reauthenticate_by(&self, level: u8, at: Millis) -> Option<Millis> {
        self.limits(level).map(|(_, max)| at.plus_seconds(max))
    }

    /// As the setting is written.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .levels
            .iter()
            .zip(2..)
            .filter_map(|(limits, level)| limits.map(|(i, m)| format!("{level}={i}/{m}")))
            .collect();
        match parts.is_empty() {
            true => "none".into(),
            false => parts.join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_nists() {
        let t = AssuranceTimeouts::default();
        assert_eq!(AssuranceTimeouts::parse("2=3600/86400,3=900/43200"), Ok(t));
        assert_eq!(t.describe(), "2=3600/86400,3=900/43200");
        assert_eq!(t.idle_timeout(1, 7_200), 7_200);
        assert_eq!(t.idle_timeout(2, 7_200), 3_600);
        assert_eq!(t.idle_timeout(3, 600), 600);
        assert_eq!(t.reauthenticate_by(1, Millis(0)), None);
        assert_eq!(t.reauthenticate_by(3, Millis(0)), Some(Millis(43_200_000)));
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            "1=60/60", "2=60", "2=0/60", "2=120/60", "4=1/2", "2=a/b", "",
        ] {
            assert!(AssuranceTimeouts::parse(bad).is_err(), "{bad:?}");
        }
        let only_three = AssuranceTimeouts::parse("3=60/600").unwrap();
        assert_eq!(only_three.idle_timeout(2, 7_200), 7_200);
        assert_eq!(AssuranceTimeouts::parse("none").unwrap().describe(), "none");
    }
}
