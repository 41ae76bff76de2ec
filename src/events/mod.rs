//! Every change to the sessions as an event: a session created, a session ended (and why), a
//! login denied. Stores emit them with the change itself (the memory store under the user's
//! lock, the Redis store inside its scripts), so a session's events are in order everywhere.
//! Each node keeps the latest in a [`Hub`], which `GET /events`, webhooks and the console read.

mod feed;
mod hub;
pub mod readers;
mod schema;

use std::sync::{Arc, OnceLock};

use compact_str::CompactString;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use utoipa::ToSchema;

pub use feed::{feed, Filter, Item};
pub use hub::{Hub, Replay, HUB_CAPACITY};
pub use readers::Readers;
pub use schema::{EventMessage, StreamMessage};

use crate::domain::{
    Device, EndReason, Millis, Scope, Session, SessionData, SessionId, SessionRecord,
};

/// An event's id: the time it was numbered at (ms) and a sequence within that millisecond,
/// written `ms-seq` (the form Redis stream ids take). Later events have greater ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    /// An id as written by [`fmt::Display`], or its time alone (`ms`, read as `ms-0`, as
    /// Redis reads one: `0` is before every event); nothing else.
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 19 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        Some(EventId {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }

    /// The id after `self` for an event at `time`: never smaller, whatever the clock did.
    pub fn next(self, time: Millis) -> Self {
        if time.0 > self.ms {
            EventId { ms: time.0, seq: 0 }
        } else {
            EventId {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What an event says happened. Events are kept (16,384 of them) long after the request that
/// made them, so they hold their texts inline (`CompactString`: no allocation up to 24 bytes)
/// rather than sharing the request's: an event is about one allocation, made and freed by
/// whoever numbers it.
#[derive(Clone, Debug)]
pub enum Change {
    Created(CreatedSession),
    Ended(Ended),
    Denied(Denied),
    Amended(Amended),
}

/// A session that was created, as its event keeps it.
#[derive(Clone, Debug)]
pub struct CreatedSession {
    pub id: SessionId,
    pub user_id: CompactString,
    pub name: CompactString,
    pub organisation: CompactString,
    pub ip_address: IpAddr,
    pub server_name: CompactString,
    pub roles: Box<[CompactString]>,
    pub user_agent: Option<Box<str>>,
    pub device: Option<Arc<Device>>,
    pub timeout_seconds: u32,
    pub created_at: Millis,
    pub authenticated_at: Millis,
    pub assurance_level: u8,
    pub reauthenticate_by: Option<Millis>,
    pub last_ip_address: IpAddr,
    pub last_active_at: Millis,
    pub expires_at: Millis,
    pub holds_admin: bool,
}

impl CreatedSession {
    pub fn of(record: &SessionRecord) -> Self {
        let data = &record.data;
        CreatedSession {
            id: data.id,
            user_id: CompactString::from(&*data.user_id),
            name: CompactString::from(&*data.name),
            organisation: CompactString::from(&*data.organisation),
            ip_address: data.ip_address,
            server_name: CompactString::from(&*data.server_name),
            roles: data
                .roles
                .iter()
                .map(|r| CompactString::from(&**r))
                .collect(),
            user_agent: data.user_agent.as_deref().map(Into::into),
            device: data.device.clone(),
            timeout_seconds: data.timeout_seconds,
            created_at: data.created_at,
            authenticated_at: data.authenticated_at,
            assurance_level: data.assurance_level,
            reauthenticate_by: data.reauthenticate_by,
            last_ip_address: data.last_ip_address,
            last_active_at: record.last_active_at,
            expires_at: record.expires_at,
            holds_admin: data.holds_admin(),
        }
    }

    /// The session as a store would give it, to be shown as the API shows sessions.
    fn record(&self) -> SessionRecord {
        SessionRecord {
            data: SessionData {
                id: self.id,
                user_id: self.user_id.as_str().into(),
                name: self.name.as_str().into(),
                organisation: self.organisation.as_str().into(),
                ip_address: self.ip_address,
                server_name: self.server_name.as_str().into(),
                roles: self.roles.iter().map(|r| r.as_str().into()).collect(),
                user_agent: self.user_agent.as_deref().map(Into::into),
                device: self.device.clone(),
                timeout_seconds: self.timeout_seconds,
                created_at: self.created_at,
                authenticated_at: self.authenticated_at,
                assurance_level: self.assurance_level,
                reauthenticate_by: self.reauthenticate_by,
                last_ip_address: self.last_ip_address,
            },
            last_active_at: self.last_active_at,
            expires_at: self.expires_at,
        }
    }
}

/// A session that ended, and why.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = SessionEndedData)]
pub struct Ended {
    #[schema(value_type = String)]
    pub id: SessionId,
    #[schema(value_type = String)]
    pub user_id: CompactString,
    #[schema(value_type = String)]
    pub organisation: CompactString,
    #[schema(value_type = String)]
    pub server_name: CompactString,
    pub reason: EndReason,
    #[serde(skip)]
    pub holds_admin: bool,
}

impl Ended {
    pub fn of(data: &SessionData, reason: EndReason) -> Self {
        Ended {
            id: data.id,
            user_id: CompactString::from(&*data.user_id),
            organisation: CompactString::from(&*data.organisation),
            server_name: CompactString::from(&*data.server_name),
            reason,
            holds_admin: data.holds_admin(),
        }
    }
}

/// A live session changed: a new token, a new authentication, or another client address.
#[derive(Clone, Debug, Serialize)]
pub struct Amended {
    pub id: SessionId,
    pub user_id: CompactString,
    #[serde(flatten)]
    pub what: Amendment,
    #[serde(skip)]
    pub organisation: CompactString,
    #[serde(skip)]
    pub holds_admin: bool,
}

/// What changed, as the event's type and the rest of its data say it.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub enum Amendment {
    Rotated {},
    Reauthenticated { assurance_level: u8 },
    IpChanged { from: IpAddr, to: IpAddr },
}

impl Amended {
    pub fn of(data: &SessionData, what: Amendment) -> Self {
        Amended {
            id: data.id,
            user_id: CompactString::from(&*data.user_id),
            what,
            organisation: CompactString::from(&*data.organisation),
            holds_admin: data.holds_admin(),
        }
    }

    pub fn kind(&self) -> EventType {
        match self.what {
            Amendment::Rotated {} => EventType::SessionRotated,
            Amendment::Reauthenticated { .. } => EventType::SessionReauthenticated,
            Amendment::IpChanged { .. } => EventType::SessionIpChanged,
        }
    }
}

/// Why a login was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DenyReason {
    /// The concurrent-session policy: the user is on from another IP address.
    OtherIp,
    /// Every seat of the organisation is taken.
    SeatLimit,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::OtherIp => "other-ip",
            DenyReason::SeatLimit => "seat-limit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [DenyReason::OtherIp, DenyReason::SeatLimit]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A login that was refused.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = LoginDeniedData)]
pub struct Denied {
    #[schema(value_type = String)]
    pub user_id: CompactString,
    #[schema(value_type = String)]
    pub organisation: CompactString,
    #[schema(value_type = String)]
    pub ip_address: IpAddr,
    pub reason: DenyReason,
    #[serde(skip)]
    pub holds_admin: bool,
}

/// The kinds of event, as `type` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    SessionCreated,
    SessionEnded,
    LoginDenied,
    SessionRotated,
    SessionReauthenticated,
    SessionIpChanged,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::LoginDenied,
        EventType::SessionRotated,
        EventType::SessionReauthenticated,
        EventType::SessionIpChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session-created",
            EventType::SessionEnded => "session-ended",
            EventType::LoginDenied => "login-denied",
            EventType::SessionRotated => "session-rotated",
            EventType::SessionReauthenticated => "session-reauthenticated",
            EventType::SessionIpChanged => "session-ip-changed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One event, numbered.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: EventId,
    pub time: Millis,
    pub change: Change,
    /// Its JSON, made once for every reader and webhook that sends it.
    json: OnceLock<Box<str>>,
}

impl Event {
    pub fn kind(&self) -> EventType {
        match &self.change {
            Change::Created(_) => EventType::SessionCreated,
            Change::Ended(_) => EventType::SessionEnded,
            Change::Denied(_) => EventType::LoginDenied,
            Change::Amended(amended) => amended.kind(),
        }
    }

    /// Whether an administrator of `scope` may see it: the rule of the session list.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        match &self.change {
            Change::Created(created) => scope.admits(&created.organisation, created.holds_admin),
            Change::Ended(ended) => scope.admits(&ended.organisation, ended.holds_admin),
            Change::Denied(denied) => scope.admits(&denied.organisation, denied.holds_admin),
            Change::Amended(amended) => scope.admits(&amended.organisation, amended.holds_admin),
        }
    }

    /// The event as JSON, as the stream and webhooks send it.
    pub fn new(id: EventId, time: Millis, change: Change) -> Self {
        Event {
            id,
            time,
            change,
            json: OnceLock::new(),
        }
    }

    /// The event as JSON, made on first use.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| self.to_json().into_boxed_str())
    }

    fn to_json(&self) -> String {
        match &self.change {
            Change::Created(created) => {
                self.message(Session::view(created.record(), self.time, None))
            }
            Change::Ended(ended) => self.message(ended),
            Change::Denied(denied) => self.message(denied),
            Change::Amended(amended) => self.message(amended),
        }
    }

    fn message<D: Serialize>(&self, data: D) -> String {
        serde_json::to_string(&Wire {
            id: self.id.to_string(),
            kind: self.kind(),
            time: self.time,
            data,
        })
        .expect("an event always serialises")
    }
}

/// An event as it is written ([`EventMessage`] describes it), with the data of its type.
#[derive(Serialize)]
struct Wire<D> {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    time: Millis,
    data: D,
}

/// A denied login, for tests of what carries events.
#[cfg(test)]
pub(crate) fn denied() -> Change {
    Change::Denied(Denied {
        user_id: "u".into(),
        organisation: "A".into(),
        ip_address: "10.0.0.1".parse().unwrap(),
        reason: DenyReason::OtherIp,
        holds_admin: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_what_they_write_and_nothing_else() {
        let id = EventId {
            ms: 1795820400000,
            seq: 7,
        };
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        for bad in [
            "",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "+1-2",
            "1 -2",
            "99999999999999999999999-0",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_only_grow() {
        let id = EventId { ms: 100, seq: 3 };
        assert_eq!(id.next(Millis(50)), EventId { ms: 100, seq: 4 });
        assert_eq!(id.next(Millis(100)), EventId { ms: 100, seq: 4 });
        assert_eq!(id.next(Millis(101)), EventId { ms: 101, seq: 0 });
    }
}
