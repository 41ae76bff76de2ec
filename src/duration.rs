//! Durations as the Session Management screen writes them, for the terminal: the same words as
//! the console's `format.js` (both are tested against `tests/console/durations.json`).

/// "53 seconds", "30 minutes, 0 seconds", "2 hours, 5 minutes", "3 days, 4 hours".
pub fn format_duration(seconds: u64) -> String {
    fn unit(n: u64, word: &str) -> String {
        format!("{n} {word}{}", if n == 1 { "" } else { "s" })
    }
    match seconds {
        s if s < 60 => unit(s, "second"),
        s if s < 3600 => format!("{}, {}", unit(s / 60, "minute"), unit(s % 60, "second")),
        s if s < 86_400 => format!(
            "{}, {}",
            unit(s / 3600, "hour"),
            unit(s % 3600 / 60, "minute")
        ),
        s => format!(
            "{}, {}",
            unit(s / 86_400, "day"),
            unit(s % 86_400 / 3600, "hour")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_the_console_does() {
        let cases: Vec<(u64, String)> =
            serde_json::from_str(include_str!("../tests/console/durations.json")).unwrap();
        assert!(cases.len() > 10);
        for (seconds, text) in cases {
            assert_eq!(format_duration(seconds), text, "{seconds} seconds");
        }
    }
}
