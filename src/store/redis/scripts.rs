//! The login script's boundary, typed: its arguments go by name (one list, [`LoginArgs::pairs`],
//! from which `create.lua`'s `ARG` table is generated, so Rust and Lua cannot disagree on an
//! order), and its reply is parsed into [`LoginReply`], refusing anything it does not know.

use redis::{Script, ScriptInvocation};

use super::fields::{lua_prelude, to_hex};
use super::keys::Keys;
use crate::domain::{EndReason, Millis, NewSession, SessionId, TokenDigest};
use crate::store::{BlockingSession, LoginRules, StoreError};

/// What `create.lua` is called with.
pub(super) struct LoginArgs<'a> {
    pub rules: &'a LoginRules,
    pub keys: &'a Keys,
    pub id: SessionId,
    pub digest: &'a TokenDigest,
    pub session: &'a NewSession,
    /// On a cluster: no seat was free in the organisation's slot.
    pub seat_refused: bool,
}

/// The argument names, in `ARGV` order.
const LOGIN_ARGS: [&str; 17] = [
    "policy",
    "id",
    "digest",
    "user_id",
    "name",
    "organisation",
    "ip",
    "server",
    "roles",
    "timeout",
    "user_agent",
    "max_per_user",
    "seats",
    "assurance_level",
    "reauthenticate_by",
    "device",
    "seat_refused",
];

impl LoginArgs<'_> {
    /// Each argument with its name, in the order of [`LOGIN_ARGS`] (a unit test holds them
    /// to it).
    fn pairs(&self) -> [(&'static str, String); 17] {
        let s = self.session;
        let roles: Vec<&str> = s.roles.iter().map(|r| &**r).collect();
        [
            ("policy", self.rules.policy.name().to_string()),
            ("id", self.id.to_string()),
            ("digest", to_hex(&self.digest.0)),
            ("user_id", s.user_id.to_string()),
            ("name", s.name.to_string()),
            ("organisation", s.organisation.to_string()),
            ("ip", s.ip_address.to_string()),
            ("server", s.server_name.to_string()),
            (
                "roles",
                serde_json::to_string(&roles).expect("roles serialise"),
            ),
            ("timeout", s.timeout_seconds.to_string()),
            // `false` in Lua when absent (nil would end ARGV).
            (
                "user_agent",
                s.user_agent.as_deref().unwrap_or_default().to_string(),
            ),
            ("max_per_user", self.rules.max_per_user.to_string()),
            (
                "seats",
                self.rules.seats.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("assurance_level", s.assurance_level.to_string()),
            (
                "reauthenticate_by",
                s.reauthenticate_by
                    .map(|by| by.0.to_string())
                    .unwrap_or_default(),
            ),
            (
                "device",
                s.device
                    .as_deref()
                    .map(|d| serde_json::to_string(d).expect("a device serialises"))
                    .unwrap_or_default(),
            ),
            (
                "seat_refused",
                if self.seat_refused { "1" } else { "0" }.into(),
            ),
        ]
    }

    /// Completes `invocation` (the login script's, with its group's keys and the common
    /// arguments): the user's keys, the seat set on one Redis, and the login's arguments.
    pub fn invocation<'s>(&self, mut invocation: ScriptInvocation<'s>) -> ScriptInvocation<'s> {
        invocation
            .key(self.keys.user(&self.session.user_id))
            .key(self.keys.session(self.id));
        if self.keys.groups() == 1 {
            invocation.key(self.keys.organisation(&self.session.organisation));
        }
        for (_, value) in self.pairs() {
            invocation.arg(value);
        }
        invocation.arg(if self.session.user_agent.is_some() {
            "1"
        } else {
            "0"
        });
        invocation
    }
}

/// `create.lua`, after the prelude and its `ARG` table: `ARG.user_id` and so on, and
/// `ARG.has_user_agent`.
pub(super) fn login_script() -> Script {
    let names: Vec<String> = LOGIN_ARGS.iter().map(|n| format!("'{n}'")).collect();
    let header = format!(
        "local ARG = {{}}\nfor i, name in ipairs({{{}, 'has_user_agent'}}) do ARG[name] = ARGV[7 + i] end\n",
        names.join(", ")
    );
    Script::new(&format!(
        "{}{header}{}",
        lua_prelude(),
        include_str!("lua/create.lua")
    ))
}

