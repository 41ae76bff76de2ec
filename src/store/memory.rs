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

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use compact_str::CompactString;
use dashmap::try_result::TryResult;
use dashmap::DashMap;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use rayon::prelude::*;

use super::{
    BlockingSession, Census, Created, IndexReport, Insert, LoginRules, Page, SessionStore,
    StoreError, UserCount, Users,
};
use crate::domain::listing::{Bigrams, Search};
use crate::domain::session::{expires_at, holds_admin};
use crate::domain::{
    ConcurrentSessions, EndReason, ListQuery, Millis, Order, PresentedToken, Scope, SessionData,
    SessionId, SessionRecord, SortField, SortKey, TokenDigest,
};
use crate::events::{Change, CreatedSession, Denied, DenyReason, Ended, Hub};

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
const SLOT_BITS: u32 = 32 - SHARD_BITS;
/// An absent interned value (a session without a user agent).
const NO_VALUE: u32 = u32::MAX;

/// A session as a snapshot keeps it.
#[derive(Debug)]
pub struct SavedSession {
    pub digest: TokenDigest,
    pub data: SessionData,
    pub last_active_at: Millis,
}

/// Where a row is: its shard and its slot there, in one `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RowRef(u32);

impl RowRef {
    /// The end of a user's chain.
    const END: RowRef = RowRef(u32::MAX);

    fn new(shard: usize, slot: u32) -> Self {
        RowRef(((shard as u32) << SLOT_BITS) | slot)
    }

    fn shard(self) -> usize {
        (self.0 >> SLOT_BITS) as usize
    }

    fn slot(self) -> u32 {
        self.0 & ((1 << SLOT_BITS) - 1)
    }
}

fn shard_of(id: SessionId) -> usize {
    (id.as_u128() as usize) & (SHARDS - 1)
}

// Ids are uniformly random: their own bits are the hash (mixed, so the shard bits do not repeat
// in the hash of every row of a shard).
fn id_hash(id: SessionId) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64).rotate_left(32)
}

fn id_halves(id: SessionId) -> [u64; 2] {
    let v = id.as_u128();
    [(v >> 64) as u64, v as u64]
}

struct Row {
    /// The session id, as two halves (a `u128` would force 16-byte alignment on every row).
    id: [u64; 2],
    digest: TokenDigest,
    user_id: CompactString,
    name: CompactString,
    created_at: u64,
    /// Raised in place by validation, under the shard's read lock.
    last_active_at: AtomicU64,
    ip_address: IpAddr,
    organisation: u32,
    server_name: u32,
    roles: u32,
    user_agent: u32,
    timeout_seconds: u32,
    previous_of_user: RowRef,
    next_of_user: RowRef,
    /// Byte pairs of name, user id and address, so a search passes over most rows unread.
    bigrams: Bigrams,
}

impl Row {
    fn id(&self) -> SessionId {
        SessionId::from_u128((u128::from(self.id[0]) << 64) | u128::from(self.id[1]))
    }

    fn last_active_at(&self) -> Millis {
        Millis(self.last_active_at.load(Relaxed))
    }

    fn expires_at(&self, max_lifetime_seconds: u64) -> Millis {
        expires_at(
            self.last_active_at(),
            self.timeout_seconds,
            Millis(self.created_at),
            max_lifetime_seconds,
        )
    }
}

/// One shard: rows in a contiguous vector, found by id through a slot-only hash table, and
/// the shared values its rows use.
#[derive(Default)]
struct Shard {
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    /// Organisations and server names.
    labels: Interner<Arc<str>>,
    agents: Interner<Arc<str>>,
    role_sets: Interner<Arc<[Arc<str>]>>,
}

impl Shard {
    fn row(&self, slot: u32) -> &Row {
        self.rows[slot as usize]
            .as_ref()
            .expect("the index and chains point only at occupied slots")
    }

    fn row_mut(&mut self, slot: u32) -> &mut Row {
        self.rows[slot as usize]
            .as_mut()
            .expect("the index and chains point only at occupied slots")
    }

    fn slot_of(&self, id: SessionId) -> Option<u32> {
        let halves = id_halves(id);
        self.by_id
            .find(id_hash(id), |&s| self.row(s).id == halves)
            .copied()
    }

    fn data(&self, row: &Row) -> SessionData {
        SessionData {
            id: row.id(),
            user_id: row.user_id.as_str().into(),
            name: row.name.as_str().into(),
            organisation: self.labels.get(row.organisation).clone(),
            ip_address: row.ip_address,
            server_name: self.labels.get(row.server_name).clone(),
            roles: self.role_sets.get(row.roles).clone(),
            user_agent: (row.user_agent != NO_VALUE)
                .then(|| self.agents.get(row.user_agent).clone()),
            timeout_seconds: row.timeout_seconds,
            created_at: Millis(row.created_at),
        }
    }

