//! The audit trail: every session ended by the holder of another (an administrator, or the
//! user from another device) and every login the policy or the seats deny, written to the log
//! under target `audit` and kept, newest first, in a bounded history: in memory, appended to a
//! file of the data directory (and read back at start-up), or in Redis for every node.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Millis, Scope, SessionData};
use crate::error::ApiError;
use crate::store::AuditTrail;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A session was ended by the holder of another: an administrator, or its own user.
    SessionEnded,
    /// The concurrent-session policy refused a login.
    LoginDenied,
}

/// How the session was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndMethod {
    /// `DELETE /sessions/{id}`.
    Single,
    /// `DELETE /sessions`.
    Bulk,
}

/// The session holder who acted: an administrator, or the user from another device.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Unique, and greater for every later event: a number, or on Redis its entry's id.
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

/// An event as the trail keeps it (a line of the file, an entry in Redis): with what the API
/// does not show, whether the session held `admin`, which decides who may see it, and in the
/// file its number (Redis numbers its entries itself).
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    admin: bool,
    event: AuditEvent,
}

impl Stored {
    fn json(seq: Option<u64>, event: &AuditEvent) -> String {
        serde_json::to_string(&Stored {
            seq,
            admin: event.session.holds_admin,
            event: event.clone(),
        })
        .expect("an audit event always serialises")
    }

    fn into_event(self) -> (Option<u64>, AuditEvent) {
        let mut event = self.event;
        event.session.holds_admin = self.admin;
        (self.seq, event)
    }
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

    pub async fn session_ended(&self, actor: &SessionData, ended: &SessionData, method: EndMethod) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::SessionEnded,
            method: Some(method),
            actor: Some(Actor::of(actor)),
            session: Subject::of(ended),
            existing_ip_addresses: Vec::new(),
        })
        .await;
    }

    pub async fn login_denied(&self, attempt: Subject, existing: Vec<IpAddr>) {
        self.record(AuditEvent {
            id: String::new(),
            at: Millis::now(),
            action: AuditAction::LoginDenied,
            method: None,
            actor: None,
            session: attempt,
            existing_ip_addresses: existing,
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
            .map(|(s, e)| (*s, e.clone()))
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

/// A page of the trail the store keeps: its entries are read newest first, a batch at a time,
/// until the page is full. Each event's id is its entry's.
async fn shared_page(
    store: &Arc<dyn AuditTrail>,
    scope: &Scope,
    mut before: Option<String>,
    limit: usize,
) -> Result<AuditPage, ApiError> {
    let mut items: Vec<AuditEvent> = Vec::new();
    let mut more = false;
    'reading: loop {
        let batch = store.before(before.as_deref(), SHARED_BATCH).await?;
        let exhausted = batch.len() < SHARED_BATCH;
        for (id, json) in batch {
            before = Some(id.clone());
            let Ok(stored) = serde_json::from_str::<Stored>(&json) else {
                log::warn!("unreadable audit entry {id} skipped");
                continue;
            };
            let (_, mut event) = stored.into_event();
            if !scope.admits(&event.session.organisation, event.session.holds_admin) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break 'reading;
            }
            event.id = id;
            items.push(event);
        }
        if exhausted {
            break;
        }
    }
    Ok(AuditPage {
        next: match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(&last.id)),
            _ => None,
        },
        items,
    })
}

/// The trail's file: JSON lines appended as events happen. Past [`ROTATE_AT`] bytes it is
/// renamed to `audit.1.jsonl` (replacing the one before) and a new one begun.
struct TrailFile {
    dir: PathBuf,
    file: File,
    written: u64,
}

/// The size at which the trail's file is rotated.
const ROTATE_AT: u64 = 16 << 20;
const CURRENT: &str = "audit.jsonl";
const PREVIOUS: &str = "audit.1.jsonl";

impl TrailFile {
    /// Opens the trail in `dir` and reads back its newest `capacity` events. Lines that
    /// cannot be read (a write cut short by a crash) are skipped with a warning.
    fn open(dir: &Path, capacity: usize) -> std::io::Result<(Self, VecDeque<(u64, AuditEvent)>)> {
        std::fs::create_dir_all(dir)?;
        let mut kept = VecDeque::new();
        let mut unreadable = 0;
        for name in [PREVIOUS, CURRENT] {
            let text = match std::fs::read(dir.join(name)) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Stored>(line) {
                    Ok(stored) => {
                        let (Some(seq), event) = stored.into_event() else {
                            unreadable += 1;
                            continue;
                        };
                        kept.push_back((seq, event));
                        if kept.len() > capacity {
                            kept.pop_front();
                        }
                    }
                    Err(_) => unreadable += 1,
                }
            }
        }
        if unreadable > 0 {
            log::warn!(
                "the audit trail in {} had {unreadable} unreadable lines (a write cut short?); they were skipped",
                dir.display()
            );
        }
        let path = dir.join(CURRENT);
        let file = Self::open_for_append(&path)?;
        let written = file.metadata()?.len();
        // A torn last line must not swallow the next event.
        let mut trail = TrailFile {
            dir: dir.to_path_buf(),
            file,
            written,
        };
        if written > 0 && !std::fs::read(&path)?.ends_with(b"\n") {
            trail.file.write_all(b"\n")?;
        }
        Ok((trail, kept))
    }

    fn open_for_append(path: &Path) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        if self.written >= ROTATE_AT {
            std::fs::rename(self.dir.join(CURRENT), self.dir.join(PREVIOUS))?;
            self.file = Self::open_for_append(&self.dir.join(CURRENT))?;
            self.written = 0;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{position}"))
}

/// The position a cursor holds: a number (this process's trail) or an entry id (the store's).
fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let position = std::str::from_utf8(&bytes).ok()?.strip_prefix('a')?;
    let well_formed = !position.is_empty()
        && position.len() <= 40
        && position.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    well_formed.then(|| position.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionId;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(future)
    }

    #[test]
    fn a_trail_in_a_directory_survives_a_restart_and_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("sessiond-audit-{}", SessionId::generate()));
        {
            let log = AuditLog::in_dir(10, &dir).unwrap();
            run(log.login_denied(attempt("A"), vec![]));
            run(log.login_denied(
                Subject {
                    holds_admin: true,
                    ..attempt("A")
                },
                vec![],
            ));
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(CURRENT))
            .unwrap();
        file.write_all(b"{\"seq\": 3, \"adm").unwrap();
        let log = AuditLog::in_dir(10, &dir).unwrap();
        run(log.login_denied(attempt("B"), vec![]));
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
            run(log.login_denied(attempt("A"), vec![]));
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
        run(log.login_denied(attempt("A"), vec![]));
        run(log.login_denied(attempt("B"), vec![]));
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
            vec![],
        ));
        let org = run(log.page(&Scope::Organisation("B".into()), None, 10)).unwrap();
        assert!(org.items.is_empty());
        assert_eq!(run(log.page(&Scope::All, None, 10)).unwrap().items.len(), 1);
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
