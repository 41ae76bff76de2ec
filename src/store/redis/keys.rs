//! Every key sessiond keeps in Redis, spelled here and nowhere else: the Rust side builds them
//! with [`Keys`], and the Lua scripts with the functions [`lua`] puts in their prelude. Under a
//! prefix (several deployments may share one Redis):
//! - `s:{id}`: a hash per session (its fields in `fields.rs`), outliving the session's expiry by
//!   a few minutes so that the reaper can end it and say so;
//! - `u:{user id}`: the set of the user's session ids, for the login rule;
//! - `o:{organisation}`: the organisation's users, for its seats;
//! - `events`: the channel of changes that keeps every node's replica current;
//! - `log:events`, `log:audit`: capped streams of events and of the audit trail;
//! - `wh:{event id}`: the claim on a webhook delivery;
//! - `stopped` (a hash) and `stopped:order` (its entries by time): why the newest ended
//!   sessions' tokens stopped working.

use std::fmt::Display;

const SESSION: &str = "s:";
const USER: &str = "u:";
const ORGANISATION: &str = "o:";
const CHANGES: &str = "events";
const EVENT_LOG: &str = "log:events";
const AUDIT_LOG: &str = "log:audit";
const WEBHOOK: &str = "wh:";
const STOPPED: &str = "stopped";

/// The keys of one deployment (one prefix).
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// What the scripts are given to build keys with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn session(&self, id: impl Display) -> String {
        format!("{}{SESSION}{id}", self.prefix)
    }

    pub fn user(&self, user_id: &str) -> String {
        format!("{}{USER}{user_id}", self.prefix)
    }

    pub fn organisation(&self, organisation: &str) -> String {
        format!("{}{ORGANISATION}{organisation}", self.prefix)
    }

    pub fn changes(&self) -> String {
        format!("{}{CHANGES}", self.prefix)
    }

    pub fn event_log(&self) -> String {
        format!("{}{EVENT_LOG}", self.prefix)
    }

    pub fn audit_log(&self) -> String {
        format!("{}{AUDIT_LOG}", self.prefix)
    }

    pub fn webhook(&self, event_id: &str) -> String {
        format!("{}{WEBHOOK}{event_id}", self.prefix)
    }

    pub fn stopped(&self) -> String {
        format!("{}{STOPPED}", self.prefix)
    }

    /// A pattern matching every session's key (for `SCAN`).
    pub fn every_session(&self) -> String {
        format!("{}{SESSION}*", self.prefix)
    }

    /// A pattern matching every user's key (for `SCAN`).
    pub fn every_user(&self) -> String {
        format!("{}{USER}*", self.prefix)
    }

    /// The session id a session's key names.
    pub fn session_id<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(SESSION)
    }

    /// The user id a user's key names.
    pub fn user_id<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(USER)
    }
}

/// The same layout for the scripts: `session_key`, `user_key`, `session_id_of`, `EVENT_LOG`
/// and `STOPPED`, each taking the prefix the script is given.
pub fn lua() -> String {
    format!(
        "local function session_key(prefix, id) return prefix .. '{SESSION}' .. id end\n\
         local function user_key(prefix, user) return prefix .. '{USER}' .. user end\n\
         local function session_id_of(prefix, key) return string.sub(key, string.len(prefix) + {} + 1) end\n\
         local EVENT_LOG, STOPPED = '{EVENT_LOG}', '{STOPPED}'\n",
        SESSION.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        let keys = Keys::new("sessiond:");
        assert_eq!(keys.session_id(&keys.session("abc")), Some("abc"));
        assert_eq!(keys.user_id(&keys.user("ada:1")), Some("ada:1"));
        assert_eq!(keys.session_id(&keys.user("abc")), None);
    }
}
