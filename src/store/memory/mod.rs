//! The embedded store: sessions in 64 independently locked shards, users in a [`DashMap`], and
//! no lock over the whole store on any request path.
//!
//! - A session's shard is chosen by its id, which a token carries as its selector: validation
//!   read-locks one shard, finds the row by id and compares the secret's digest in constant
//!   time. It never waits for a login of another shard, nor for a listing, which read-locks one
//!   shard at a time.
//! - Each user's entry in `users` heads a doubly linked chain of that user's rows. Every rule
//!   about one user (the concurrent-session policy's check-and-insert, replacing, unlinking) runs
//!   under that entry's lock, so it is atomic for that user and logins of other users proceed in
//!   parallel. Unlinking a row is O(1); only a login walks its user's chain.
//! - Rows sit contiguously in each shard, with user id and name inline (`CompactString`: no heap
//!   pointer for texts up to 24 bytes), so a listing scans memory in order; shards are scanned in
//!   parallel, each keeping a bounded top-k heap, then merged.
//! - Organisations, server names, user agents and role sets — few distinct values shared by many
//!   sessions — are interned by each shard for its own rows: a row holds 4-byte numbers, and
//!   reading a session's values needs nothing beyond its shard's lock. (A shard keeps its own
//!   copy of each value, so threads reading different shards share no reference counts.)
//!
//! Locks are always taken in one order: a user's entry, then shards one at a time; no code
//! holds a shard while it waits for a user's entry.

mod amend;
mod census;
mod chains;
mod changes;
mod check;
mod ends;
mod interner;
mod listing;
mod login;
mod replica;
mod rows;
mod seats;
mod stopped;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use compact_str::CompactString;
use dashmap::DashMap;
use hashbrown::DefaultHashBuilder;

use self::chains::UserChain;
use self::changes::Changes;
use self::rows::{shard_of, Row, Shard, SHARDS};
use self::seats::Seats;
use super::{
    Census, Created, IndexReport, Insert, LoginRules, Page, SessionCounts, SessionStore,
    StoreError, Users,
};
use crate::domain::{
    Amendment, Authentication, EndReason, ListQuery, Millis, PresentedToken, SavedSession, Scope,
    SessionId, SessionRecord, Stopped, TokenDigest,
};
use crate::events::{EventId, Hub};
use crate::persistence::journal::Journal;

/// The embedded store, shared with the threads a listing runs on.
pub struct MemoryStore {
    engine: Arc<Engine>,
}

/// The storage engine behind [`MemoryStore`]: its operations are spread over this folder's
/// modules by concern (login, ends, listing, census, replica), and every change they make is
/// said through [`Changes`].
struct Engine {
    shards: Box<[RwLock<Shard>]>,
    users: DashMap<CompactString, UserChain, DefaultHashBuilder>,
    seats: Seats,
    max_lifetime_seconds: u64,
    changes: Changes,
}

impl MemoryStore {
    pub fn new(max_lifetime_seconds: u64) -> Self {
        Self::with_capacity(max_lifetime_seconds, 0)
    }

    /// A store with room for `sessions` already made (a restore then grows nothing).
    pub fn with_capacity(max_lifetime_seconds: u64, sessions: usize) -> Self {
        MemoryStore {
            engine: Arc::new(Engine::new(max_lifetime_seconds, sessions)),
        }
    }

    /// Every live session with its token digest, for a snapshot.
    pub fn export(&self, now: Millis) -> Vec<SavedSession> {
        self.engine.export(now)
    }

