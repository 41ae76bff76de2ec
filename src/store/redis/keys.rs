//! Every key sessiond keeps in Redis, spelled here and nowhere else: the Rust side builds them
//! with [`Keys`], and the Lua scripts with the functions [`lua`] puts in their prelude.
//!
//! Users are spread over [`Keys::groups`] groups by a hash of their user id; a session's id
//! carries its user's group in its last bits, so a token's selector alone leads to it. On one
//! Redis there is a single group and keys carry no tag; on a cluster, a group's keys carry
//! its hash tag (`{…}`), chosen so that the groups' slots lie evenly across the 16,384 and
//! every rule about a user (its sessions, its set, the events they make) runs in one script
//! on one slot. Under a prefix (several deployments may share one Redis):
//! - `s:<tag><id>`: a hash per session (its fields in `fields.rs`), outliving the session's
//!   expiry by a few minutes so that the reaper can end it and say so;
//! - `u:<tag><user id>`: the set of the user's session ids, for the login rule;
//! - `users<tag>`: the group's users (what listing loads and the reaper walks);
//! - `stopped<tag>` (a hash) and `stopped<tag>:order` (its entries by time): why the group's
//!   newest ended sessions' tokens stopped working;
//! - `log:events<tag>`: the group's capped stream of events;
//! - `o:<organisation>`: the organisation's seats (on a cluster, in a slot of their own);
//! - `events`: the channel of changes that keeps every node's replica current;
//! - `log:audit`: the capped stream of the audit trail;
//! - `wh:<event id>`: the claim on a webhook delivery.

use std::fmt::Display;
use std::sync::OnceLock;

use redis::cluster_routing::Slot;

use crate::domain::SessionId;

const SESSION: &str = "s:";
const USER: &str = "u:";
const USERS: &str = "users";
const ORGANISATION: &str = "o:";
const CHANGES: &str = "events";
const EVENT_LOG: &str = "log:events";
const AUDIT_LOG: &str = "log:audit";
const WEBHOOK: &str = "wh:";
const STOPPED: &str = "stopped";

/// How many groups users are spread over on a cluster: as many masters as this can share the
/// sessions evenly. A power of two, so that a session id's last bits name its group.
pub const CLUSTER_GROUPS: u32 = 64;

/// Redis Cluster's slots.
const SLOTS: u32 = 16_384;

/// The keys of one deployment (one prefix).
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    /// Each group's hash tag (`{…}`); one empty tag on a single Redis.
    tags: Vec<String>,
}

impl Keys {
    /// The keys of one Redis: one group, no tags.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            tags: vec![String::new()],
        }
    }

    /// The keys of a cluster: [`CLUSTER_GROUPS`] groups, each with its hash tag.
    pub fn clustered(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            tags: cluster_tags().to_vec(),
        }
    }

    pub fn groups(&self) -> u32 {
        self.tags.len() as u32
    }

    /// The group of a user: by a hash of its id (FNV-1a), the same on every node and release.
    pub fn group_of_user(&self, user_id: &str) -> u32 {
        let hash = user_id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        hash % self.groups()
    }

    /// The group a session id names (its last bits).
    pub fn group_of_session(&self, id: SessionId) -> u32 {
        (id.as_u128() as u32) % self.groups()
    }

    /// A new session id for a session of `user_id`: random, but for its last bits, which name
    /// the user's group.
    pub fn new_session_id(&self, user_id: &str) -> SessionId {
        let groups = u128::from(self.groups());
        let random = SessionId::generate().as_u128();
        SessionId::from_u128(random - random % groups + u128::from(self.group_of_user(user_id)))
    }

    fn tag(&self, group: u32) -> &str {
        &self.tags[group as usize % self.tags.len()]
    }

    /// What every script is given first: the prefix, the group's tag, the group and how many
    /// there are (with the channel and the clock, see `scripts.rs`).
    pub fn script_args(&self, group: u32) -> [String; 4] {
        [
            self.prefix.clone(),
            self.tag(group).to_string(),
            group.to_string(),
            self.groups().to_string(),
        ]
    }

    /// The group's own keys every script declares first, in this order.
    pub fn group_keys(&self, group: u32) -> [String; 4] {
        [
            self.users(group),
            self.stopped(group),
            format!("{}:order", self.stopped(group)),
            self.event_log(group),
        ]
    }

    pub fn session(&self, id: SessionId) -> String {
        let tag = self.tag(self.group_of_session(id));
        format!("{}{SESSION}{tag}{id}", self.prefix)
    }

    pub fn user(&self, user_id: &str) -> String {
        let tag = self.tag(self.group_of_user(user_id));
        format!("{}{USER}{tag}{user_id}", self.prefix)
    }

    pub fn users(&self, group: u32) -> String {
        format!("{}{USERS}{}", self.prefix, self.tag(group))
    }

    pub fn organisation(&self, organisation: &str) -> String {
        format!("{}{ORGANISATION}{organisation}", self.prefix)
    }

    pub fn changes(&self) -> String {
        format!("{}{CHANGES}", self.prefix)
    }

    pub fn event_log(&self, group: u32) -> String {
        format!("{}{EVENT_LOG}{}", self.prefix, self.tag(group))
    }

    pub fn audit_log(&self) -> String {
        format!("{}{AUDIT_LOG}", self.prefix)
    }

    pub fn webhook(&self, event_id: impl Display) -> String {
        format!("{}{WEBHOOK}{event_id}", self.prefix)
    }

    pub fn stopped(&self, group: u32) -> String {
        format!("{}{STOPPED}{}", self.prefix, self.tag(group))
    }

    /// A pattern matching every user's key (for `SCAN`, on one Redis).
    pub fn every_user(&self) -> String {
        format!("{}{USER}*", self.prefix)
    }

    /// The user id a user's key names.
    pub fn user_id<'a>(&self, key: &'a str) -> Option<&'a str> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix(USER)?;
        match self.tags.len() {
            1 => Some(rest),
            _ => Some(rest.split_once('}')?.1),
        }
    }
}