    fn record(&self, row: &Row, max_lifetime_seconds: u64) -> SessionRecord {
        SessionRecord {
            data: self.data(row),
            last_active_at: row.last_active_at(),
            expires_at: row.expires_at(max_lifetime_seconds),
        }
    }

    /// Stores a session, interning its shared values here; returns its slot.
    fn insert(
        &mut self,
        data: &SessionData,
        digest: TokenDigest,
        last_active_at: Millis,
        next_of_user: RowRef,
    ) -> u32 {
        let ip = data.ip_address.to_string();
        let row = Row {
            bigrams: Bigrams::of(&[&data.user_id, &data.name, &ip]),
            id: id_halves(data.id),
            digest,
            user_id: CompactString::from(&*data.user_id),
            name: CompactString::from(&*data.name),
            created_at: data.created_at.0,
            last_active_at: AtomicU64::new(last_active_at.0),
            ip_address: data.ip_address,
            organisation: self.labels.acquire(&data.organisation),
            server_name: self.labels.acquire(&data.server_name),
            roles: self.role_sets.acquire(&data.roles),
            user_agent: data
                .user_agent
                .as_ref()
                .map_or(NO_VALUE, |ua| self.agents.acquire(ua)),
            timeout_seconds: data.timeout_seconds,
            previous_of_user: RowRef::END,
            next_of_user,
        };
        let hash = id_hash(data.id);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.rows[slot as usize] = Some(row);
                slot
            }
            None => {
                self.rows.push(Some(row));
                (self.rows.len() - 1) as u32
            }
        };
        let rows = &self.rows;
        self.by_id.insert_unique(hash, slot, |&s| {
            id_hash(rows[s as usize].as_ref().expect("occupied").id())
        });
        slot
    }

    /// Removes a row; returns it with its organisation (whose interned number it no longer
    /// holds).
    fn remove(&mut self, slot: u32) -> (Row, Arc<str>) {
        let id = self.row(slot).id();
        if let Ok(entry) = self.by_id.find_entry(id_hash(id), |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        let row = self.rows[slot as usize].take().expect("occupied");
        let organisation = self.labels.get(row.organisation).clone();
        self.labels.release(row.organisation);
        self.labels.release(row.server_name);
        self.role_sets.release(row.roles);
        if row.user_agent != NO_VALUE {
            self.agents.release(row.user_agent);
        }
        (row, organisation)
    }

    fn occupied(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().flatten()
    }

    fn holds_admin(&self, row: &Row) -> bool {
        holds_admin(self.role_sets.get(row.roles))
    }

    fn in_scope(&self, row: &Row, scope: &Scope) -> bool {
        scope.admits(self.labels.get(row.organisation), self.holds_admin(row))
    }
}

/// The head of a user's chain of rows, and its length.
#[derive(Clone, Copy, Debug)]
struct UserChain {
    head: RowRef,
    count: u32,
}

/// A value a shard keeps its own copy of, so that no two shards share a reference count.
trait Local {
    fn local_copy(&self) -> Self;
}

impl Local for Arc<str> {
    fn local_copy(&self) -> Self {
        Arc::from(&**self)
    }
}

impl Local for Arc<[Arc<str>]> {
    fn local_copy(&self) -> Self {
        self.iter().map(Local::local_copy).collect()
    }
}

/// Interns values shared by many rows: each is kept once, with a count of the rows that use
/// it, and rows hold its number. Guarded by its shard's lock.
struct Interner<T> {
    index: HashMap<T, u32>,
    values: Vec<Option<(T, u32)>>,
    free: Vec<u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            index: HashMap::default(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone + Local> Interner<T> {
    fn acquire(&mut self, value: &T) -> u32 {
        if let Some(&n) = self.index.get(value) {
            if let Some((_, uses)) = &mut self.values[n as usize] {
                *uses += 1;
            }
            return n;
        }
        let value = value.local_copy();
        let entry = Some((value.clone(), 1));
        let n = match self.free.pop() {
            Some(n) => {
                self.values[n as usize] = entry;
                n
            }
            None => {
                self.values.push(entry);
                (self.values.len() - 1) as u32
            }
        };
        self.index.insert(value, n);
        n
    }

    fn release(&mut self, n: u32) {
        let Some(Some((value, uses))) = self.values.get_mut(n as usize) else {
            return;
        };
        *uses -= 1;
        if *uses == 0 {
            self.index.remove(value);
            self.values[n as usize] = None;
            self.free.push(n);
        }
    }

    fn get(&self, n: u32) -> &T {
        &self.values[n as usize]
            .as_ref()
            .expect("rows refer only to values in use")
            .0
    }

    fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(value).copied()
    }
}

/// The embedded store, shared with the threads a listing runs on.
pub struct MemoryStore {
    store: Arc<Store>,
}

struct Store {
    shards: Box<[RwLock<Shard>]>,
    users: DashMap<CompactString, UserChain, DefaultHashBuilder>,
    /// Per organisation, its users and how many sessions each has there: the seats taken.
    /// Counted as sessions are stored and removed; an expired session counts until the reaper
    /// removes it, so a full organisation is checked for live sessions before it refuses.
    seats: DashMap<CompactString, HashMap<CompactString, u32>, DefaultHashBuilder>,
    max_lifetime_seconds: u64,
    /// Where the events of changes go, once set (a replica's changes are not its own).
    events: OnceLock<Arc<Hub>>,
}

impl MemoryStore {
    pub fn new(max_lifetime_seconds: u64) -> Self {
        MemoryStore {
            store: Arc::new(Store::new(max_lifetime_seconds)),
        }
    }