    /// Inserts saved sessions that are still live and whose id is not taken, in parallel;
    /// returns how many it inserted.
    pub fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.engine.import(saved, now)
    }

    /// Restores `saved` (those still live) into an empty store that serves nothing yet:
    /// start-up, after recovery. Faster than [`MemoryStore::import`]; returns how many.
    pub fn restore(&self, saved: &[SavedSession], now: Millis) -> usize {
        self.engine.restore(saved, now)
    }

    /// Replaces every session with `saved` (the live ones): a replica catching up with its
    /// source.
    pub fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.engine.replace_all(saved, now)
    }

    /// Remembers why these tokens stopped (found in the journal at start-up), as of `now`.
    pub fn remember_stopped(&self, stopped: &[(SessionId, TokenDigest, Stopped)], now: Millis) {
        for (id, digest, why) in stopped {
            self.engine.changes.stopped.record(*id, digest, *why, now);
        }
    }

    /// Records activity seen elsewhere; time never moves backwards.
    pub fn touch(&self, id: SessionId, at: Millis) {
        self.engine.touch(id, at)
    }

    /// Takes a session's new state from elsewhere (a replica following a change made on
    /// another node): its token, authentication and client address.
    pub fn amend(&self, saved: &SavedSession, now: Millis) {
        let data = &saved.data;
        let amendment = Amendment {
            digest: Some(saved.digest),
            authentication: Some(Authentication {
                at: data.authenticated_at,
                assurance_level: data.assurance_level,
                timeout_seconds: data.timeout_seconds,
                reauthenticate_by: data.reauthenticate_by,
            }),
            last_ip_address: Some(data.last_ip_address),
            report: false,
        };
        self.engine.amend(data.id, None, &amendment, now);
        self.engine.touch(data.id, saved.last_active_at);
    }

    /// Removes sessions ended elsewhere, live or not.
    pub fn forget(&self, ids: &[SessionId]) {
        self.engine.forget(ids)
    }

    /// From now on, journals every change before it is acknowledged.
    pub fn journal_to(&self, journal: Arc<Journal>) {
        self.engine.changes.journal_to(journal);
    }

    /// Journals the activity of sessions active since `since`: the last-active times that a
    /// crash would otherwise take back.
    pub fn journal_activity(&self, since: Millis) -> usize {
        let Some(journal) = self.engine.changes.journal() else {
            return 0;
        };
        let active = self.engine.active_since(since);
        journal.activity(&active);
        active.len()
    }

    /// Runs `work`, which reads every session for milliseconds, on the blocking pool, so that
    /// the other requests of this worker (validations) go on meanwhile.
    async fn off_the_event_loop<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let engine = self.engine.clone();
        actix_web::rt::task::spawn_blocking(move || work(&engine))
            .await
            .map_err(|e| StoreError::Unavailable(format!("{what} failed: {e}")))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(
        &self,
        insert: Insert,
        rules: LoginRules,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let created = self.engine.create(insert, rules, now)?;
        self.engine
            .changes
            .acknowledged(!created.ended.is_empty())
            .await?;
        Ok(created)
    }

    async fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.engine.authenticate(token, now))
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.engine.get(id, scope, now))
    }

    async fn why_stopped(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<Stopped>, StoreError> {
        Ok(self.engine.why_stopped(token, now))
    }

    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let ended = self.engine.delete(ids, scope, now, reason);
        self.engine.changes.acknowledged(!ended.is_empty()).await?;
        Ok(ended)
    }

    async fn amend(
        &self,
        id: SessionId,
        presented: Option<&TokenDigest>,
        amendment: Amendment,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let amended = self.engine.amend(id, presented, &amendment, now);
        // A new token ends the old one: acknowledged only once it is on disk.
        self.engine
            .changes
            .acknowledged(amended.is_some() && amendment.digest.is_some())
            .await?;
        Ok(amended)
    }

    async fn list(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let (query, scope) = (query.clone(), scope.clone());
        self.off_the_event_loop("the listing", move |engine| {
            engine.list(&query, &scope, now)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        Ok(self.engine.reap(now))
    }

    fn publish_events(&self, hub: Arc<Hub>) {
        self.engine.changes.publish_events(hub);
    }

    fn position(&self) -> EventId {
        self.engine.changes.position()
    }
}

#[async_trait]
impl SessionCounts for MemoryStore {
    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        self.off_the_event_loop("the census", move |engine| engine.census(now))
            .await
    }

    async fn users(&self, now: Millis) -> Result<Users, StoreError> {
        self.off_the_event_loop("the count", move |engine| engine.users(now))
            .await
    }

    async fn seats_in_use(&self, organisation: &str, now: Millis) -> Result<u64, StoreError> {
        Ok(self.engine.seats_in_use(organisation, now) as u64)
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        Ok(self.engine.check_indexes())
    }
}

impl Engine {
    fn new(max_lifetime_seconds: u64, capacity: usize) -> Self {
        Engine {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Shard::with_capacity(capacity / SHARDS)))
                .collect(),
            users: DashMap::with_capacity_and_hasher_and_shard_amount(
                capacity,
                DefaultHashBuilder::default(),
                SHARDS,
            ),
            seats: Seats::default(),
            max_lifetime_seconds,
            changes: Changes::default(),
        }
    }

    // A panic while holding a shard cannot leave a half-applied change behind (every change
    // finishes its index updates before anything can panic), so a poisoned lock is still sound.
    fn shard(&self, n: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[n]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn shard_mut(&self, n: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[n]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self, row: &Row, now: Millis) -> bool {
        now < row.expires_at(self.max_lifetime_seconds)
    }

    /// The live session a token names, touched: one shard read and a constant-time compare.
    fn authenticate(&self, token: &PresentedToken, now: Millis) -> Option<SessionRecord> {
        let rows = self.shard(shard_of(token.id));
        let row = rows.row(rows.slot_of(token.id)?);
        if !row.digest.matches(&token.digest) || !self.live(row, now) {
            return None;
        }
        row.last_active_at.fetch_max(now.0, Relaxed);
        Some(rows.record(row, self.max_lifetime_seconds))
    }

    /// Why a token that validates no more stopped working, told only to the real secret's
    /// holder: expired (its row is still here), or what the record of ends says.
    fn why_stopped(&self, token: &PresentedToken, now: Millis) -> Option<Stopped> {
        {
            let rows = self.shard(shard_of(token.id));
            if let Some(slot) = rows.slot_of(token.id) {
                let row = rows.row(slot);
                if row.digest.matches(&token.digest) {
                    return (!self.live(row, now)).then_some(Stopped::Expired);
                }
            }
        }
        self.changes.stopped.why(token, now)
    }

    fn get(&self, id: SessionId, scope: &Scope, now: Millis) -> Option<SessionRecord> {
        let rows = self.shard(shard_of(id));
        let row = rows.row(rows.slot_of(id)?);
        (self.live(row, now) && rows.in_scope(row, scope))
            .then(|| rows.record(row, self.max_lifetime_seconds))
    }
}
