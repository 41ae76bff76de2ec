//! The rules about sessions, between HTTP and the store: defaults and parsing of a login, the
//! concurrent-session policy, who may end what, and the audit trail and metrics each outcome
//! leaves. Handlers parse the request, call one function here and shape its answer; each rule
//! is still one atomic store call.

mod renewal;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{AuditLog, EndMethod, Subject};
use crate::config::{IpChange, LoginOverrides, Seats, Settings};
use crate::domain::limits::{MAX_LIMIT, MAX_TEXT_CHARS};
use crate::domain::listing::ListParams;
use crate::domain::new_session::{requested_policy, Defaults};
use crate::domain::session::holds_admin;
use crate::domain::text::check;
use crate::domain::{
    AssuranceTimeouts, ConcurrentSessions, EndReason, ListQuery, Millis, NewSession,
    NewSessionRequest, Order, Position, PresentedToken, Scope, SessionData, SessionId,
    SessionRecord, SortField, Stopped, Token,
};
use crate::error::{ApiError, Code};
use crate::events::EventId;
use crate::metrics::{Metrics, Picture};
use crate::store::{Created, Insert, LoginRules, SharedStore, StoreError};
pub use renewal::{Renewed, StepUp};

/// The session service: one per application.
pub struct Sessions {
    store: SharedStore,
    /// The server's rules; a login may ask for another policy, and its organisation's seats
    /// come from `seats`.
    rules: LoginRules,
    /// The policies a login may ask for instead.
    overrides: LoginOverrides,
    assurance: AssuranceTimeouts,
    ip_change: IpChange,
    seats: Seats,
    server_name: String,
    idle_timeout: u32,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    picture: tokio::sync::Mutex<Option<(Instant, Picture)>>,
}

/// The sessions at a glance.
pub struct Summary {
    /// Where the counts stand in the events.
    pub last_event_id: EventId,
    pub total: u64,
    pub users: u64,
    pub by_organisation: Vec<OrganisationCount>,
    /// Server names and their sessions.
    pub by_server: Vec<(String, u64)>,
}

/// One organisation's sessions, users and seats (its limit, if it has one).
pub struct OrganisationCount {
    pub organisation: String,
    pub sessions: u64,
    pub users: u64,
    pub seats: Option<u32>,
}

/// How long a census of the sessions is reused for the metrics.
pub const CENSUS_TTL: Duration = Duration::from_secs(5);

/// A login that succeeded: the new session, its token (shown once) and the sessions it ended.
pub struct LoggedIn {
    pub session: SessionRecord,
    pub token: Token,
    pub ended: Vec<(SessionId, EndReason)>,
}

/// A login being tried, kept (as shared pointers) only to describe it in the audit trail if
/// it is refused.
struct Attempt {
    user_id: Arc<str>,
    organisation: Arc<str>,
    ip_address: std::net::IpAddr,
    server_name: Arc<str>,
    holds_admin: bool,
}

impl Attempt {
    fn of(session: &NewSession) -> Self {
        Attempt {
            user_id: session.user_id.clone(),
            organisation: session.organisation.clone(),
            ip_address: session.ip_address,
            server_name: session.server_name.clone(),
            holds_admin: holds_admin(&session.roles),
        }
    }

    /// The refused login as the audit trail names it (no session id: none was made).
    fn subject(self) -> Subject {
        Subject {
            id: None,
            user_id: self.user_id.to_string(),
            organisation: self.organisation.to_string(),
            ip_address: self.ip_address,
            server_name: self.server_name.to_string(),
            holds_admin: self.holds_admin,
        }
    }
}

/// One page of the Session Management list.
pub struct Listing {
    pub items: Vec<SessionRecord>,
    pub total: u64,
    pub next_cursor: Option<String>,
    /// Where the list stands in the events, for an administrator's list (following them
    /// from here misses nothing).
    pub last_event_id: Option<EventId>,
}

/// What a bulk delete did with each id sent, duplicates removed, in the order sent.
#[derive(Default)]
pub struct BulkOutcome {
    pub deleted: Vec<String>,
    pub not_found: Vec<String>,
    /// The caller's own session, which is never deleted this way.
    pub refused_own: Vec<String>,
}

