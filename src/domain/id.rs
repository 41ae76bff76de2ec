//! Session ids: random and opaque. A token begins with its session's id (the selector that
//! finds the session) followed by a separate 256-bit secret, so knowing an id grants nothing.

use std::fmt;

use serde::{Serialize, Serializer};

/// A 128-bit random id, written as a lowercase hyphenated UUID (version 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u128);

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self::from_random(bytes)
    }

    /// The id made of 16 random bytes, marked as version 4 and the RFC 9562 variant so that it
    /// reads as what it is.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        SessionId(u128::from_be_bytes(bytes))
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }

    pub fn from_u128(value: u128) -> Self {
        SessionId(value)
    }

    /// Accepts exactly the form [`fmt::Display`] writes: 36 characters, lowercase hex, hyphens
    /// at 8-4-4-4-12. Anything else names no session.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            value = (value << 4) | u128::from(digit);
        }
        Some(SessionId(value))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for _ in 0..100 {
            let id = SessionId::generate();
            let text = id.to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(&text[14..15], "4", "version nibble");
            assert_eq!(SessionId::parse(&text), Some(id));
        }
    }

    #[test]
    fn rejects_every_other_form() {
        let id = SessionId::generate().to_string();
        for bad in [
            "",
            "current",
            &id[..35],
            &format!("{id}0"),
            &id.to_uppercase(),
            &id.replace('-', ""),
            &format!("{{{}}}", &id[..34]),
            "zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz",
            "0000000-00000-4000-8000-000000000000",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_distinct() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
    }
}