    /// Every live session with its token digest, for a snapshot.
    pub fn export(&self, now: Millis) -> Vec<SavedSession> {
        self.store.export(now)
    }

    /// Inserts saved sessions that are still live and whose id is not taken, in parallel;
    /// returns how many it inserted.
    pub fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.store.import(saved, now)
    }

    /// Replaces every session with `saved` (the live ones): a replica catching up with its
    /// source.
    pub fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.store.replace_all(saved, now)
    }

    /// Records activity seen elsewhere; time never moves backwards.
    pub fn touch(&self, id: SessionId, at: Millis) {
        self.store.touch(id, at)
    }

    /// Removes sessions ended elsewhere, live or not.
    pub fn forget(&self, ids: &[SessionId]) {
        self.store.forget(ids)
    }

    /// Runs `work`, which reads every session for milliseconds, on the blocking pool, so that
    /// the other requests of this worker (validations) go on meanwhile.
    async fn off_the_event_loop<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        actix_web::rt::task::spawn_blocking(move || work(&store))
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
        self.store.create(insert, rules, now)
    }

    async fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.store.authenticate(token, now)
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.store.get(id, scope, now)
    }

    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.delete(ids, scope, now, reason)
    }

    async fn list(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let (query, scope) = (query.clone(), scope.clone());
        self.off_the_event_loop("the listing", move |store| store.list(&query, &scope, now))
            .await?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        self.off_the_event_loop("the census", move |store| store.census(now))
            .await
    }

    async fn users(&self, now: Millis) -> Result<Users, StoreError> {
        self.off_the_event_loop("the count", move |store| store.users(now))
            .await
    }

    async fn seats_in_use(&self, organisation: &str, now: Millis) -> Result<u64, StoreError> {
        let store = &self.store;
        Ok(store.seats.get(organisation).map_or(0, |seated| {
            store.live_seats(organisation, &seated, now) as u64
        }))
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        self.store.check_indexes()
    }

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        self.store.reap(now)
    }

    fn publish_events(&self, hub: Arc<Hub>) {
        if self.store.events.set(hub).is_err() {
            log::warn!("the memory store's events already go to a hub");
        }
    }
}

/// The event of a login `data` that was refused for `reason`.
fn denied(data: &SessionData, reason: DenyReason) -> Change {
    Change::Denied(Denied {
        user_id: CompactString::from(&*data.user_id),
        organisation: CompactString::from(&*data.organisation),
        ip_address: data.ip_address,
        reason,
        holds_admin: data.holds_admin(),
    })
}

impl Store {
    fn new(max_lifetime_seconds: u64) -> Self {
        Store {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            users: DashMap::with_hasher_and_shard_amount(DefaultHashBuilder::default(), SHARDS),
            seats: DashMap::with_hasher_and_shard_amount(DefaultHashBuilder::default(), SHARDS),
            max_lifetime_seconds,
            events: OnceLock::new(),
        }
    }

    /// The hub, if there is one and anyone reads its events.
    fn hub(&self) -> Option<&Hub> {
        self.events
            .get()
            .map(|hub| &**hub)
            .filter(|hub| hub.wanted())
    }

    /// Passes a change to the hub, if it is wanted; `change` is only made then.
    fn emit(&self, now: Millis, change: impl FnOnce() -> Change) {
        if let Some(hub) = self.hub() {
            hub.publish(change(), now);
        }
    }