/// What a caller may reach of other sessions, as its credential's extractor decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// An administrator: every session in its scope.
    Administers(Scope),
    /// Anyone else: the sessions of its own user.
    OwnUser,
}

/// A caller acting on sessions: who it is and what it may reach.
pub struct Acting<'a> {
    pub caller: &'a SessionData,
    pub reach: &'a Reach,
    pub now: Millis,
}

fn no_such_session() -> ApiError {
    ApiError::not_found("no such session")
}

impl Sessions {
    /// The service over `store`, with the login rules and defaults of `settings`.
    pub fn new(
        store: SharedStore,
        settings: &Settings,
        audit: Arc<AuditLog>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sessions {
            store,
            rules: LoginRules {
                policy: settings.concurrent_sessions,
                max_per_user: settings.max_sessions_per_user,
                seats: None,
            },
            overrides: settings.login_overrides.clone(),
            assurance: settings.assurance_timeouts,
            ip_change: settings.ip_change,
            seats: settings.organisation_seats.clone().unwrap_or_default(),
            server_name: settings.server_name.clone(),
            idle_timeout: settings.idle_timeout,
            audit,
            metrics,
            picture: tokio::sync::Mutex::new(None),
        }
    }

    /// The store, for start-up and for tests that look inside it.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Logs a user in under the server's concurrent-session policy (or the one the login asks
    /// for), the per-user limit and the organisation's seats. A refused login is audited and
    /// counted.
    pub async fn log_in(&self, request: NewSessionRequest) -> Result<LoggedIn, ApiError> {
        let policy = match requested_policy(&request).map_err(ApiError::invalid)? {
            None => self.rules.policy,
            Some(asked) if self.overrides.allows(asked) => asked,
            Some(asked) => {
                return Err(ApiError::invalid(format!(
                    "concurrent_sessions: a login may not ask for {:?} here (SESSIOND_LOGIN_OVERRIDES allows {})",
                    asked.name(),
                    self.overrides.names()
                )))
            }
        };
        self.log_in_under(request, policy).await
    }

