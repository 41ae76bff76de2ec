//! Where sessions live. Every store offers the same operations, each one atomic: the HTTP layer
//! never composes two store calls into one rule.

mod memory;
mod outage;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::redis::{
    lua_prelude, Keys as RedisKeys, RedisClock, RedisLink, RedisOptions, RedisStore, RedisTarget,
};
pub use crate::domain::SavedSession;
pub use memory::MemoryStore;

pub use crate::domain::login::BlockingSession;
pub use crate::domain::LoginRules;
use crate::domain::{
    Amendment, EndReason, ListQuery, Millis, NewSession, PresentedToken, Scope, SessionId,
    SessionRecord, Stopped, TokenDigest,
};
pub use crate::error::StoreError;
use crate::events::{EventId, Hub};

/// A store behind a shared pointer, as the application holds it.
pub type SharedStore = Arc<dyn SessionStore>;

/// A login that went through: the new session, and the sessions it ended, with why.
#[derive(Debug)]
pub struct Created {
    pub session: SessionRecord,
    pub ended: Vec<(SessionId, EndReason)>,
}

/// A session to insert, with its server-made id and the digest of its token's secret.
pub struct Insert {
    pub id: SessionId,
    pub digest: TokenDigest,
    pub session: NewSession,
}

/// What a store's consistency check found.
#[derive(Debug, PartialEq, Eq)]
pub struct IndexReport {
    /// Sessions stored.
    pub rows: usize,
    pub by_id: usize,
    /// Entries of the user index, over all users.
    pub by_user: usize,
    /// Index entries that point at no session, or at one with another key.
    pub orphans: usize,
}

/// How many live sessions one organisation has on one server, held with role `admin` or not
/// (an `org_admin` counts only those without, as it lists only those).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    pub organisation: Arc<str>,
    pub server_name: Arc<str>,
    pub admin: bool,
    pub sessions: u64,
}

/// Distinct users with live sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    pub by_organisation: Vec<UserCount>,
    /// Over every organisation: a user on in two counts once.
    pub distinct: u64,
}

/// How many distinct users have live sessions in one organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCount {
    pub organisation: Arc<str>,
    pub users: u64,
    /// Those of them with a live session held without role `admin`: what an `org_admin` sees.
    pub outside_admin: u64,
}

/// A page of the session list.
pub struct Page {
    pub items: Vec<SessionRecord>,
    /// Every session that matches the filters, on every page.
    pub total: u64,
    /// Whether rows follow the last item.
    pub more: bool,
}

/// Sessions: the rules of logging in, validating and ending, each one atomic, and the events
/// of what changed.
#[async_trait]
pub trait SessionStore: SessionCounts + Send + Sync {
    /// The id of a new session of `user_id`: random; on a Redis cluster, it also names the
    /// slot the user's sessions live in, so that a token's selector leads there.
    fn new_session_id(&self, _user_id: &str) -> crate::domain::SessionId {
        crate::domain::SessionId::generate()
    }

    /// Applies the login rules and inserts, as one atomic step for the user.
    async fn create(
        &self,
        insert: Insert,
        rules: LoginRules,
        now: Millis,
    ) -> Result<Created, StoreError>;

    /// The live session a presented token names, if the token's secret is that session's,
    /// touched (its idle timeout slides). One lookup, by the token's selector.
    async fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Why `token`, which names no live session, stopped working: when its session ended in
    /// the last day (or the token was rotated), and only when its secret is the real one.
    async fn why_stopped(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<Stopped>, StoreError>;

    /// A live session in `scope`, untouched.
    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends the live sessions among `ids` that are in `scope`, for `reason`; returns those it
    /// ended.
    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Changes the live session `id` in place — only if `presented` is its current token's
    /// digest, when given (a rotation by its holder) — and says so with an event; returns the
    /// session as it is now, or `None` when there is no such live session.
    async fn amend(
        &self,
        id: SessionId,
        presented: Option<&TokenDigest>,
        amendment: Amendment,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// One page of the live sessions in `scope` that match the query.
    async fn list(&self, query: &ListQuery, scope: &Scope, now: Millis)
        -> Result<Page, StoreError>;

    /// Where the answers of `list` and the counts stand in the event stream: every event up
    /// to this id has its change in them (later ones may too, when they come while a list is
    /// read: following the events from here misses nothing).
    fn position(&self) -> EventId;

    /// Frees the memory of expired sessions; returns how many it removed.
    async fn reap(&self, now: Millis) -> Result<usize, StoreError>;

    /// Whether the store can serve requests now.
    async fn ping(&self) -> Result<(), StoreError>;

    /// From now on, sends the event of every change — made on this node, or (for a shared
    /// store) on any — to `hub`.
    fn publish_events(&self, hub: Arc<Hub>);

    /// The audit trail the store keeps for every node, if it keeps one (Redis).
    fn audit_trail(&self) -> Option<Arc<dyn AuditTrail>> {
        None
    }
}

/// Counting the live sessions, for the metrics, the summary and the seats.
#[async_trait]
pub trait SessionCounts {
    /// Live sessions counted by organisation, server name and role `admin`.
    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError>;

    /// How many distinct users have live sessions, by organisation and in all.
    async fn users(&self, now: Millis) -> Result<Users, StoreError>;

    /// How many distinct users have a live session in `organisation`: its seats in use.
    async fn seats_in_use(&self, organisation: &str, now: Millis) -> Result<u64, StoreError>;

    /// Counts sessions and index entries, and the entries that point nowhere.
    async fn check_indexes(&self) -> Result<IndexReport, StoreError>;
}

/// An audit trail kept for every node (in Redis), holding its newest records.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Appends a record (JSON), keeping the newest `capacity`; returns the record's id there.
    async fn append(&self, record: &str, capacity: usize) -> Result<String, StoreError>;

    /// Up to `count` records, newest first, from before the entry `before` (or the newest),
    /// each with its entry's id.
    async fn before(
        &self,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;
}
