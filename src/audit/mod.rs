//! The audit trail: every session ended by the holder of another (an administrator, or the
//! user from another device) and every login the policy or the seats deny, written to the log
//! under target `audit` and kept, newest first, in a bounded history: in memory, appended to a
//! file of the data directory (and read back at start-up), or in Redis for every node.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::{Millis, Scope, SessionData};
use crate::error::ApiError;
use crate::store::{AuditTrail, BlockingSession};

mod cursor;
mod event;
mod file;
mod shared;
mod stored;

use cursor::{decode_cursor, encode_cursor};
pub use event::{Actor, AuditAction, AuditEvent, EndMethod, Subject};
use file::TrailFile;
use shared::shared_page;
use stored::Stored;

struct History {
    events: VecDeque<(u64, AuditEvent)>,
    next: u64,
}

/// Where the trail is kept beyond this process's memory.
enum Keeper {
    /// Nowhere: it is lost with the process.
    Memory,
    /// Appended to a file in the data directory, and read back at start-up.
    File(Mutex<TrailFile>),
    /// In the shared store (Redis), so every node answers with every node's events.
    Store(Arc<dyn AuditTrail>),
}

pub struct AuditLog {
    history: Mutex<History>,
    capacity: usize,
    keeper: Keeper,
}

/// One page of the trail.
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next: Option<String>,
}

/// How many entries a page of the shared trail reads from the store at a time.
const SHARED_BATCH: usize = 256;

impl AuditLog {
    /// A trail kept in memory only.
    pub fn new(capacity: usize) -> Self {
        Self::kept(capacity, Keeper::Memory, VecDeque::new())
    }

    /// A trail appended to `audit.jsonl` in `dir`, starting from what the file holds.
    pub fn in_dir(capacity: usize, dir: &Path) -> std::io::Result<Self> {
        let (file, kept) = TrailFile::open(dir, capacity)?;
        Ok(Self::kept(capacity, Keeper::File(Mutex::new(file)), kept))
    }

    /// A trail kept in the store (Redis).
    pub fn in_store(capacity: usize, trail: Arc<dyn AuditTrail>) -> Self {
        Self::kept(capacity, Keeper::Store(trail), VecDeque::new())
    }

    fn kept(capacity: usize, keeper: Keeper, events: VecDeque<(u64, AuditEvent)>) -> Self {
        let next = events.back().map_or(1, |(seq, _)| seq + 1);
        AuditLog {
            history: Mutex::new(History { events, next }),
            capacity,
            keeper,
        }
    }

