//! A session's hash in Redis: its fields, the prelude every script starts with, and reading a
//! session back from what Redis returns.

use std::net::IpAddr;
use std::sync::Arc;

use redis::Script;

use super::{keys, EVENT_LOG_LENGTH, EXPIRED_KEPT, STOPPED_KEPT};
use crate::domain::session::ADMIN_ROLE;
use crate::domain::{Millis, SavedSession, SessionData, SessionId, TokenDigest};

/// A session's hash in Redis: what each field holds and its name there (one letter, because
/// every hash repeats its field names), in the order a session is returned after its id. This
/// is the only place field names are spelled: the Lua scripts get them from [`lua_prelude`].
///
/// A field absent from a hash is read as its login's default: `authenticated_at` the creation,
/// `assurance_level` 1, `reauthenticate_by` none, `last_ip_address` the login's address (so
/// most hashes do without it), `device` none.
pub(super) const FIELDS: [(&str, &str); 16] = [
    ("user_id", "u"),
    ("name", "n"),
    ("organisation", "o"),
    ("ip_address", "i"),
    ("server_name", "v"),
    ("roles", "r"),
    ("user_agent", "a"),
    ("timeout_seconds", "t"),
    ("created_at", "c"),
    ("last_active_at", "l"),
    ("digest", "d"),
    ("authenticated_at", "q"),
    ("assurance_level", "g"),
    ("reauthenticate_by", "x"),
    ("last_ip_address", "p"),
    ("device", "e"),
];

/// The Redis name of the field holding `meaning`.
pub(super) fn field(meaning: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(m, _)| *m == meaning)
        .map(|(_, name)| *name)
        .expect("a field of the table")
}

/// What every script starts with: for each field of [`FIELDS`], its Redis name as a local
/// `F_<MEANING>` and its position in a returned row as `<MEANING>`; `ROW`, the names in row
/// order; then reading a session and the expiry rule of [`crate::domain::session::expires_at`]
/// in Lua. Plain locals, because a script runs its prelude on every call.
pub fn lua_prelude() -> String {
    let upper = |meaning: &str| meaning.to_uppercase();
    let mut lines = Vec::new();
    for (i, (meaning, name)) in FIELDS.iter().enumerate() {
        lines.push(format!(
            "local F_{0}, {0} = '{name}', {1}",
            upper(meaning),
            i + 1
        ));
    }
    let row: Vec<String> = FIELDS
        .iter()
        .map(|(m, _)| format!("F_{}", upper(m)))
        .collect();
    lines.push(format!("local ROW = {{{}}}", row.join(", ")));
    lines.push(format!(
        "local EVENT_LOG_LENGTH, EXPIRED_KEPT_MS, ADMIN_ROLE, STOPPED_KEPT = {EVENT_LOG_LENGTH}, {}, '{ADMIN_ROLE}', {STOPPED_KEPT}",
        EXPIRED_KEPT.as_millis()
    ));
    format!(
        "{}\n{}{}",
        lines.join("\n"),
        keys::lua(),
        include_str!("lua/prelude.lua")
    )
}

pub(super) fn script(body: &str) -> Script {
    Script::new(&format!("{}{body}", lua_prelude()))
}

/// The Redis names of a row's fields, in order.
pub(super) fn field_names() -> [&'static str; FIELDS.len()] {
    FIELDS.map(|(_, name)| name)
}

/// A session from its id followed by its [`FIELDS`]; `None` if anything is off.
pub(super) fn parse(row: &[Option<String>]) -> Option<SavedSession> {
    if row.len() != FIELDS.len() + 1 {
        return None;
    }
    let get = |meaning: &str| {
        let at = FIELDS.iter().position(|(m, _)| *m == meaning)?;
        row[at + 1].as_deref()
    };
    let (data, last_active_at) = session_of(row[0].as_deref()?, get)?;
    Some(SavedSession {
        digest: TokenDigest(from_hex(get("digest")?)?),
        data,
        last_active_at,
    })
}

/// A session's data and last activity from its id and `get`, which gives each field by its
/// meaning in [`FIELDS`].
pub(super) fn session_of<'a>(
    id: &str,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<(SessionData, Millis)> {
    let ip_address = get("ip_address")?.parse::<IpAddr>().ok()?;
    let created_at = Millis(get("created_at")?.parse().ok()?);
    // An optional field: absent is `None`, present but unreadable is no session.
    fn optional<T: std::str::FromStr>(value: Option<&str>) -> Option<Option<T>> {
        value.map_or(Some(None), |v| v.parse().ok().map(Some))
    }
    let data = SessionData {
        id: SessionId::parse(id)?,
        user_id: get("user_id")?.into(),
        name: get("name")?.into(),
        organisation: get("organisation")?.into(),
        ip_address,
        server_name: get("server_name")?.into(),
        roles: roles_of(get("roles")?)?,
        user_agent: get("user_agent").map(Into::into),
        device: match get("device") {
            None => None,
            Some(json) => Some(Arc::new(serde_json::from_str(json).ok()?)),
        },
        timeout_seconds: get("timeout_seconds")?.parse().ok()?,
        created_at,
        authenticated_at: optional(get("authenticated_at"))?.map_or(created_at, Millis),
        assurance_level: optional(get("assurance_level"))?.unwrap_or(1),
        reauthenticate_by: optional(get("reauthenticate_by"))?.map(Millis),
        last_ip_address: optional(get("last_ip_address"))?.unwrap_or(ip_address),
    };
    Some((data, Millis(get("last_active_at")?.parse().ok()?)))
}

/// Roles as the scripts keep them (a JSON array).
pub(super) fn roles_of(json: &str) -> Option<Arc<[Arc<str>]>> {
    let roles: Vec<String> = serde_json::from_str(json).ok()?;
    Some(roles.iter().map(|r| r.as_str().into()).collect())
}

pub(super) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0xab; 32];
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn a_row_with_a_missing_or_bad_field_is_no_session() {
        let good: Vec<Option<String>> = [
            "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a",
            "u",
            "N",
            "Default",
            "10.0.0.1",
            "LOCAL",
            "[\"admin\"]",
            "ua",
            "1800",
            "1000",
            "2000",
            &"ab".repeat(32),
        ]
        .into_iter()
        .map(Some)
        .chain([None, None, None, None, None])
        .map(|s| s.map(str::to_string))
        .collect();
        let saved = parse(&good).unwrap();
        assert_eq!(
            saved.data.authenticated_at,
            Millis(1000),
            "the creation, when absent"
        );
        assert_eq!(saved.data.assurance_level, 1);
        assert!(saved.data.has_role("admin"));
        assert_eq!(saved.last_active_at, Millis(2000));
        for i in [0, 1, 4, 6, 8, 9, 11] {
            let mut bad = good.clone();
            bad[i] = Some("x".into());
            if i == 1 {
                bad[i] = None;
            }
            assert!(parse(&bad).is_none(), "field {i}");
        }
        let mut no_agent = good.clone();
        no_agent[7] = None;
        assert!(parse(&no_agent).unwrap().data.user_agent.is_none());
    }
}
