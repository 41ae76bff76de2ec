//! What a text field may hold: no control characters or line separators (they forge lines in
//! logs and terminals, and in files read by tools that split on Unicode's line breaks) and no
//! invisible characters that reorder or hide text (U+202E and friends make "Ada Admin"
//! display as something else in the console and the CLI).

use std::sync::Arc;

/// Invisible format characters refused in every text field: bidirectional embeddings,
/// overrides, isolates and marks, zero-width space, word joiner and invisible operators, the
/// byte-order mark, soft hyphen, Mongolian vowel separator and interlinear annotation marks;
/// and the line and paragraph separators (U+2028, U+2029), which end a line for JavaScript
/// and other Unicode-aware readers.
/// Zero-width joiner and non-joiner (U+200C, U+200D) stay allowed: Persian and Indic names and
/// emoji sequences need them, and they reorder nothing.
const INVISIBLE: [(char, char); 10] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200B}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

/// Whether `c` may not appear in a text field.
pub fn forbidden(c: char) -> bool {
    c.is_control()
        || INVISIBLE
            .iter()
            .any(|&(low, high)| (low..=high).contains(&c))
}

/// A text field of 1..=`max` characters without forbidden ones, or why not, naming `field`.
pub fn checked(field: &str, value: &str, max: usize) -> Result<Arc<str>, String> {
    check(field, value, max)?;
    Ok(value.into())
}

/// [`checked`], without making a copy.
pub fn check(field: &str, value: &str, max: usize) -> Result<(), String> {
    let count = if value.is_ascii() {
        value.len()
    } else {
        value.chars().count()
    };
    if count == 0 {
        return Err(format!("{field}: must not be empty"));
    }
    if count > max {
        return Err(format!(
            "{field}: at most {max} characters are allowed, got {count}"
        ));
    }
    refuse_forbidden(field, value)
}

/// `Err` naming `field` and the first forbidden character, if `value` has one.
pub fn refuse_forbidden(field: &str, value: &str) -> Result<(), String> {
    if value.is_ascii() && !value.bytes().any(|b| b.is_ascii_control()) {
        return Ok(());
    }
    match value.chars().find(|&c| forbidden(c)) {
        None => Ok(()),
        Some(c) if c.is_control() => Err(format!("{field}: control characters are not allowed")),
        Some(c @ ('\u{2028}' | '\u{2029}')) => Err(format!(
            "{field}: the line separator U+{:04X} is not allowed",
            u32::from(c)
        )),
        Some(c) => Err(format!(
            "{field}: the invisible character U+{:04X} is not allowed",
            u32::from(c)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_controls_and_text_reordering_characters() {
        for bad in [
            "a\nb",
            "Ada\u{202E}nimdA",
            "forged\u{2028}line",
            "forged\u{2029}paragraph",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "iso\u{2066}late",
            "mark\u{200F}",
        ] {
            assert!(checked("name", bad, 256).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keeps_real_names_in_every_script() {
        for good in [
            "Teresa Pringle",
            "Élodie Durand",
            "محمد",
            "می\u{200C}خواهم",
            "👨\u{200D}👩\u{200D}👧",
            "李小龍",
        ] {
            assert!(checked("name", good, 256).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn names_the_character_it_refuses() {
        let error = checked("name", "Ada\u{202E}", 256).unwrap_err();
        assert!(error.contains("U+202E"), "{error}");
    }
}