    /// Unlinks the row at `at`, which ended for `reason`, and says so. The caller holds the
    /// user's entry.
    fn end_linked(
        &self,
        chain: &mut UserChain,
        at: RowRef,
        reason: EndReason,
        now: Millis,
    ) -> SessionId {
        let ended = self.hub().map(|_| {
            let rows = self.shard(at.shard());
            let row = rows.row(at.slot());
            Ended {
                id: row.id(),
                user_id: row.user_id.clone(),
                organisation: CompactString::from(&**rows.labels.get(row.organisation)),
                server_name: CompactString::from(&**rows.labels.get(row.server_name)),
                reason,
                holds_admin: rows.holds_admin(row),
            }
        });
        let id = self.unlink(chain, at);
        if let Some(ended) = ended {
            self.emit(now, || Change::Ended(ended));
        }
        id
    }

    /// Counts one more (`true`) or one fewer session of `user` in `organisation`.
    fn count_seat(&self, organisation: &str, user: &str, more: bool) {
        if more {
            *self
                .seats
                .entry(CompactString::from(organisation))
                .or_default()
                .entry(CompactString::from(user))
                .or_default() += 1;
            return;
        }
        let Some(mut users) = self.seats.get_mut(organisation) else {
            return;
        };
        if let Some(count) = users.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                users.remove(user);
            }
        }
        let empty = users.is_empty();
        drop(users);
        if empty {
            self.seats
                .remove_if(organisation, |_, users| users.is_empty());
        }
    }

    /// How many of `seated` have a live session in `organisation` now. A user whose entry is
    /// busy (logging in this very moment) counts as seated.
    fn live_seats(
        &self,
        organisation: &str,
        seated: &HashMap<CompactString, u32>,
        now: Millis,
    ) -> usize {
        seated
            .keys()
            .filter(|user| match self.users.try_get(user.as_str()) {
                TryResult::Absent => false,
                TryResult::Locked => true,
                TryResult::Present(chain) => self.chain(&chain).into_iter().any(|at| {
                    let rows = self.shard(at.shard());
                    let row = rows.row(at.slot());
                    self.live(row, now) && &**rows.labels.get(row.organisation) == organisation
                }),
            })
            .count()
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

    /// Stores a session at the head of its user's chain. The caller holds the user's entry.
    fn link(
        &self,
        chain: &mut UserChain,
        data: &SessionData,
        digest: TokenDigest,
        last_active_at: Millis,
        seat_counted: bool,
    ) -> RowRef {
        if !seat_counted {
            self.count_seat(&data.organisation, &data.user_id, true);
        }
        let shard = shard_of(data.id);
        let slot = self
            .shard_mut(shard)
            .insert(data, digest, last_active_at, chain.head);
        let at = RowRef::new(shard, slot);
        if chain.head != RowRef::END {
            self.shard_mut(chain.head.shard())
                .row_mut(chain.head.slot())
                .previous_of_user = at;
        }
        chain.head = at;
        chain.count += 1;
        at
    }

    /// Removes the row at `at` from its shard and its user's chain, in O(1). The caller holds
    /// the user's entry.
    fn unlink(&self, chain: &mut UserChain, at: RowRef) -> SessionId {
        let (row, organisation) = self.shard_mut(at.shard()).remove(at.slot());
        self.count_seat(&organisation, &row.user_id, false);
        let (previous, next) = (row.previous_of_user, row.next_of_user);
        if previous == RowRef::END {
            chain.head = next;
        } else {
            self.shard_mut(previous.shard())
                .row_mut(previous.slot())
                .next_of_user = next;
        }
        if next != RowRef::END {
            self.shard_mut(next.shard())
                .row_mut(next.slot())
                .previous_of_user = previous;
        }
        chain.count -= 1;
        row.id()
    }

    /// The rows of a user's chain. The caller holds the user's entry.
    fn chain(&self, chain: &UserChain) -> Vec<RowRef> {
        let mut rows = Vec::with_capacity(chain.count as usize);
        let mut at = chain.head;
        while at != RowRef::END {
            rows.push(at);
            at = self.shard(at.shard()).row(at.slot()).next_of_user;
        }
        rows
    }

    /// Ends the session `id` if `admits` its row; returns it as it was.
    fn end(&self, id: SessionId, admits: impl Fn(&Shard, &Row) -> bool) -> Option<SessionRecord> {
        let shard = shard_of(id);
        let user = {
            let rows = self.shard(shard);
            let row = rows.row(rows.slot_of(id)?);
            if !admits(&rows, row) {
                return None;
            }
            row.user_id.clone()
        };
        let mut chain = self.users.get_mut(&user)?;
        // Looked up again under the user's entry: a concurrent end may have come first.
        let (at, record) = {
            let rows = self.shard(shard);
            let slot = rows.slot_of(id)?;
            (
                RowRef::new(shard, slot),
                rows.record(rows.row(slot), self.max_lifetime_seconds),
            )
        };
        self.unlink(&mut chain, at);
        let empty = chain.count == 0;
        drop(chain);
        if empty {
            self.users.remove_if(&user, |_, chain| chain.count == 0);
        }
        Some(record)
    }

    /// Inserts a saved session unless it has expired or its id is taken.
    fn insert_saved(&self, saved: &SavedSession, now: Millis) -> bool {
        let data = &saved.data;
        if now >= data.expires_at(saved.last_active_at, self.max_lifetime_seconds) {
            return false;
        }
        let mut chain = self
            .users
            .entry(CompactString::from(&*data.user_id))
            .or_insert(UserChain {
                head: RowRef::END,
                count: 0,
            });
        // Checked under the user's entry: a session's id and user never change.
        if self.shard(shard_of(data.id)).slot_of(data.id).is_some() {
            return false;
        }
        self.link(&mut chain, data, saved.digest, saved.last_active_at, false);
        true
    }

    fn export(&self, now: Millis) -> Vec<SavedSession> {
        (0..SHARDS)
            .into_par_iter()
            .flat_map_iter(|n| {
                let rows = self.shard(n);
                rows.occupied()
                    .filter(|row| self.live(row, now))
                    .map(|row| SavedSession {
                        digest: row.digest,
                        data: rows.data(row),
                        last_active_at: row.last_active_at(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        saved
            .par_iter()
            .filter(|s| self.insert_saved(s, now))
            .count()
    }

    fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.users.clear();
        for n in 0..SHARDS {
            *self.shard_mut(n) = Shard::default();
        }
        self.import(saved, now)
    }

    fn touch(&self, id: SessionId, at: Millis) {
        let rows = self.shard(shard_of(id));
        if let Some(slot) = rows.slot_of(id) {
            rows.row(slot).last_active_at.fetch_max(at.0, Relaxed);
        }
    }

    fn forget(&self, ids: &[SessionId]) {
        for &id in ids {
            self.end(id, |_, _| true);
        }
    }

    /// Ranks rows of one shard for `plan`.
    fn rank<'a>(
        &self,
        plan: &Plan,
        shard: &'a Shard,
        rows: impl Iterator<Item = &'a Row>,
    ) -> Ranking {
        let mut best: BinaryHeap<Candidate> = BinaryHeap::with_capacity(plan.wanted + 1);
        let mut total = 0u64;
        // The filters' values as this shard numbers them; one it does not have matches nothing.
        let number = |name: Option<&str>| match name {
            None => Some(None),
            Some(name) => shard.labels.find(name).map(Some),
        };
        let (Some(organisation), Some(server_name)) = (
            number(plan.organisation.as_deref()),
            number(plan.query.filters.server_name.as_deref()),
        ) else {
            return Ranking {
                total,
                best: Vec::new(),
            };
        };
        let f = &plan.query.filters;
        for row in rows {
            let matches = organisation.is_none_or(|o| row.organisation == o)
                && server_name.is_none_or(|s| row.server_name == s)
                && f.ip_address.is_none_or(|ip| ip == row.ip_address)
                && f.user_id
                    .as_deref()
                    .is_none_or(|u| row.user_id.as_str() == u)
                && !(plan.without_admins && shard.holds_admin(row))
                && plan.search.as_ref().is_none_or(|q| {
                    row.bigrams.may_contain(q.bigrams)
                        && (q.in_text(&row.name)
                            || q.in_text(&row.user_id)
                            || q.in_ip(row.ip_address))
                });
            if !matches || !self.live(row, plan.now) {
                continue;
            }
            total += 1;
            let key = plan.key(shard, row);
            let id = row.id();
            if let Some((after_key, after_id)) = &plan.after {
                if plan
                    .query
                    .compare((&key, id), (&after_key.borrowed(), *after_id))
                    != Ordering::Greater
                {
                    continue;
                }
            }
            if best.len() == plan.wanted {
                let worst = best.peek().expect("the heap is full");
                if plan
                    .query
                    .compare((&key, id), (&worst.key.borrowed(), worst.id))
                    != Ordering::Less
                {
                    continue;
                }
                best.pop();
            }
            best.push(Candidate {
                key: key.map_text(|text| CompactString::from(text)),
                id,
                order: plan.query.order,
            });
        }
        Ranking {
            total,
            best: best.into_vec(),
        }
    }
}

/// What one listing looks for, resolved once before any row is read.
struct Plan<'q> {
    query: &'q ListQuery,
    now: Millis,
    wanted: usize,
    /// The organisation in scope: the caller's own, or the filter's.
    organisation: Option<Arc<str>>,
    after: Option<(SortKey, SessionId)>,
    search: Option<Search<'q>>,
    /// Whether sessions holding `admin` are out of the caller's scope.
    without_admins: bool,
}

impl Plan<'_> {
    fn key<'a>(&self, shard: &'a Shard, row: &'a Row) -> SortKey<&'a str> {
        match self.query.sort {
            SortField::Name => SortKey::Text(row.name.as_str()),
            SortField::Organisation => SortKey::Text(shard.labels.get(row.organisation)),
            SortField::ServerName => SortKey::Text(shard.labels.get(row.server_name)),
            SortField::IpAddress => SortKey::Ip(row.ip_address),
            SortField::Timeout => SortKey::Number(u64::from(row.timeout_seconds)),
            // Newest first is the smallest session time.
            SortField::SessionTime => SortKey::Number(u64::MAX - row.created_at),
            SortField::LastActive => SortKey::Number(row.last_active_at().0),
        }
    }
}

/// The matches of one shard: how many, and the best `limit + 1` of them.
struct Ranking {
    total: u64,
    best: Vec<Candidate>,
}

/// A row competing for a place on the page; `Ord` is the listing's order.
struct Candidate {
    key: SortKey<CompactString>,
    id: SessionId,
    order: Order,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        let natural = self.key.cmp(&other.key).then(self.id.cmp(&other.id));
        match self.order {
            Order::Asc => natural,
            Order::Desc => natural.reverse(),
        }
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The store's operations, each atomic as [`SessionStore`] describes.
impl Store {
    fn create(
        &self,
        insert: Insert,
        rules: LoginRules,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let Insert {
            id,
            digest,
            session,
        } = insert;
        let data = session.into_data(id, now);
        // The user's entry is held until the login is decided and stored: for this user the
        // policy's check and the insert are one step.
        let mut chain = self
            .users
            .entry(CompactString::from(&*data.user_id))
            .or_insert(UserChain {
                head: RowRef::END,
                count: 0,
            });
        // The user's live sessions; expired ones go now.
        let mut live: Vec<Live> = Vec::new();
        for at in self.chain(&chain) {
            let found = {
                let rows = self.shard(at.shard());
                let row = rows.row(at.slot());
                self.live(row, now).then(|| {
                    let blocking = BlockingSession {
                        id: row.id(),
                        ip_address: row.ip_address,
                        server_name: rows.labels.get(row.server_name).clone(),
                    };
                    Live {
                        at,
                        blocking,
                        last_active: row.last_active_at(),
                        here: **rows.labels.get(row.organisation) == *data.organisation,
                    }
                })
            };
            match found {
                Some(session) => live.push(session),
                None => {
                    self.end_linked(&mut chain, at, EndReason::Expired, now);
                }
            }
        }
        if rules.policy == ConcurrentSessions::DenyOtherIp
            && live
                .iter()
                .any(|l| l.blocking.ip_address != data.ip_address)
        {
            self.emit(now, || denied(&data, DenyReason::OtherIp));
            return Err(StoreError::LoginDenied(
                live.into_iter().map(|l| l.blocking).collect(),
            ));
        }
        // A user new to a limited organisation takes a seat: decided before anything ends, and
        // counted before the organisation's entry is let go, so racing logins see it.
        let mut seat_counted = false;
        if let Some(limit) = rules.seats {
            if !live.iter().any(|l| l.here) {
                let organisation = CompactString::from(&*data.organisation);
                let mut seated = self.seats.entry(organisation).or_default();
                let full = seated.len() >= limit as usize
                    && self.live_seats(&data.organisation, &seated, now) >= limit as usize;
                if full && !seated.contains_key(&*data.user_id) {
                    self.emit(now, || denied(&data, DenyReason::SeatLimit));
                    return Err(StoreError::SeatLimit {
                        organisation: data.organisation.clone(),
                        limit,
                    });
                }
                *seated
                    .entry(CompactString::from(&*data.user_id))
                    .or_default() += 1;
                seat_counted = true;
            }
        }
        let mut ended = Vec::new();
        if rules.policy == ConcurrentSessions::Replace {
            for l in live.drain(..) {
                let reason = EndReason::Replaced;
                ended.push((self.end_linked(&mut chain, l.at, reason, now), reason));
            }
        }
        // Beyond the limit, the least recently active sessions make room for this one.
        let limit = rules.max_per_user as usize;
        if limit > 0 && live.len() >= limit {
            live.sort_unstable_by_key(|l| l.last_active);
            for l in live.drain(..=live.len() - limit) {
                let reason = EndReason::Evicted;
                ended.push((self.end_linked(&mut chain, l.at, reason, now), reason));
            }
        }
        self.link(&mut chain, &data, digest, now, seat_counted);
        let session = SessionRecord {
            expires_at: data.expires_at(now, self.max_lifetime_seconds),
            data,
            last_active_at: now,
        };
        // Said while the user's entry is held: no end of this session can be said before it.
        self.emit(now, || Change::Created(CreatedSession::of(&session)));
        drop(chain);
        Ok(Created { session, ended })
    }

    fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.shard(shard_of(token.id));
        let Some(slot) = rows.slot_of(token.id) else {
            return Ok(None);
        };
        let row = rows.row(slot);
        if !row.digest.matches(&token.digest) || !self.live(row, now) {
            return Ok(None);
        }
        row.last_active_at.fetch_max(now.0, Relaxed);
        Ok(Some(rows.record(row, self.max_lifetime_seconds)))
    }

    fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.shard(shard_of(id));
        Ok(rows.slot_of(id).and_then(|slot| {
            let row = rows.row(slot);
            (self.live(row, now) && rows.in_scope(row, scope))
                .then(|| rows.record(row, self.max_lifetime_seconds))
        }))
    }

    fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(ids
            .iter()
            .filter_map(|&id| {
                let ended = self.end(id, |shard, row| {
                    self.live(row, now) && shard.in_scope(row, scope)
                })?;
                self.emit(now, || Change::Ended(Ended::of(&ended.data, reason)));
                Some(ended)
            })
            .collect())
    }

    fn list(&self, query: &ListQuery, scope: &Scope, now: Millis) -> Result<Page, StoreError> {
        let empty = || Page {
            items: Vec::new(),
            total: 0,
            more: false,
        };
        let organisation = match (scope, &query.filters.organisation) {
            (Scope::Organisation(own), Some(wanted)) if **own != **wanted => return Ok(empty()),
            (Scope::Organisation(own), _) => Some(own.clone()),
            (Scope::All, wanted) => wanted.as_deref().map(Arc::from),
        };
        let plan = Plan {
            query,
            now,
            wanted: query.limit + 1,
            organisation,
            after: query.after.as_ref().map(|p| (p.key.clone(), p.id)),
            search: query.filters.q.as_deref().map(Search::new),
            without_admins: scope.excludes_admins(),
        };
        // A user filter follows that user's chain: only their rows are read.
        let rankings: Vec<Ranking> = match &query.filters.user_id {
            Some(user) => {
                let Some(chain) = self.users.get(user.as_str()) else {
                    return Ok(empty());
                };
                let rows: Vec<SessionId> = self
                    .chain(&chain)
                    .into_iter()
                    .map(|at| self.shard(at.shard()).row(at.slot()).id())
                    .collect();
                drop(chain);
                rows.into_iter()
                    .map(|id| {
                        let rows = self.shard(shard_of(id));
                        let slots = rows.slot_of(id).into_iter();
                        self.rank(&plan, &rows, slots.map(|slot| rows.row(slot)))
                    })
                    .collect()
            }
            None => (0..SHARDS)
                .into_par_iter()
                .map(|n| {
                    let rows = self.shard(n);
                    self.rank(&plan, &rows, rows.occupied())
                })
                .collect(),
        };
        let total = rankings.iter().map(|r| r.total).sum();
        let mut best: Vec<Candidate> = rankings.into_iter().flat_map(|r| r.best).collect();
        if best.len() > plan.wanted {
            best.select_nth_unstable(plan.wanted - 1);
            best.truncate(plan.wanted);
        }
        best.sort_unstable();
        let more = best.len() > query.limit;
        best.truncate(query.limit);
        // Read again by id: a session that ended since its shard was ranked is left out.
        let items = best
            .iter()
            .filter_map(|c| {
                let rows = self.shard(shard_of(c.id));
                let row = rows.row(rows.slot_of(c.id)?);
                self.live(row, now)
                    .then(|| rows.record(row, self.max_lifetime_seconds))
            })
            .collect();
        Ok(Page { items, total, more })
    }

    fn census(&self, now: Millis) -> Vec<Census> {
        let mut counts: HashMap<(Arc<str>, Arc<str>, bool), u64> = HashMap::new();
        for n in 0..SHARDS {
            let shard = self.shard(n);
            let mut here: HashMap<(u32, u32, bool), u64> = HashMap::new();
            for row in shard.occupied().filter(|row| self.live(row, now)) {
                let key = (row.organisation, row.server_name, shard.holds_admin(row));
                *here.entry(key).or_default() += 1;
            }
            for ((organisation, server_name, admin), sessions) in here {
                let key = (
                    shard.labels.get(organisation).clone(),
                    shard.labels.get(server_name).clone(),
                    admin,
                );
                *counts.entry(key).or_default() += sessions;
            }
        }
        counts
            .into_iter()
            .map(|((organisation, server_name, admin), sessions)| Census {
                organisation,
                server_name,
                admin,
                sessions,
            })
            .collect()
    }

    /// A user's sessions are spread over the shards, so users are told apart by name.
    fn users(&self, now: Millis) -> Users {
        type Seen = hashbrown::HashSet<CompactString>;
        // Per organisation: every user, and those with a session held without role admin.
        let mut users: HashMap<Arc<str>, (Seen, Seen)> = HashMap::new();
        let mut distinct = Seen::new();
        for n in 0..SHARDS {
            let shard = self.shard(n);
            for row in shard.occupied().filter(|row| self.live(row, now)) {
                let organisation = shard.labels.get(row.organisation);
                let (all, outside_admin) = match users.get_mut(organisation) {
                    Some(seen) => seen,
                    None => users.entry(organisation.clone()).or_default(),
                };
                all.insert(row.user_id.clone());
                distinct.insert(row.user_id.clone());
                if !shard.holds_admin(row) {
                    outside_admin.insert(row.user_id.clone());
                }
            }
        }
        Users {
            by_organisation: users
                .into_iter()
                .map(|(organisation, (all, outside_admin))| UserCount {
                    organisation,
                    users: all.len() as u64,
                    outside_admin: outside_admin.len() as u64,
                })
                .collect(),
            distinct: distinct.len() as u64,
        }
    }

    fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        let (mut rows, mut by_id, mut orphans) = (0, 0, 0);
        for n in 0..SHARDS {
            let shard = self.shard(n);
            rows += shard.occupied().count();
            by_id += shard.by_id.len();
            for &slot in shard.by_id.iter() {
                let occupied = shard.rows.get(slot as usize).is_some_and(Option::is_some);
                orphans +=
                    usize::from(!occupied || shard.slot_of(shard.row(slot).id()) != Some(slot));
            }
        }
        let mut by_user = 0;
        for entry in self.users.iter() {
            let mut length = 0;
            let mut previous = RowRef::END;
            let mut at = entry.head;
            while at != RowRef::END {
                let shard = self.shard(at.shard());
                let Some(row) = shard.rows.get(at.slot() as usize).and_then(Option::as_ref) else {
                    orphans += 1;
                    break;
                };
                if row.user_id != *entry.key() || row.previous_of_user != previous {
                    orphans += 1;
                }
                length += 1;
                previous = at;
                at = row.next_of_user;
            }
            orphans += usize::from(length != entry.count as usize || length == 0);
            by_user += length;
        }
        Ok(IndexReport {
            rows,
            by_id,
            by_user,
            orphans,
        })
    }

    fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        let expired: Vec<SessionId> = (0..SHARDS)
            .flat_map(|n| {
                let shard = self.shard(n);
                shard
                    .occupied()
                    .filter(|row| !self.live(row, now))
                    .map(Row::id)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(expired
            .into_iter()
            .filter_map(|id| self.end(id, |_, row| !self.live(row, now)))
            .inspect(|ended| {
                self.emit(now, || {
                    Change::Ended(Ended::of(&ended.data, EndReason::Expired))
                })
            })
            .count())
    }
}