/// The hash tag of each cluster group: the first short name whose slot is the middle of the
/// group's share of the 16,384, so that the groups fall evenly on masters given even ranges.
fn cluster_tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let share = SLOTS / CLUSTER_GROUPS;
        let mut tags: Vec<Option<String>> = vec![None; CLUSTER_GROUPS as usize];
        let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut missing = tags.len();
        'search: for length in 1..=4u32 {
            for n in 0..alphabet.len().pow(length) {
                let name: String = (0..length)
                    .map(|i| char::from(alphabet[n / alphabet.len().pow(i) % alphabet.len()]))
                    .collect();
                for (group, tag) in tags.iter_mut().enumerate() {
                    let slot = Slot::new((group as u32 * share + share / 2) as u16);
                    if tag.is_none() && slot == Some(Slot::for_key(&name)) {
                        *tag = Some(name.clone());
                        missing -= 1;
                    }
                }
                if missing == 0 {
                    break 'search;
                }
            }
        }
        tags.into_iter()
            .map(|tag| format!("{{{}}}", tag.expect("four letters reach every slot")))
            .collect()
    })
}

/// The same layout for the scripts: the prefix, tag and group come first in `ARGV`, the group's
/// keys first in `KEYS` (see [`Keys::group_keys`]); `session_key`, `user_key` and
/// `session_id_of` build and read the keys of the group's sessions and users.
pub fn lua() -> String {
    format!(
        "local PREFIX, TAG, GROUP, GROUPS = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n\
         local USERS_KEY, STOPPED_KEY, STOPPED_ORDER_KEY, EVENT_LOG_KEY = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n\
         local function session_key(id) return PREFIX .. '{SESSION}' .. TAG .. id end\n\
         local function user_key(user) return PREFIX .. '{USER}' .. TAG .. user end\n\
         local function session_id_of(key) return string.sub(key, string.len(PREFIX) + {} + string.len(TAG) + 1) end\n",
        SESSION.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        for keys in [Keys::new("sessiond:"), Keys::clustered("sessiond:")] {
            assert_eq!(keys.user_id(&keys.user("ada:1")), Some("ada:1"));
            assert_eq!(keys.user_id(&keys.session(SessionId::generate())), None);
        }
    }

    #[test]
    fn a_users_sessions_and_keys_share_its_groups_slot() {
        let keys = Keys::clustered("p:");
        for user in ["ada", "bob", "{odd}", "", "ünïcode"] {
            let id = keys.new_session_id(user);
            let group = keys.group_of_user(user);
            assert_eq!(keys.group_of_session(id), group);
            let slot = Slot::for_key(keys.user(user));
            assert_eq!(Slot::for_key(keys.session(id)), slot);
            for key in keys.group_keys(group) {
                assert_eq!(Slot::for_key(key), slot, "{user}");
            }
        }
    }

    #[test]
    fn groups_lie_evenly_across_the_slots() {
        let keys = Keys::clustered("p:");
        for group in 0..CLUSTER_GROUPS {
            let middle = group * (SLOTS / CLUSTER_GROUPS) + SLOTS / CLUSTER_GROUPS / 2;
            assert_eq!(
                Slot::for_key(keys.users(group)),
                Slot::new(middle as u16).unwrap()
            );
        }
        let single = Keys::new("p:");
        assert_eq!(
            single.session(SessionId::from_u128(7)),
            format!("p:s:{}", SessionId::from_u128(7))
        );
        assert_eq!(single.users(0), "p:users");
        assert_eq!(single.stopped(0), "p:stopped");
        assert_eq!(single.event_log(0), "p:log:events");
    }
}
