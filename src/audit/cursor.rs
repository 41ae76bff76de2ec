//! The cursor of a page of the trail: an opaque text holding the position after which the next page starts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub(super) fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{position}"))
}

/// The position a cursor holds: a number (this process's trail) or an entry id (the store's).
pub(super) fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let position = std::str::from_utf8(&bytes).ok()?.strip_prefix('a')?;
    let well_formed = !position.is_empty()
        && position.len() <= 40
        && position.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    well_formed.then(|| position.to_string())
}