/// One of a user's live sessions, as a login weighs it.
struct Live {
    at: RowRef,
    blocking: BlockingSession,
    last_active: Millis,
    /// Whether it is in the login's organisation (then the user already holds a seat there).
    here: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_small() {
        let size = std::mem::size_of::<Option<Row>>();
        assert!(size <= 168, "{size}");
    }

    #[test]
    fn row_refs_keep_shard_and_slot() {
        let at = RowRef::new(SHARDS - 1, (1 << SLOT_BITS) - 2);
        assert_eq!(at.shard(), SHARDS - 1);
        assert_eq!(at.slot(), (1 << SLOT_BITS) - 2);
        assert_ne!(at, RowRef::END);
    }

    #[test]
    fn interned_values_are_freed_with_their_last_use() {
        let mut interner: Interner<Arc<str>> = Interner::default();
        let acme: Arc<str> = "Acme".into();
        let a = interner.acquire(&acme);
        assert_eq!(interner.acquire(&acme), a);
        assert!(
            !Arc::ptr_eq(interner.get(a), &acme),
            "the interner keeps its own copy"
        );
        interner.release(a);
        assert_eq!(interner.find("Acme"), Some(a));
        interner.release(a);
        assert_eq!(interner.find("Acme"), None);
        assert_eq!(
            interner.acquire(&"Globex".into()),
            a,
            "the number is reused"
        );
    }
}