/// What `create.lua` answers.
#[derive(Debug, PartialEq)]
pub(super) enum LoginReply {
    /// The policy refused it; the user's live sessions that stood in the way.
    Denied(Vec<BlockingSession>),
    SeatLimit,
    /// Made at Redis' time by the event `made_by` (its id), ending these sessions.
    Admitted {
        made_at: Millis,
        made_by: String,
        ended: Vec<(SessionId, EndReason)>,
        /// Where the user has no live session left: user, organisation, ... (as `seats.rs`
        /// releases them).
        vacated: Vec<String>,
    },
}

impl LoginReply {
    pub fn parse(reply: Vec<String>) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Unavailable(format!("Redis answered a login {what}"));
        let (status, rest) = reply.split_first().ok_or_else(|| bad("with nothing"))?;
        match status.as_str() {
            "seat-limit" => Ok(LoginReply::SeatLimit),
            "denied" => rest
                .chunks(5)
                .map(|c| {
                    Some(BlockingSession {
                        id: SessionId::parse(c.first()?)?,
                        ip_address: c.get(1)?.parse().ok()?,
                        server_name: c.get(2)?.as_str().into(),
                        organisation: c.get(3)?.as_str().into(),
                        holds_admin: c.get(4)? == "1",
                    })
                })
                .collect::<Option<Vec<_>>>()
                .map(LoginReply::Denied)
                .ok_or_else(|| bad("denied with an unreadable session")),
            "ok" => {
                let (made_at, rest) = rest.split_first().ok_or_else(|| bad("without a time"))?;
                let at = rest.iter().position(|s| s == "vacated");
                let (ended, vacated) =
                    rest.split_at(at.ok_or_else(|| bad("without what it vacated"))?);
                let (made_by, vacated) = vacated[1..]
                    .split_first()
                    .ok_or_else(|| bad("without its event"))?;
                let made_at = made_at
                    .parse()
                    .map(Millis)
                    .map_err(|_| bad("with a bad time"))?;
                let ended = ended
                    .chunks(2)
                    .map(|pair| {
                        let reason = match pair.first()?.as_str() {
                            "replaced" => EndReason::Replaced,
                            "evicted" => EndReason::Evicted,
                            _ => return None,
                        };
                        Some((SessionId::parse(pair.get(1)?)?, reason))
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("with an unreadable ended session"))?;
                Ok(LoginReply::Admitted {
                    made_at,
                    made_by: made_by.clone(),
                    ended,
                    vacated: vacated.to_vec(),
                })
            }
            other => Err(bad(&format!("with {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_go_in_the_order_of_their_names() {
        let keys = Keys::new("p:");
        let session = NewSession {
            user_id: "u".into(),
            name: "N".into(),
            organisation: "O".into(),
            ip_address: "10.0.0.1".parse().unwrap(),
            server_name: "S".into(),
            roles: vec![],
            user_agent: None,
            timeout_seconds: 60,
            device: None,
            assurance_level: 1,
            reauthenticate_by: None,
        };
        let rules = LoginRules::from(crate::domain::ConcurrentSessions::Allow);
        let args = LoginArgs {
            rules: &rules,
            keys: &keys,
            id: SessionId::generate(),
            digest: &TokenDigest([0; 32]),
            session: &session,
            seat_refused: false,
        };
        let names: Vec<&str> = args.pairs().iter().map(|(name, _)| *name).collect();
        assert_eq!(names, LOGIN_ARGS);
    }

    #[test]
    fn a_reply_it_does_not_know_is_refused() {
        let id = SessionId::generate().to_string();
        let ok = |v: &[&str]| LoginReply::parse(v.iter().map(|s| s.to_string()).collect());
        assert!(matches!(
            ok(&["ok", "5", "evicted", &id, "vacated", "5-1", "u", "O"]),
            Ok(LoginReply::Admitted { made_at: Millis(5), made_by, ended, vacated })
                if made_by == "5-1" && ended.len() == 1 && vacated == ["u", "O"]
        ));
        assert!(ok(&["ok", "5", "vanished", &id, "vacated", "5-1"]).is_err());
        assert!(ok(&["ok", "5", "vacated"]).is_err());
        assert!(ok(&["ok", "5", "evicted", &id]).is_err());
        assert!(ok(&["maybe"]).is_err());
        assert!(ok(&[]).is_err());
        assert_eq!(ok(&["seat-limit"]).unwrap(), LoginReply::SeatLimit);
    }
}