    /// A session ended by `actor` (none: an app server, with its service key).
    pub async fn session_ended(
        &self,
        actor: Option<&SessionData>,
        ended: &SessionData,
        method: EndMethod,
    ) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::SessionEnded,
            method: Some(method),
            actor: actor.map(Actor::of),
            session: Subject::of(ended),
            existing_ip_addresses: Vec::new(),
            existing_in: Vec::new(),
        })
        .await;
    }

    /// A login refused; `existing`: the user's sessions that stood in the way.
    pub async fn login_denied(&self, attempt: Subject, existing: &[BlockingSession]) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::LoginDenied,
            method: None,
            actor: None,
            session: attempt,
            existing_ip_addresses: existing.iter().map(|s| s.ip_address).collect(),
            existing_in: existing
                .iter()
                .map(|s| (s.organisation.to_string(), s.holds_admin))
                .collect(),
        })
        .await;
    }

    /// Numbers the event, keeps it and logs it with the id it is served under. A trail that
    /// cannot be written is logged as an error; the change it records has happened regardless.
    async fn record(&self, mut event: AuditEvent) {
        let kept = match &self.keeper {
            Keeper::Store(store) => {
                let appended = store
                    .append(&Stored::json(None, &event), self.capacity)
                    .await;
                appended.map(|id| event.id = id).map_err(|e| e.to_string())
            }
            Keeper::File(file) => {
                let line = self.keep_here(&mut event);
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                file.append(&line).map_err(|e| e.to_string())
            }
            Keeper::Memory => {
                self.keep_here(&mut event);
                Ok(())
            }
        };
        log::info!(
            target: "audit",
            "{}",
            serde_json::to_string(&event).expect("an audit event always serialises")
        );
        if let Err(e) = kept {
            log::error!("the audit trail could not be written: {e}");
        }
    }

    /// Numbers the event and keeps it in this process's history; returns its stored form.
    fn keep_here(&self, event: &mut AuditEvent) -> String {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = history.next;
        history.next += 1;
        event.id = seq.to_string();
        history.events.push_back((seq, event.clone()));
        while history.events.len() > self.capacity {
            history.events.pop_front();
        }
        Stored::json(Some(seq), event)
    }

    /// Events in `scope`, newest first, older than `cursor`.
    pub async fn page(
        &self,
        scope: &Scope,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, ApiError> {
        let cursor = cursor.filter(|c| !c.is_empty());
        let before = match cursor {
            None => None,
            Some(c) => Some(
                decode_cursor(c)
                    .ok_or_else(|| ApiError::invalid("cursor: not a cursor this service issued"))?,
            ),
        };
        if let Keeper::Store(store) = &self.keeper {
            if before.as_deref().is_some_and(|p| !shared::is_entry_id(p)) {
                return Err(ApiError::invalid(
                    "cursor: not a cursor this service issued",
                ));
            }
            return shared_page(store, scope, before, limit).await;
        }
        let before: u64 = match before.as_deref() {
            None => u64::MAX,
            Some(seq) => seq
                .parse()
                .map_err(|_| ApiError::invalid("cursor: not a cursor this service issued"))?,
        };
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let mut matching = history.events.iter().rev().filter(|(seq, e)| {
            *seq < before && scope.admits(&e.session.organisation, e.session.holds_admin)
        });
        let items: Vec<(u64, AuditEvent)> = matching
            .by_ref()
            .take(limit)
            .map(|(s, e)| (*s, e.clone().within(scope)))
            .collect();
        let more = matching.next().is_some();
        Ok(AuditPage {
            next: match (more, items.last()) {
                (true, Some((seq, _))) => Some(encode_cursor(&seq.to_string())),
                _ => None,
            },
            items: items.into_iter().map(|(_, e)| e).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionId;
    use std::io::Write;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(future)
    }

    #[test]
    fn a_trail_in_a_directory_survives_a_restart_and_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("sessiond-audit-{}", SessionId::generate()));
        {
            let log = AuditLog::in_dir(10, &dir).unwrap();
            run(log.login_denied(attempt("A"), &[]));
            run(log.login_denied(
                Subject {
                    holds_admin: true,
                    ..attempt("A")
                },
                &[],
            ));
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(file::CURRENT))
            .unwrap();
        file.write_all(b"{\"seq\": 3, \"adm").unwrap();
        let log = AuditLog::in_dir(10, &dir).unwrap();
        run(log.login_denied(attempt("B"), &[]));
        let page = run(log.page(&Scope::All, None, 10)).unwrap();
        let ids: Vec<&str> = page.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"], "numbering goes on after the restart");
        let org = run(log.page(&Scope::Organisation("A".into()), None, 10)).unwrap();
        assert_eq!(org.items.len(), 1, "who held admin is kept");
        std::fs::remove_dir_all(dir).unwrap();
    }

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
            run(log.login_denied(attempt("A"), &[]));
        }
        let first = run(log.page(&Scope::All, None, 3)).unwrap();
        let ids: Vec<&str> = first.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["8", "7", "6"]);
        let second = run(log.page(&Scope::All, first.next.as_deref(), 3)).unwrap();
        let ids: Vec<&str> = second.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["5", "4"]);
        assert!(second.next.is_none());
    }

    #[test]
    fn an_organisation_sees_only_its_own() {
        let log = AuditLog::new(10);
        run(log.login_denied(attempt("A"), &[]));
        run(log.login_denied(attempt("B"), &[]));
        let page = run(log.page(&Scope::Organisation("B".into()), None, 10)).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].session.organisation, "B");
    }

    #[test]
    fn an_organisation_does_not_see_events_of_admin_sessions() {
        let log = AuditLog::new(10);
        run(log.login_denied(
            Subject {
                holds_admin: true,
                ..attempt("B")
            },
            &[],
        ));
        let org = run(log.page(&Scope::Organisation("B".into()), None, 10)).unwrap();
        assert!(org.items.is_empty());
        assert_eq!(run(log.page(&Scope::All, None, 10)).unwrap().items.len(), 1);
    }

    #[test]
    fn a_denied_logins_existing_sessions_are_shown_only_within_the_readers_scope() {
        let log = AuditLog::new(10);
        let existing = |organisation: &str, ip: &str| BlockingSession {
            id: SessionId::generate(),
            ip_address: ip.parse().unwrap(),
            server_name: "LOCAL".into(),
            organisation: organisation.into(),
            holds_admin: false,
        };
        run(log.login_denied(
            attempt("B"),
            &[existing("A", "10.0.0.7"), existing("B", "10.0.0.8")],
        ));
        let shown = |scope: Scope| {
            run(log.page(&scope, None, 10)).unwrap().items[0]
                .existing_ip_addresses
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(Scope::Organisation("B".into())), ["10.0.0.8"]);
        assert_eq!(shown(Scope::All), ["10.0.0.7", "10.0.0.8"]);
    }

    #[test]
    fn garbled_cursors_are_refused() {
        let log = AuditLog::new(10);
        for bad in ["x", "YQ", "!!"] {
            assert!(
                run(log.page(&Scope::All, Some(bad), 10)).is_err(),
                "{bad:?}"
            );
        }
    }
}