    /// [`Sessions::log_in`] under `policy`, whatever the login asks for: for callers inside
    /// the service (the demo's sample of a refused login).
    pub async fn log_in_under(
        &self,
        request: NewSessionRequest,
        policy: ConcurrentSessions,
    ) -> Result<LoggedIn, ApiError> {
        let defaults = Defaults {
            server_name: &self.server_name,
            timeout_seconds: self.idle_timeout,
        };
        let now = Millis::now();
        let session = NewSession::parse(request, &defaults, &self.assurance, now)
            .map_err(ApiError::invalid)?;
        let rules = LoginRules {
            policy,
            seats: self.seats.of(&session.organisation),
            ..self.rules
        };
        let attempt = Attempt::of(&session);
        let token = Token::generate(self.store.new_session_id(&session.user_id));
        let insert = Insert {
            id: token.id(),
            digest: token.digest(),
            session,
        };
        match self.store.create(insert, rules, now).await {
            Ok(Created { session, ended }) => {
                self.metrics.sessions_created.inc();
                for (_, reason) in &ended {
                    self.metrics.ended(*reason, 1);
                }
                Ok(LoggedIn {
                    session,
                    token,
                    ended,
                })
            }
            Err(refused @ (StoreError::LoginDenied(_) | StoreError::SeatLimit { .. })) => {
                self.metrics.logins_denied.inc();
                let subject = attempt.subject();
                let blocking = match &refused {
                    StoreError::LoginDenied(blocking) => &blocking[..],
                    _ => &[],
                };
                self.audit.login_denied(subject, blocking).await;
                Err(refused.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Why a token that names no live session stopped working, if it is the real token of a
    /// session that ended in the last day (or was rotated).
    pub async fn why_stopped(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<Stopped>, ApiError> {
        Ok(self.store.why_stopped(token, now).await?)
    }

    /// The live session a presented token belongs to, touched; `None` for any token that names
    /// no live session.
    pub async fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, ApiError> {
        Ok(self.store.authenticate(token, now).await?)
    }

    /// Ends the caller's own session.
    pub async fn log_out(&self, own: SessionId, now: Millis) -> Result<(), ApiError> {
        let ended = self
            .store
            .delete(&[own], &Scope::All, now, EndReason::Logout)
            .await?;
        self.metrics.ended(EndReason::Logout, ended.len());
        Ok(())
    }

    /// One page of the sessions in `scope`, with the cursor of the next.
    pub async fn list(
        &self,
        params: ListParams,
        scope: &Scope,
        now: Millis,
    ) -> Result<Listing, ApiError> {
        let query = ListQuery::parse(params).map_err(ApiError::invalid)?;
        // Read before the list: every change up to it is in the page.
        let last_event_id = Some(self.store.position());
        let page = self.store.list(&query, scope, now).await?;
        let next_cursor = match (page.more, page.items.last()) {
            (true, Some(last)) => Some(query.cursor_after(&Position::of(&query, last))),
            _ => None,
        };
        Ok(Listing {
            items: page.items,
            total: page.total,
            next_cursor,
            last_event_id,
        })
    }

    /// A live session the caller may reach, by the id as sent: `404` for anything else (for
    /// an administrator, outside its scope; for anyone else, not a live session of its own
    /// user — so a device already signed out reads as gone, and an id tells nothing).
    pub async fn get(&self, acting: &Acting<'_>, id: &str) -> Result<SessionRecord, ApiError> {
        match acting.reach {
            Reach::Administers(scope) => {
                let id = SessionId::parse(id).ok_or_else(no_such_session)?;
                self.store
                    .get(id, scope, acting.now)
                    .await?
                    .ok_or_else(no_such_session)
            }
            Reach::OwnUser => self.own_users(acting, id).await,
        }
    }

    /// A live session of the caller's own user, or `404`.
    async fn own_users(&self, acting: &Acting<'_>, id: &str) -> Result<SessionRecord, ApiError> {
        let id = SessionId::parse(id).ok_or_else(no_such_session)?;
        self.store
            .get(id, &Scope::All, acting.now)
            .await?
            .filter(|record| record.data.user_id == acting.caller.user_id)
            .ok_or_else(no_such_session)
    }

    /// Ends one session the caller names; never the caller's own (that is a logout).
    pub async fn end(&self, acting: &Acting<'_>, id: &str) -> Result<(), ApiError> {
        if SessionId::parse(id) == Some(acting.caller.id) {
            return Err(ApiError::new(
                Code::OwnSession,
                "you cannot end your own session here; log out with DELETE /sessions/current",
            ));
        }
        let (ended, reason) = match acting.reach {
            Reach::Administers(scope) => {
                let id = SessionId::parse(id).ok_or_else(no_such_session)?;
                let ended = self
                    .store
                    .delete(&[id], scope, acting.now, EndReason::Admin)
                    .await?;
                (
                    ended.into_iter().next().ok_or_else(no_such_session)?,
                    EndReason::Admin,
                )
            }
            Reach::OwnUser => {
                let record = self.own_users(acting, id).await?;
                let ended = self
                    .store
                    .delete(
                        &[record.data.id],
                        &Scope::All,
                        acting.now,
                        EndReason::SelfService,
                    )
                    .await?;
                (
                    ended.into_iter().next().ok_or_else(no_such_session)?,
                    EndReason::SelfService,
                )
            }
        };
        self.audit
            .session_ended(Some(acting.caller), &ended.data, EndMethod::Single)
            .await;
        self.metrics.ended(reason, 1);
        if reason == EndReason::Admin {
            self.recount().await;
        }
        Ok(())
    }

    /// Every live session of the caller's user, most recently active first: at most
    /// [`MAX_LIMIT`] of them, and how many there are.
    pub async fn mine(&self, caller: &SessionData, now: Millis) -> Result<Listing, ApiError> {
        let query = ListQuery::parse(ListParams {
            user_id: Some(caller.user_id.to_string()),
            sort: Some(SortField::LastActive),
            order: Some(Order::Desc),
            limit: Some(MAX_LIMIT as i64),
            ..ListParams::default()
        })
        .map_err(ApiError::invalid)?;
        let page = self.store.list(&query, &Scope::All, now).await?;
        Ok(Listing {
            items: page.items,
            total: page.total,
            next_cursor: None,
            last_event_id: None,
        })
    }

    /// Ends every other session of the caller's user ("log out my other devices"); returns the
    /// ids it ended.
    pub async fn end_others(
        &self,
        caller: &SessionData,
        now: Millis,
    ) -> Result<Vec<SessionId>, ApiError> {
        self.end_user(
            Some(caller),
            &Scope::All,
            &caller.user_id,
            Some(caller.id),
            (EndReason::SelfService, EndMethod::Bulk),
            now,
        )
        .await
    }

    /// Ends every session of `user_id` that `scope` reaches, but `except` (the device that
    /// changed the password): the account was disabled or its password changed. `by` is the
    /// administrator acting, or none for an app server. Returns the ids it ended.
    pub async fn revoke_user(
        &self,
        by: Option<&SessionData>,
        scope: &Scope,
        user_id: &str,
        except: Option<&str>,
        now: Millis,
    ) -> Result<Vec<SessionId>, ApiError> {
        check("user_id", user_id, MAX_TEXT_CHARS).map_err(ApiError::invalid)?;
        let except = match except.filter(|e| !e.is_empty()) {
            None => None,
            Some(text) => Some(SessionId::parse(text).ok_or_else(|| {
                ApiError::invalid(format!("except: {text:?} is not a session id"))
            })?),
        };
        let ended = self
            .end_user(
                by,
                scope,
                user_id,
                except,
                (EndReason::Revoked, EndMethod::Revoke),
                now,
            )
            .await?;
        if !ended.is_empty() {
            self.recount().await;
        }
        Ok(ended)
    }

    /// Ends the live sessions of `user_id` in `scope` but `except`, as one store call, and
    /// audits and counts them.
    async fn end_user(
        &self,
        by: Option<&SessionData>,
        scope: &Scope,
        user_id: &str,
        except: Option<SessionId>,
        (reason, method): (EndReason, EndMethod),
        now: Millis,
    ) -> Result<Vec<SessionId>, ApiError> {
        let mut ids = Vec::new();
        let mut params = ListParams {
            user_id: Some(user_id.to_string()),
            limit: Some(MAX_LIMIT as i64),
            ..ListParams::default()
        };
        loop {
            let query = ListQuery::parse(params.clone()).map_err(ApiError::invalid)?;
            let page = self.store.list(&query, scope, now).await?;
            ids.extend(
                page.items
                    .iter()
                    .map(|r| r.data.id)
                    .filter(|&id| Some(id) != except),
            );
            match (page.more, page.items.last()) {
                (true, Some(last)) => {
                    params.cursor = Some(query.cursor_after(&Position::of(&query, last)))
                }
                _ => break,
            }
        }
        let ended = self.store.delete(&ids, scope, now, reason).await?;
        for record in &ended {
            self.audit.session_ended(by, &record.data, method).await;
        }
        self.metrics.ended(reason, ended.len());
        Ok(ended.into_iter().map(|r| r.data.id).collect())
    }

    /// Ends the sessions an administrator names, in one store call, and says what happened to
    /// each id.
    pub async fn end_many(
        &self,
        acting: &Acting<'_>,
        requested: Vec<String>,
    ) -> Result<BulkOutcome, ApiError> {
        let Reach::Administers(scope) = acting.reach else {
            return Err(ApiError::new(
                Code::Forbidden,
                "only an administrator ends sessions in bulk",
            ));
        };
        let own = acting.caller.id;
        let mut seen = HashSet::with_capacity(requested.len());
        let unique: Vec<(String, Option<SessionId>)> = requested
            .into_iter()
            .filter(|text| seen.insert(text.clone()))
            .map(|text| {
                let id = SessionId::parse(&text);
                (text, id)
            })
            .collect();
        let candidates: Vec<SessionId> = unique
            .iter()
            .filter_map(|(_, id)| *id)
            .filter(|&id| id != own)
            .collect();
        let records = self
            .store
            .delete(&candidates, scope, acting.now, EndReason::Admin)
            .await?;
        for record in &records {
            self.audit
                .session_ended(Some(acting.caller), &record.data, EndMethod::Bulk)
                .await;
        }
        self.metrics.ended(EndReason::Admin, records.len());
        if !records.is_empty() {
            self.recount().await;
        }
        let ended: HashSet<SessionId> = records.iter().map(|record| record.data.id).collect();
        let mut outcome = BulkOutcome::default();
        for (text, id) in unique {
            match id {
                Some(id) if id == own => outcome.refused_own.push(text),
                Some(id) if ended.contains(&id) => outcome.deleted.push(text),
                _ => outcome.not_found.push(text),
            }
        }
        Ok(outcome)
    }

    /// Frees the memory of expired sessions and counts them as ended.
    pub async fn reap(&self, now: Millis) -> Result<(), ApiError> {
        let reaped = self.store.reap(now).await?;
        self.metrics.ended(EndReason::Expired, reaped);
        Ok(())
    }

    /// Live sessions by organisation and server, and the seats in use, for the metrics.
    /// Counting reads every session, so a count is reused for [`CENSUS_TTL`]: scrapes, however
    /// frequent, cost one scan that often at most.
    /// One count at a time: requests that find the last one too old wait for the count
    /// under way and share it, instead of each counting again.
    /// Drops the cached counts, so that the next summary counts again: after an
    /// administrator's deletion, which the console follows with the summary (logins and
    /// expiries, by far the most changes, keep the cache, so a busy site counts at most every
    /// few seconds).
    async fn recount(&self) {
        self.picture.lock().await.take();
    }

    pub async fn picture(&self, now: Millis) -> Result<Picture, ApiError> {
        let mut cached = self.picture.lock().await;
        if let Some((at, picture)) = &*cached {
            if at.elapsed() < CENSUS_TTL {
                return Ok(picture.clone());
            }
        }
        let mut picture = Picture {
            last_event_id: self.store.position(),
            sessions: self.store.census(now).await?,
            users: self.store.users(now).await?,
            seats: Vec::new(),
        };
        for (organisation, limit) in self.seats.iter() {
            let used = self.store.seats_in_use(organisation, now).await?;
            picture.seats.push((organisation.to_string(), used, limit));
        }
        *cached = Some((Instant::now(), picture.clone()));
        Ok(picture)
    }

    /// The sessions in `scope` at a glance: totals, and counts by organisation (with its seats)
    /// and by server, largest first. From the same counts as the metrics.
    pub async fn summary(&self, scope: &Scope, now: Millis) -> Result<Summary, ApiError> {
        let picture = self.picture(now).await?;
        let mut by_organisation: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut by_server: HashMap<&str, u64> = HashMap::new();
        for census in picture
            .sessions
            .iter()
            .filter(|c| scope.admits(&c.organisation, c.admin))
        {
            by_organisation.entry(&census.organisation).or_default().0 += census.sessions;
            *by_server.entry(&census.server_name).or_default() += census.sessions;
        }
        for count in &picture.users.by_organisation {
            if let Some(counts) = by_organisation.get_mut(&*count.organisation) {
                // A scope that does not see admins' sessions does not count their users.
                counts.1 = if scope.admits(&count.organisation, true) {
                    count.users
                } else {
                    count.outside_admin
                };
            }
        }
        let mut organisations: Vec<OrganisationCount> = by_organisation
            .into_iter()
            .map(|(organisation, (sessions, users))| OrganisationCount {
                organisation: organisation.to_string(),
                sessions,
                users,
                seats: self.seats.of(organisation),
            })
            .collect();
        organisations.sort_by(|a, b| {
            b.sessions
                .cmp(&a.sessions)
                .then_with(|| a.organisation.cmp(&b.organisation))
        });
        let mut servers: Vec<(String, u64)> = by_server
            .into_iter()
            .map(|(server, sessions)| (server.to_string(), sessions))
            .collect();
        servers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Summary {
            last_event_id: picture.last_event_id,
            total: organisations.iter().map(|o| o.sessions).sum(),
            users: match scope {
                Scope::All => picture.users.distinct,
                Scope::Organisation(_) => organisations.iter().map(|o| o.users).sum(),
            },
            by_organisation: organisations,
            by_server: servers,
        })
    }

    /// Whether the store can serve requests now.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}
