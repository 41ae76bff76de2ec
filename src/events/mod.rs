//! Every change to the sessions as an event: a session created, a session ended (and why), a
//! login denied. Stores emit them with the change itself (the memory store under the user's
//! lock, the Redis store inside its scripts), so a session's events are in order everywhere.
//! Each node keeps the latest in a [`Hub`], which `GET /events`, webhooks and the console read.

mod feed;
mod hub;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

pub use feed::{feed, Filter, Item};
pub use hub::{Hub, Replay, HUB_CAPACITY};

use crate::domain::{EndReason, Millis, Scope, Session, SessionData, SessionId, SessionRecord};

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

/// What an event says happened.
#[derive(Clone, Debug)]
pub enum Change {
    Created(SessionRecord),
    Ended(Ended),
    Denied(Denied),
}

/// A session that ended, and why.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = SessionEndedData)]
pub struct Ended {
    #[schema(value_type = String)]
    pub id: SessionId,
    #[schema(value_type = String)]
    pub user_id: Arc<str>,
    #[schema(value_type = String)]
    pub organisation: Arc<str>,
    #[schema(value_type = String)]
    pub server_name: Arc<str>,
    pub reason: EndReason,
    #[serde(skip)]
    pub holds_admin: bool,
}

impl Ended {
    pub fn of(data: &SessionData, reason: EndReason) -> Self {
        Ended {
            id: data.id,
            user_id: data.user_id.clone(),
            organisation: data.organisation.clone(),
            server_name: data.server_name.clone(),
            reason,
            holds_admin: data.holds_admin(),
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
    pub user_id: Arc<str>,
    #[schema(value_type = String)]
    pub organisation: Arc<str>,
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
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::LoginDenied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session-created",
            EventType::SessionEnded => "session-ended",
            EventType::LoginDenied => "login-denied",
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
}

impl Event {
    pub fn kind(&self) -> EventType {
        match self.change {
            Change::Created(_) => EventType::SessionCreated,
            Change::Ended(_) => EventType::SessionEnded,
            Change::Denied(_) => EventType::LoginDenied,
        }
    }

    /// Whether an administrator of `scope` may see it: the rule of the session list.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        match &self.change {
            Change::Created(record) => {
                scope.admits(&record.data.organisation, record.data.holds_admin())
            }
            Change::Ended(ended) => scope.admits(&ended.organisation, ended.holds_admin),
            Change::Denied(denied) => scope.admits(&denied.organisation, denied.holds_admin),
        }
    }

    /// The event as JSON, as the stream and webhooks send it.
    pub fn to_json(&self) -> String {
        match &self.change {
            Change::Created(record) => self.message(Session::view(record.clone(), self.time, None)),
            Change::Ended(ended) => self.message(ended),
            Change::Denied(denied) => self.message(denied),
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

/// An event as `GET /events` and webhooks deliver it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventMessage {
    /// Unique; later events have greater ids. Send the last one seen as `Last-Event-ID` to
    /// resume. Webhooks send it as `webhook-id`.
    #[schema(example = "1795820400000-0")]
    id: String,
    #[schema(rename = "type")]
    kind: EventType,
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:00:00Z")]
    time: Millis,
    data: EventData,
}

/// [`EventMessage`] as it is written, with the data of its type.
#[derive(Serialize)]
struct Wire<D> {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    time: Millis,
    data: D,
}

/// An event's `data`, by its `type`: `session-created` carries the session,
/// `session-ended` which session ended and why, `login-denied` whose login and why.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum EventData {
    Session(Session),
    Ended(Ended),
    Denied(Denied),
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
