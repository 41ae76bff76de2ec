//! The audit trail: every session ended by the holder of another (an administrator, or the
//! user from another device) and every login the policy or the seats deny,
//! written to the log under target `audit` and kept, newest first, in a bounded history.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Millis, Scope, SessionData};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A session was ended by the holder of another: an administrator, or its own user.
    SessionEnded,
    /// The concurrent-session policy refused a login.
    LoginDenied,
}

/// How the session was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndMethod {
    /// `DELETE /sessions/{id}`.
    Single,
    /// `DELETE /sessions`.
    Bulk,
}

/// The session holder who acted: an administrator, or the user from another device.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Actor {
    pub session_id: String,
    pub user_id: String,
    pub organisation: String,
}

impl Actor {
    pub fn of(data: &SessionData) -> Self {
        Actor {
            session_id: data.id.to_string(),
            user_id: data.user_id.to_string(),
            organisation: data.organisation.to_string(),
        }
    }
}

/// The session acted on: for a denied login, the login that was refused (it has no id).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Subject {
    /// Null for a refused login, which has no session.
    #[schema(required = true)]
    pub id: Option<String>,
    pub user_id: String,
    pub organisation: String,
    #[schema(value_type = String)]
    pub ip_address: IpAddr,
    pub server_name: String,
    /// Whether the session held `admin`: then no `org_admin` sees the event.
    #[serde(skip)]
    pub holds_admin: bool,
}

impl Subject {
    pub fn of(data: &SessionData) -> Self {
        Subject {
            id: Some(data.id.to_string()),
            user_id: data.user_id.to_string(),
            organisation: data.organisation.to_string(),
            ip_address: data.ip_address,
            server_name: data.server_name.to_string(),
            holds_admin: data.holds_admin(),
        }
    }
}

/// One entry of the audit trail.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Increases with every event.
    #[schema(example = "42")]
    pub id: String,
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:05:00Z")]
    pub at: Millis,
    pub action: AuditAction,
    /// For `session-ended`: single or bulk; null otherwise.
    #[schema(required = true)]
    pub method: Option<EndMethod>,
    /// For `session-ended`: who ended it; null otherwise.
    #[schema(required = true)]
    pub actor: Option<Actor>,
    pub session: Subject,
    /// For `login-denied`: the IP addresses the user already had sessions from.
    #[schema(value_type = Vec<String>)]
    pub existing_ip_addresses: Vec<IpAddr>,
}

struct History {
    events: VecDeque<(u64, AuditEvent)>,
    next: u64,
}

pub struct AuditLog {
    history: Mutex<History>,
    capacity: usize,
}

/// One page of the trail.
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next: Option<String>,
}

impl AuditLog {
    pub fn new(capacity: usize) -> Self {
        AuditLog {
            history: Mutex::new(History {
                events: VecDeque::new(),
                next: 1,
            }),
            capacity,
        }
    }

    pub fn session_ended(&self, actor: &SessionData, ended: &SessionData, method: EndMethod) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::SessionEnded,
            method: Some(method),
            actor: Some(Actor::of(actor)),
            session: Subject::of(ended),
            existing_ip_addresses: Vec::new(),
        });
    }

    pub fn login_denied(&self, attempt: Subject, existing: Vec<IpAddr>) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::LoginDenied,
            method: None,
            actor: None,
            session: attempt,
            existing_ip_addresses: existing,
        });
    }

    fn record(&self, mut event: AuditEvent) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = history.next;
        history.next += 1;
        event.id = seq.to_string();
        log::info!(
            target: "audit",
            "{}",
            serde_json::to_string(&event).expect("an audit event always serialises")
        );
        history.events.push_back((seq, event));
        while history.events.len() > self.capacity {
            history.events.pop_front();
        }
    }

    /// Events in `scope`, newest first, older than `cursor`.
    pub fn page(
        &self,
        scope: &Scope,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, String> {
        let before = match cursor.filter(|c| !c.is_empty()) {
            None => u64::MAX,
            Some(c) => decode_cursor(c).ok_or("cursor: not a cursor this service issued")?,
        };
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let mut matching = history.events.iter().rev().filter(|(seq, e)| {
            *seq < before && scope.admits(&e.session.organisation, e.session.holds_admin)
        });
        let items: Vec<(u64, AuditEvent)> = matching
            .by_ref()
            .take(limit)
            .map(|(s, e)| (*s, e.clone()))
            .collect();
        let more = matching.next().is_some();
        Ok(AuditPage {
            next: match (more, items.last()) {
                (true, Some((seq, _))) => Some(URL_SAFE_NO_PAD.encode(format!("a{seq}"))),
                _ => None,
            },
            items: items.into_iter().map(|(_, e)| e).collect(),
        })
    }
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('a')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(org: &str) -> Subject {
        Subject {
            id: None,
            user_id: "u".into(),
            organisation: org.into(),
            ip_address: "10.0.0.1".parse().unwrap(),
            server_name: "LOCAL".into(),
            holds_admin: false,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity_and_pages_newest_first() {
        let log = AuditLog::new(5);
        for _ in 0..8 {
            log.login_denied(attempt("A"), vec![]);
        }
        let first = log.page(&Scope::All, None, 3).unwrap();
        let ids: Vec<&str> = first.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["8", "7", "6"]);
        let second = log.page(&Scope::All, first.next.as_deref(), 3).unwrap();
        let ids: Vec<&str> = second.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["5", "4"]);
        assert!(second.next.is_none());
    }

    #[test]
    fn an_organisation_sees_only_its_own() {
        let log = AuditLog::new(10);
        log.login_denied(attempt("A"), vec![]);
        log.login_denied(attempt("B"), vec![]);
        let page = log
            .page(&Scope::Organisation("B".into()), None, 10)
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].session.organisation, "B");
    }

    #[test]
    fn an_organisation_does_not_see_events_of_admin_sessions() {
        let log = AuditLog::new(10);
        log.login_denied(
            Subject {
                holds_admin: true,
                ..attempt("B")
            },
            vec![],
        );
        let org = log
            .page(&Scope::Organisation("B".into()), None, 10)
            .unwrap();
        assert!(org.items.is_empty());
        assert_eq!(log.page(&Scope::All, None, 10).unwrap().items.len(), 1);
    }

    #[test]
    fn garbled_cursors_are_refused() {
        let log = AuditLog::new(10);
        for bad in ["x", "YQ", "!!"] {
            assert!(log.page(&Scope::All, Some(bad), 10).is_err(), "{bad:?}");
        }
    }
}
