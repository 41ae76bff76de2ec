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
//!   sessions — are interned: a row holds 4-byte numbers.
//!
//! Locks are always taken in one order: a user's entry, then shards one at a time, then an
//! interner; no code holds a shard while it waits for a user's entry.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use compact_str::CompactString;
use dashmap::DashMap;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use rayon::prelude::*;

use super::{BlockingSession, Census, IndexReport, Insert, Page, SessionStore, StoreError};
use crate::domain::listing::{Bigrams, Search};
use crate::domain::session::expires_at;
use crate::domain::{
    ConcurrentSessions, ListQuery, Millis, Order, PresentedToken, Scope, SessionData, SessionId,
    SessionRecord, SortField, SortKey, TokenDigest,
};

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

/// One shard: rows in a contiguous vector, found by id through a slot-only hash table.
#[derive(Default)]
struct Shard {
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
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

    fn insert(&mut self, row: Row) -> u32 {
        let hash = id_hash(row.id());
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

    fn remove(&mut self, slot: u32) -> Row {
        let id = self.row(slot).id();
        if let Ok(entry) = self.by_id.find_entry(id_hash(id), |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.rows[slot as usize].take().expect("occupied")
    }

    fn occupied(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().flatten()
    }
}

/// A row's numbers for its shared values.
struct Values {
    organisation: u32,
    server_name: u32,
    roles: u32,
    user_agent: u32,
}

/// The head of a user's chain of rows, and its length.
#[derive(Clone, Copy, Debug)]
struct UserChain {
    head: RowRef,
    count: u32,
}

/// Interns values shared by many sessions: each is kept once, with a count of the rows that
/// use it, and rows hold its number. Taking or dropping a use of a value already known needs
/// only the read lock.
struct Interner<T> {
    inner: RwLock<Interned<T>>,
}

struct Interned<T> {
    index: HashMap<T, u32>,
    values: Vec<Option<(T, AtomicU32)>>,
    free: Vec<u32>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            inner: RwLock::new(Interned {
                index: HashMap::new(),
                values: Vec::new(),
                free: Vec::new(),
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Interned<T>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Interned<T>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(&self, value: T) -> u32 {
        if let Some(n) = self.read().use_known(&value) {
            return n;
        }
        let mut interned = self.write();
        if let Some(n) = interned.use_known(&value) {
            return n;
        }
        let entry = Some((value.clone(), AtomicU32::new(1)));
        let n = match interned.free.pop() {
            Some(n) => {
                interned.values[n as usize] = entry;
                n
            }
            None => {
                interned.values.push(entry);
                (interned.values.len() - 1) as u32
            }
        };
        interned.index.insert(value, n);
        n
    }

    /// Takes `uses` uses of each value at once; returns each value's number.
    fn acquire_all(&self, wanted: HashMap<T, u32>) -> HashMap<T, u32> {
        wanted
            .into_iter()
            .map(|(value, uses)| {
                let n = self.acquire(value.clone());
                if uses > 1 {
                    if let Some((_, count)) = &self.read().values[n as usize] {
                        count.fetch_add(uses - 1, Relaxed);
                    }
                }
                (value, n)
            })
            .collect()
    }

    fn release(&self, n: u32, uses: u32) {
        let last = self.read().values[n as usize]
            .as_ref()
            .is_some_and(|(_, count)| count.fetch_sub(uses, Relaxed) == uses);
        if !last {
            return;
        }
        // Freed only if no one took a new use meanwhile (which needs no write lock).
        let mut interned = self.write();
        let unused = interned.values[n as usize]
            .as_ref()
            .is_some_and(|(_, uses)| uses.load(Relaxed) == 0);
        if unused {
            if let Some((value, _)) = interned.values[n as usize].take() {
                interned.index.remove(&value);
            }
            interned.free.push(n);
        }
    }

    fn get(&self, n: u32) -> T {
        self.read().get(n).clone()
    }

    fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read().index.get(value).copied()
    }

    /// Every value by number, as of now, for a scan that must not hold the lock.
    fn copy(&self) -> Vec<Option<T>> {
        self.read()
            .values
            .iter()
            .map(|v| v.as_ref().map(|(value, _)| value.clone()))
            .collect()
    }
}

impl<T: Hash + Eq> Interned<T> {
    fn use_known(&self, value: &T) -> Option<u32> {
        let n = *self.index.get(value)?;
        if let Some((_, uses)) = &self.values[n as usize] {
            uses.fetch_add(1, Relaxed);
        }
        Some(n)
    }

    fn get(&self, n: u32) -> &T {
        &self.values[n as usize]
            .as_ref()
            .expect("rows refer only to values in use")
            .0
    }
}

pub struct MemoryStore {
    shards: Box<[RwLock<Shard>]>,
    users: DashMap<CompactString, UserChain, DefaultHashBuilder>,
    /// Organisations and server names.
    labels: Interner<Arc<str>>,
    agents: Interner<Arc<str>>,
    role_sets: Interner<Arc<[Arc<str>]>>,
    max_lifetime_seconds: u64,
}

impl MemoryStore {
    pub fn new(max_lifetime_seconds: u64) -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            users: DashMap::with_hasher_and_shard_amount(DefaultHashBuilder::default(), SHARDS),
            labels: Interner::new(),
            agents: Interner::new(),
            role_sets: Interner::new(),
            max_lifetime_seconds,
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

    fn data(&self, row: &Row) -> SessionData {
        let (organisation, server_name) = {
            let labels = self.labels.read();
            (
                labels.get(row.organisation).clone(),
                labels.get(row.server_name).clone(),
            )
        };
        SessionData {
            id: row.id(),
            user_id: row.user_id.as_str().into(),
            name: row.name.as_str().into(),
            organisation,
            ip_address: row.ip_address,
            server_name,
            roles: self.role_sets.get(row.roles),
            user_agent: (row.user_agent != NO_VALUE).then(|| self.agents.get(row.user_agent)),
            timeout_seconds: row.timeout_seconds,
            created_at: Millis(row.created_at),
        }
    }

    fn record(&self, row: &Row) -> SessionRecord {
        SessionRecord {
            data: self.data(row),
            last_active_at: row.last_active_at(),
            expires_at: row.expires_at(self.max_lifetime_seconds),
        }
    }

    /// Takes a use of each of the session's shared values.
    fn intern(&self, data: &SessionData) -> Values {
        Values {
            organisation: self.labels.acquire(data.organisation.clone()),
            server_name: self.labels.acquire(data.server_name.clone()),
            roles: self.role_sets.acquire(data.roles.clone()),
            user_agent: data
                .user_agent
                .clone()
                .map_or(NO_VALUE, |ua| self.agents.acquire(ua)),
        }
    }

    fn make_row(
        &self,
        data: SessionData,
        values: Values,
        digest: TokenDigest,
        last_active_at: Millis,
    ) -> Row {
        let ip = data.ip_address.to_string();
        Row {
            bigrams: Bigrams::of(&[&data.user_id, &data.name, &ip]),
            id: id_halves(data.id),
            digest,
            user_id: CompactString::from(&*data.user_id),
            name: CompactString::from(&*data.name),
            created_at: data.created_at.0,
            last_active_at: AtomicU64::new(last_active_at.0),
            ip_address: data.ip_address,
            organisation: values.organisation,
            server_name: values.server_name,
            roles: values.roles,
            user_agent: values.user_agent,
            timeout_seconds: data.timeout_seconds,
            previous_of_user: RowRef::END,
            next_of_user: RowRef::END,
        }
    }

    fn release_values(&self, row: &Row) {
        self.labels.release(row.organisation, 1);
        self.labels.release(row.server_name, 1);
        self.role_sets.release(row.roles, 1);
        if row.user_agent != NO_VALUE {
            self.agents.release(row.user_agent, 1);
        }
    }

    /// Stores `row` at the head of its user's chain. The caller holds the user's entry.
    fn link(&self, chain: &mut UserChain, mut row: Row) -> RowRef {
        let shard = shard_of(row.id());
        row.next_of_user = chain.head;
        let at = RowRef::new(shard, self.shard_mut(shard).insert(row));
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
    fn unlink(&self, chain: &mut UserChain, at: RowRef) -> Row {
        let row = self.shard_mut(at.shard()).remove(at.slot());
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
        self.release_values(&row);
        row
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
    fn end(&self, id: SessionId, admits: impl Fn(&Row) -> bool) -> Option<SessionRecord> {
        let shard = shard_of(id);
        let user = {
            let rows = self.shard(shard);
            let row = rows.row(rows.slot_of(id)?);
            if !admits(row) {
                return None;
            }
            row.user_id.clone()
        };
        let mut chain = self.users.get_mut(&user)?;
        // Looked up again under the user's entry: a concurrent end may have come first.
        let (at, record) = {
            let rows = self.shard(shard);
            let slot = rows.slot_of(id)?;
            (RowRef::new(shard, slot), self.record(rows.row(slot)))
        };
        self.unlink(&mut chain, at);
        let empty = chain.count == 0;
        drop(chain);
        if empty {
            self.users.remove_if(&user, |_, chain| chain.count == 0);
        }
        Some(record)
    }

    /// Inserts a batch of saved sessions, skipping those that have expired or whose id is
    /// taken. Each shared value is interned once for the batch, with all its uses, rather than
    /// once per row.
    fn insert_batch(&self, batch: Vec<SavedSession>, now: Millis) -> usize {
        let batch: Vec<SavedSession> = batch
            .into_iter()
            .filter(|s| {
                now < s
                    .data
                    .expires_at(s.last_active_at, self.max_lifetime_seconds)
                    && self.shard(shard_of(s.data.id)).slot_of(s.data.id).is_none()
            })
            .collect();
        let mut labels: HashMap<Arc<str>, u32> = HashMap::new();
        let mut agents: HashMap<Arc<str>, u32> = HashMap::new();
        let mut role_sets: HashMap<Arc<[Arc<str>]>, u32> = HashMap::new();
        for s in &batch {
            *labels.entry(s.data.organisation.clone()).or_default() += 1;
            *labels.entry(s.data.server_name.clone()).or_default() += 1;
            *role_sets.entry(s.data.roles.clone()).or_default() += 1;
            if let Some(ua) = &s.data.user_agent {
                *agents.entry(ua.clone()).or_default() += 1;
            }
        }
        let labels = self.labels.acquire_all(labels);
        let agents = self.agents.acquire_all(agents);
        let role_sets = self.role_sets.acquire_all(role_sets);
        let mut inserted = 0;
        for s in batch {
            let values = Values {
                organisation: labels[&s.data.organisation],
                server_name: labels[&s.data.server_name],
                roles: role_sets[&s.data.roles],
                user_agent: s.data.user_agent.as_ref().map_or(NO_VALUE, |ua| agents[ua]),
            };
            let mut chain = self
                .users
                .entry(CompactString::from(&*s.data.user_id))
                .or_insert(UserChain {
                    head: RowRef::END,
                    count: 0,
                });
            let row = self.make_row(s.data, values, s.digest, s.last_active_at);
            // Taken meanwhile by a concurrent insert of the same id: give its uses back.
            if self.shard(shard_of(row.id())).slot_of(row.id()).is_some() {
                self.release_values(&row);
                continue;
            }
            self.link(&mut chain, row);
            inserted += 1;
        }
        inserted
    }

    /// Every live session with its token digest, for a snapshot.
    pub fn export(&self, now: Millis) -> Vec<SavedSession> {
        (0..SHARDS)
            .into_par_iter()
            .flat_map_iter(|n| {
                let rows = self.shard(n);
                rows.occupied()
                    .filter(|row| self.live(row, now))
                    .map(|row| SavedSession {
                        digest: row.digest,
                        data: self.data(row),
                        last_active_at: row.last_active_at(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Inserts saved sessions that are still live and whose id is not taken, in parallel;
    /// returns how many it inserted.
    pub fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        saved
            .into_par_iter()
            .chunks(4096)
            .map(|batch| self.insert_batch(batch, now))
            .sum()
    }

    /// Replaces every session with `saved` (the live ones): a replica catching up with its
    /// source.
    pub fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.users.clear();
        for n in 0..SHARDS {
            let old = std::mem::take(&mut *self.shard_mut(n));
            for row in old.rows.iter().flatten() {
                self.release_values(row);
            }
        }
        self.import(saved, now)
    }

    /// Records activity seen elsewhere; time never moves backwards.
    pub fn touch(&self, id: SessionId, at: Millis) {
        let rows = self.shard(shard_of(id));
        if let Some(slot) = rows.slot_of(id) {
            rows.row(slot).last_active_at.fetch_max(at.0, Relaxed);
        }
    }

    /// Removes sessions ended elsewhere, live or not.
    pub fn forget(&self, ids: &[SessionId]) {
        for &id in ids {
            self.end(id, |_| true);
        }
    }

    /// The number of an organisation in scope for `query`: `Ok(None)` for every organisation,
    /// `Err(())` when nothing can match (another organisation than the caller's, or one no
    /// session has).
    fn organisation_in_scope(&self, query: &ListQuery, scope: &Scope) -> Result<Option<u32>, ()> {
        let wanted = match (scope, &query.filters.organisation) {
            (Scope::Organisation(own), Some(wanted)) if **own != **wanted => return Err(()),
            (Scope::Organisation(own), _) => Some(&**own),
            (Scope::All, wanted) => wanted.as_deref(),
        };
        match wanted {
            None => Ok(None),
            Some(name) => self.labels.find(name).map(Some).ok_or(()),
        }
    }

    /// Ranks the rows of one shard (or of one user's chain) for `plan`.
    fn rank<'a>(&self, plan: &Plan, rows: impl Iterator<Item = &'a Row>) -> Ranking {
        let mut best: BinaryHeap<Candidate> = BinaryHeap::with_capacity(plan.wanted + 1);
        let mut total = 0u64;
        for row in rows {
            if !plan.matches(row) || !self.live(row, plan.now) {
                continue;
            }
            total += 1;
            let Some(key) = plan.key(row) else {
                continue;
            };
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
    organisation: Option<u32>,
    server_name: Option<u32>,
    /// Organisation and server names by number, when the sort needs them.
    labels: Vec<Option<Arc<str>>>,
    after: Option<(SortKey, SessionId)>,
    search: Option<Search<'q>>,
}

impl Plan<'_> {
    fn matches(&self, row: &Row) -> bool {
        let f = &self.query.filters;
        self.organisation.is_none_or(|o| row.organisation == o)
            && self.server_name.is_none_or(|s| row.server_name == s)
            && f.ip_address.is_none_or(|ip| ip == row.ip_address)
            && f.user_id
                .as_deref()
                .is_none_or(|u| row.user_id.as_str() == u)
            && self.search.as_ref().is_none_or(|q| {
                row.bigrams.may_contain(q.bigrams)
                    && (q.in_text(&row.name) || q.in_text(&row.user_id) || q.in_ip(row.ip_address))
            })
    }

    /// The row's sort key; `None` for a row whose label is newer than this listing.
    fn key<'a>(&'a self, row: &'a Row) -> Option<SortKey<&'a str>> {
        let label = |n: u32| {
            self.labels
                .get(n as usize)
                .and_then(Option::as_deref)
                .map(SortKey::Text)
        };
        Some(match self.query.sort {
            SortField::Name => SortKey::Text(row.name.as_str()),
            SortField::Organisation => label(row.organisation)?,
            SortField::ServerName => label(row.server_name)?,
            SortField::IpAddress => SortKey::Ip(row.ip_address),
            SortField::Timeout => SortKey::Number(u64::from(row.timeout_seconds)),
            // Newest first is the smallest session time.
            SortField::SessionTime => SortKey::Number(u64::MAX - row.created_at),
            SortField::LastActive => SortKey::Number(row.last_active_at().0),
        })
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

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(
        &self,
        insert: Insert,
        policy: ConcurrentSessions,
        now: Millis,
    ) -> Result<(SessionRecord, Vec<SessionId>), StoreError> {
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
        let mut live = Vec::new();
        for at in self.chain(&chain) {
            let blocking = {
                let rows = self.shard(at.shard());
                let row = rows.row(at.slot());
                self.live(row, now).then(|| BlockingSession {
                    id: row.id(),
                    ip_address: row.ip_address,
                    server_name: self.labels.get(row.server_name),
                })
            };
            match blocking {
                Some(blocking) => live.push((at, blocking)),
                None => {
                    self.unlink(&mut chain, at);
                }
            }
        }
        let mut replaced = Vec::new();
        match policy {
            ConcurrentSessions::DenyOtherIp => {
                if live.iter().any(|(_, b)| b.ip_address != data.ip_address) {
                    return Err(StoreError::LoginDenied(
                        live.into_iter().map(|(_, b)| b).collect(),
                    ));
                }
            }
            ConcurrentSessions::Replace => {
                for (at, _) in live {
                    replaced.push(self.unlink(&mut chain, at).id());
                }
            }
            ConcurrentSessions::Allow => {}
        }
        let record = SessionRecord {
            expires_at: data.expires_at(now, self.max_lifetime_seconds),
            data: data.clone(),
            last_active_at: now,
        };
        let values = self.intern(&data);
        self.link(&mut chain, self.make_row(data, values, digest, now));
        Ok((record, replaced))
    }

    async fn authenticate(
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
        Ok(Some(self.record(row)))
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.shard(shard_of(id));
        Ok(rows.slot_of(id).and_then(|slot| {
            let row = rows.row(slot);
            let record = self.record(row);
            (self.live(row, now) && scope.admits(&record.data.organisation)).then_some(record)
        }))
    }

    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let organisation = match scope {
            Scope::All => None,
            Scope::Organisation(own) => match self.labels.find(&**own) {
                Some(n) => Some(n),
                None => return Ok(Vec::new()),
            },
        };
        Ok(ids
            .iter()
            .filter_map(|&id| {
                self.end(id, |row| {
                    self.live(row, now) && organisation.is_none_or(|o| row.organisation == o)
                })
            })
            .collect())
    }

    async fn list(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let empty = || Page {
            items: Vec::new(),
            total: 0,
            more: false,
        };
        let Ok(organisation) = self.organisation_in_scope(query, scope) else {
            return Ok(empty());
        };
        let server_name = match &query.filters.server_name {
            None => None,
            Some(name) => match self.labels.find(name.as_str()) {
                Some(n) => Some(n),
                None => return Ok(empty()),
            },
        };
        let plan = Plan {
            query,
            now,
            wanted: query.limit + 1,
            organisation,
            server_name,
            labels: match query.sort {
                SortField::Organisation | SortField::ServerName => self.labels.copy(),
                _ => Vec::new(),
            },
            after: query.after.as_ref().map(|p| (p.key.clone(), p.id)),
            search: query.filters.q.as_deref().map(Search::new),
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
                        self.rank(&plan, slots.map(|slot| rows.row(slot)))
                    })
                    .collect()
            }
            None => (0..SHARDS)
                .into_par_iter()
                .map(|n| self.rank(&plan, self.shard(n).occupied()))
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
                self.live(row, now).then(|| self.record(row))
            })
            .collect();
        Ok(Page { items, total, more })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
        for n in 0..SHARDS {
            for row in self.shard(n).occupied().filter(|row| self.live(row, now)) {
                *counts
                    .entry((row.organisation, row.server_name))
                    .or_default() += 1;
            }
        }
        let labels = self.labels.read();
        Ok(counts
            .into_iter()
            .map(|((organisation, server_name), sessions)| Census {
                organisation: labels.get(organisation).clone(),
                server_name: labels.get(server_name).clone(),
                sessions,
            })
            .collect())
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
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

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
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
            .filter(|&id| self.end(id, |row| !self.live(row, now)).is_some())
            .count())
    }
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
        let interner: Interner<Arc<str>> = Interner::new();
        let a = interner.acquire("Acme".into());
        assert_eq!(interner.acquire("Acme".into()), a);
        interner.release(a, 1);
        assert_eq!(interner.find("Acme"), Some(a));
        interner.release(a, 1);
        assert_eq!(interner.find("Acme"), None);
        assert_eq!(interner.acquire("Globex".into()), a, "the number is reused");
    }
}
