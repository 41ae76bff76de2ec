//! The rules about sessions, between HTTP and the store: defaults and parsing of a login, the
//! concurrent-session policy, who may end what, and the audit trail and metrics each outcome
//! leaves. Handlers parse the request, call one function here and shape its answer; each rule
//! is still one atomic store call.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::audit::{AuditLog, EndMethod, Subject};
use crate::domain::listing::ListParams;
use crate::domain::new_session::Defaults;
use crate::domain::session::holds_admin;
use crate::domain::{
    EndReason, ListQuery, Millis, NewSession, NewSessionRequest, Position, PresentedToken, Scope,
    SessionData, SessionId, SessionRecord, Token,
};
use crate::error::{ApiError, Code};
use crate::metrics::Metrics;
use crate::store::{Census, Created, Insert, LoginRules, SharedStore, StoreError};

/// The session service: one per application.
pub struct Sessions {
    store: SharedStore,
    rules: LoginRules,
    server_name: String,
    idle_timeout: u32,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    census: Mutex<Option<(Instant, Vec<Census>)>>,
}

/// How long a census of the sessions is reused for the metrics.
pub const CENSUS_TTL: Duration = Duration::from_secs(5);

/// A login that succeeded: the new session, its token (shown once) and the sessions it ended.
pub struct LoggedIn {
    pub session: SessionRecord,
    pub token: Token,
    pub ended: Vec<(SessionId, EndReason)>,
}

/// One page of the Session Management list.
pub struct Listing {
    pub items: Vec<SessionRecord>,
    pub total: u64,
    pub next_cursor: Option<String>,
}

/// What a bulk delete did with each id sent, duplicates removed, in the order sent.
#[derive(Default)]
pub struct BulkOutcome {
    pub deleted: Vec<String>,
    pub not_found: Vec<String>,
    /// The caller's own session, which is never deleted this way.
    pub refused_own: Vec<String>,
}

/// An administrator acting on sessions: who it is and what it may reach.
pub struct Acting<'a> {
    pub admin: &'a SessionData,
    pub scope: &'a Scope,
    pub now: Millis,
}

fn no_such_session() -> ApiError {
    ApiError::not_found("no such session")
}

impl Sessions {
    pub fn new(
        store: SharedStore,
        rules: LoginRules,
        server_name: String,
        idle_timeout: u32,
        audit: Arc<AuditLog>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sessions {
            store,
            rules,
            server_name,
            idle_timeout,
            audit,
            metrics,
            census: Mutex::new(None),
        }
    }

    /// The store, for start-up and for tests that look inside it.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Logs a user in under the server's concurrent-session policy. A denied login is audited
    /// and counted.
    pub async fn log_in(&self, request: NewSessionRequest) -> Result<LoggedIn, ApiError> {
        let defaults = Defaults {
            server_name: &self.server_name,
            timeout_seconds: self.idle_timeout,
        };
        let session = NewSession::parse(request, &defaults).map_err(ApiError::invalid)?;
        // Kept (as shared pointers) only to describe a denied login in the audit trail.
        let attempt = (
            session.user_id.clone(),
            session.organisation.clone(),
            session.ip_address,
            session.server_name.clone(),
            holds_admin(&session.roles),
        );
        let token = Token::issue();
        let insert = Insert {
            id: token.id(),
            digest: token.digest(),
            session,
        };
        match self.store.create(insert, self.rules, Millis::now()).await {
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
            Err(StoreError::LoginDenied(blocking)) => {
                self.metrics.logins_denied.inc();
                let (user_id, organisation, ip_address, server_name, holds_admin) = attempt;
                let subject = Subject {
                    id: None,
                    user_id: user_id.to_string(),
                    organisation: organisation.to_string(),
                    ip_address,
                    server_name: server_name.to_string(),
                    holds_admin,
                };
                self.audit
                    .login_denied(subject, blocking.iter().map(|b| b.ip_address).collect());
                Err(StoreError::LoginDenied(blocking).into())
            }
            Err(e) => Err(e.into()),
        }
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
        let ended = self.store.delete(&[own], &Scope::All, now).await?;
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
        let page = self.store.list(&query, scope, now).await?;
        let next_cursor = match (page.more, page.items.last()) {
            (true, Some(last)) => Some(query.cursor_after(&Position::of(&query, last))),
            _ => None,
        };
        Ok(Listing {
            items: page.items,
            total: page.total,
            next_cursor,
        })
    }

    /// A live session in `scope`, by the id as sent; anything else is `404`.
    pub async fn get(
        &self,
        id: &str,
        scope: &Scope,
        now: Millis,
    ) -> Result<SessionRecord, ApiError> {
        let id = SessionId::parse(id).ok_or_else(no_such_session)?;
        self.store
            .get(id, scope, now)
            .await?
            .ok_or_else(no_such_session)
    }

    /// Ends one session an administrator names; never the administrator's own.
    pub async fn end(&self, acting: &Acting<'_>, id: &str) -> Result<(), ApiError> {
        let id = SessionId::parse(id).ok_or_else(no_such_session)?;
        if id == acting.admin.id {
            return Err(ApiError::new(
                Code::OwnSession,
                "you cannot end your own session here; log out with DELETE /sessions/current",
            ));
        }
        let ended = self.store.delete(&[id], acting.scope, acting.now).await?;
        let record = ended.first().ok_or_else(no_such_session)?;
        self.audit
            .session_ended(acting.admin, &record.data, EndMethod::Single);
        self.metrics.ended(EndReason::Admin, 1);
        Ok(())
    }

    /// Ends the sessions an administrator names, in one store call, and says what happened to
    /// each id.
    pub async fn end_many(
        &self,
        acting: &Acting<'_>,
        requested: Vec<String>,
    ) -> Result<BulkOutcome, ApiError> {
        let own = acting.admin.id;
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
            .delete(&candidates, acting.scope, acting.now)
            .await?;
        for record in &records {
            self.audit
                .session_ended(acting.admin, &record.data, EndMethod::Bulk);
        }
        self.metrics.ended(EndReason::Admin, records.len());
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

    /// Live sessions by organisation and server, for the metrics. Counting reads every
    /// session, so a count is reused for [`CENSUS_TTL`]: scrapes, however frequent, cost one
    /// scan that often at most.
    pub async fn census(&self, now: Millis) -> Result<Vec<Census>, ApiError> {
        if let Some((at, census)) = &*self.census.lock().unwrap_or_else(PoisonError::into_inner) {
            if at.elapsed() < CENSUS_TTL {
                return Ok(census.clone());
            }
        }
        let census = self.store.census(now).await?;
        *self.census.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), census.clone()));
        Ok(census)
    }

    /// Whether the store can serve requests now.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}
