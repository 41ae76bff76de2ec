//! The embedded store: every session in one table behind one reader-writer lock.
//!
//! Reads (validation, listing) share the lock; a validation's touch is an atomic store into its
//! row, so it needs no write access. Writes (login, logout, deletes, reaping) take the lock
//! alone, which makes the policy's check-and-insert and the upkeep of the indexes one atomic
//! step.
//!
//! The layout is made for memory and for scans. Rows sit in one contiguous vector, so a listing
//! reads memory in order instead of chasing pointers. A row keeps its user id and name in one
//! allocation, and organisation, server name, roles and user agent — few distinct values shared
//! by many sessions — as numbers into reference-counted tables. The three indexes (by id, by
//! token digest, by user) hold only 4-byte slot numbers: keys are compared against the rows
//! they point at, and a user's sessions are chained through their rows.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use hashbrown::HashTable;

use super::{BlockingSession, Census, IndexReport, Insert, Page, SessionStore, StoreError};
use crate::domain::listing::Fields;
use crate::domain::session::expires_at;
use crate::domain::{
    ConcurrentSessions, ListQuery, Millis, Order, Position, Scope, SessionData, SessionId,
    SessionRecord, SortField, SortKey, TokenDigest,
};

/// The end of a user's chain of rows.
const NO_SLOT: u32 = u32::MAX;
/// An absent interned value (a session without a user agent).
const NO_VALUE: u32 = u32::MAX;

pub struct MemoryStore {
    table: RwLock<Table>,
    max_lifetime_seconds: u64,
}

/// A session as a snapshot keeps it.
#[derive(Debug)]
pub struct SavedSession {
    pub digest: TokenDigest,
    pub data: SessionData,
    pub last_active_at: Millis,
}

struct Row {
    /// The session id, as two halves (a `u128` would force 16-byte alignment on every row).
    id: [u64; 2],
    digest: TokenDigest,
    /// The user id followed by the name.
    text: Box<str>,
    user_len: u16,
    organisation: u32,
    server_name: u32,
    roles: u32,
    user_agent: u32,
    timeout_seconds: u32,
    /// The next row of the same user, or [`NO_SLOT`].
    next_of_user: u32,
    /// The name's first 8 bytes, big-endian: most name comparisons end here, without reading
    /// the name itself from the heap.
    name_prefix: u64,
    ip_address: IpAddr,
    created_at: u64,
    last_active_at: AtomicU64,
}

impl Row {
    fn id(&self) -> SessionId {
        SessionId::from_u128((u128::from(self.id[0]) << 64) | u128::from(self.id[1]))
    }

    fn user_id(&self) -> &str {
        &self.text[..usize::from(self.user_len)]
    }

    fn name(&self) -> &str {
        &self.text[usize::from(self.user_len)..]
    }

    fn last_active_at(&self) -> Millis {
        Millis(self.last_active_at.load(Relaxed))
    }
}

/// Interns values shared by many sessions (organisations, server names, role sets): each is
/// kept once, with a count of the rows that use it, and rows hold its number.
struct Interner<T> {
    index: HashMap<T, u32>,
    values: Vec<Option<(T, u32)>>,
    free: Vec<u32>,
}

impl<T: Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            index: HashMap::new(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn acquire(&mut self, value: T) -> u32 {
        if let Some(&n) = self.index.get(&value) {
            if let Some((_, uses)) = &mut self.values[n as usize] {
                *uses += 1;
            }
            return n;
        }
        let n = match self.free.pop() {
            Some(n) => {
                self.values[n as usize] = Some((value.clone(), 1));
                n
            }
            None => {
                self.values.push(Some((value.clone(), 1)));
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

#[derive(Default)]
struct Table {
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    by_digest: HashTable<u32>,
    /// The first row of each user; the rest are chained by `next_of_user`.
    by_user: HashTable<u32>,
    user_hasher: RandomState,
    strings: Interner<Arc<str>>,
    role_sets: Interner<Arc<[Arc<str>]>>,
}

// Ids and digests are uniformly random: their own bits are the hash. User ids are chosen by
// callers, so they go through a keyed hash.
fn id_hash(id: SessionId) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64).rotate_left(32)
}

fn digest_hash(digest: &TokenDigest) -> u64 {
    u64::from_le_bytes(digest.0[..8].try_into().expect("8 bytes"))
}

/// The first 8 bytes of a text, big-endian and zero-padded: ordered as the texts are, up to ties.
fn prefix(text: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = text.len().min(8);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

fn id_halves(id: SessionId) -> [u64; 2] {
    let v = id.as_u128();
    [(v >> 64) as u64, v as u64]
}

impl Table {
    fn row(&self, slot: u32) -> &Row {
        self.rows[slot as usize]
            .as_ref()
            .expect("indexes point only at occupied slots")
    }

    fn slot_of_id(&self, id: SessionId) -> Option<u32> {
        let halves = id_halves(id);
        self.by_id
            .find(id_hash(id), |&s| self.row(s).id == halves)
            .copied()
    }

    fn slot_of_digest(&self, digest: &TokenDigest) -> Option<u32> {
        self.by_digest
            .find(digest_hash(digest), |&s| self.row(s).digest == *digest)
            .copied()
    }

    fn first_of_user(&self, user: &str) -> Option<u32> {
        self.by_user
            .find(self.user_hasher.hash_one(user), |&s| {
                self.row(s).user_id() == user
            })
            .copied()
    }

    fn slots_of_user(&self, user: &str) -> Vec<u32> {
        let mut slots = Vec::new();
        let mut slot = self.first_of_user(user).unwrap_or(NO_SLOT);
        while slot != NO_SLOT {
            slots.push(slot);
            slot = self.row(slot).next_of_user;
        }
        slots
    }

    fn fields<'a>(&'a self, row: &'a Row) -> Fields<'a> {
        Fields {
            user_id: row.user_id(),
            name: row.name(),
            organisation: self.strings.get(row.organisation),
            server_name: self.strings.get(row.server_name),
            ip_address: row.ip_address,
            timeout_seconds: row.timeout_seconds,
            created_at: Millis(row.created_at),
            last_active_at: row.last_active_at(),
        }
    }

    fn data(&self, row: &Row) -> SessionData {
        SessionData {
            id: row.id(),
            user_id: row.user_id().into(),
            name: row.name().into(),
            organisation: self.strings.get(row.organisation).clone(),
            ip_address: row.ip_address,
            server_name: self.strings.get(row.server_name).clone(),
            roles: self.role_sets.get(row.roles).clone(),
            user_agent: (row.user_agent != NO_VALUE)
                .then(|| self.strings.get(row.user_agent).clone()),
            timeout_seconds: row.timeout_seconds,
            created_at: Millis(row.created_at),
        }
    }

    fn expires_at(row: &Row, max_lifetime_seconds: u64) -> Millis {
        expires_at(
            row.last_active_at(),
            row.timeout_seconds,
            Millis(row.created_at),
            max_lifetime_seconds,
        )
    }

    fn record(&self, row: &Row, max_lifetime_seconds: u64) -> SessionRecord {
        SessionRecord {
            data: self.data(row),
            last_active_at: row.last_active_at(),
            expires_at: Self::expires_at(row, max_lifetime_seconds),
        }
    }

    /// Inserts a session and indexes it.
    fn insert(&mut self, data: SessionData, digest: TokenDigest, last_active_at: Millis) -> u32 {
        let first = self.first_of_user(&data.user_id);
        let row = Row {
            id: id_halves(data.id),
            digest,
            text: format!("{}{}", data.user_id, data.name).into_boxed_str(),
            user_len: data.user_id.len() as u16,
            organisation: self.strings.acquire(data.organisation),
            server_name: self.strings.acquire(data.server_name),
            roles: self.role_sets.acquire(data.roles),
            user_agent: data
                .user_agent
                .map_or(NO_VALUE, |ua| self.strings.acquire(ua)),
            timeout_seconds: data.timeout_seconds,
            next_of_user: first.unwrap_or(NO_SLOT),
            name_prefix: prefix(&data.name),
            ip_address: data.ip_address,
            created_at: data.created_at.0,
            last_active_at: AtomicU64::new(last_active_at.0),
        };
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
        let Table {
            rows,
            by_id,
            by_digest,
            by_user,
            user_hasher,
            ..
        } = self;
        let row_at = |s: u32| rows[s as usize].as_ref().expect("occupied");
        let user_hash = user_hasher.hash_one(row_at(slot).user_id());
        by_id.insert_unique(id_hash(data.id), slot, |&s| id_hash(row_at(s).id()));
        by_digest.insert_unique(digest_hash(&digest), slot, |&s| {
            digest_hash(&row_at(s).digest)
        });
        // The new row becomes the head of its user's chain.
        match first {
            Some(first) => {
                if let Ok(entry) = by_user.find_entry(user_hash, |&s| s == first) {
                    *entry.into_mut() = slot;
                }
            }
            None => {
                by_user.insert_unique(user_hash, slot, |&s| {
                    user_hasher.hash_one(row_at(s).user_id())
                });
            }
        }
        slot
    }

    fn remove(&mut self, slot: u32) -> Row {
        let (id, digest, next, user_hash, first) = {
            let row = self.row(slot);
            let first = self
                .first_of_user(row.user_id())
                .expect("a row is in its user's chain");
            (
                row.id(),
                row.digest,
                row.next_of_user,
                self.user_hasher.hash_one(row.user_id()),
                first,
            )
        };
        if first == slot {
            if let Ok(entry) = self.by_user.find_entry(user_hash, |&s| s == first) {
                if next == NO_SLOT {
                    entry.remove();
                } else {
                    *entry.into_mut() = next;
                }
            }
        } else {
            let mut previous = first;
            while self.row(previous).next_of_user != slot {
                previous = self.row(previous).next_of_user;
            }
            if let Some(row) = self.rows[previous as usize].as_mut() {
                row.next_of_user = next;
            }
        }
        if let Ok(entry) = self.by_id.find_entry(id_hash(id), |&s| s == slot) {
            entry.remove();
        }
        if let Ok(entry) = self
            .by_digest
            .find_entry(digest_hash(&digest), |&s| s == slot)
        {
            entry.remove();
        }
        let row = self.rows[slot as usize].take().expect("occupied");
        self.strings.release(row.organisation);
        self.strings.release(row.server_name);
        self.role_sets.release(row.roles);
        if row.user_agent != NO_VALUE {
            self.strings.release(row.user_agent);
        }
        self.free.push(slot);
        row
    }

    fn report(&self) -> IndexReport {
        let occupied = |s: u32| self.rows.get(s as usize).is_some_and(Option::is_some);
        let mut orphans = 0;
        for &slot in self.by_id.iter() {
            orphans +=
                usize::from(!occupied(slot) || self.slot_of_id(self.row(slot).id()) != Some(slot));
        }
        for &slot in self.by_digest.iter() {
            orphans += usize::from(
                !occupied(slot) || self.slot_of_digest(&self.row(slot).digest) != Some(slot),
            );
        }
        let mut by_user = 0;
        for &first in self.by_user.iter() {
            if !occupied(first) {
                orphans += 1;
                continue;
            }
            let user = self.row(first).user_id();
            let mut slot = first;
            while slot != NO_SLOT {
                if !occupied(slot) || self.row(slot).user_id() != user {
                    orphans += 1;
                    break;
                }
                by_user += 1;
                slot = self.row(slot).next_of_user;
            }
        }
        IndexReport {
            rows: self.rows.iter().flatten().count(),
            by_id: self.by_id.len(),
            by_digest: self.by_digest.len(),
            by_user,
            orphans,
        }
    }
}

impl MemoryStore {
    pub fn new(max_lifetime_seconds: u64) -> Self {
        MemoryStore {
            table: RwLock::new(Table::default()),
            max_lifetime_seconds,
        }
    }

    // A panic while holding the lock cannot leave a half-applied write behind (every write
    // finishes its index updates before anything can panic), so a poisoned lock is still sound.
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self, row: &Row, now: Millis) -> bool {
        now < Table::expires_at(row, self.max_lifetime_seconds)
    }

    /// Every live session with its token digest, for a snapshot.
    pub fn export(&self, now: Millis) -> Vec<SavedSession> {
        let table = self.read();
        table
            .rows
            .iter()
            .flatten()
            .filter(|row| self.live(row, now))
            .map(|row| SavedSession {
                digest: row.digest,
                data: table.data(row),
                last_active_at: row.last_active_at(),
            })
            .collect()
    }

    /// Inserts saved sessions that are still live and whose id and token are not taken;
    /// returns how many it inserted.
    pub fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        let mut table = self.write();
        let mut inserted = 0;
        for s in saved {
            let live = now
                < s.data
                    .expires_at(s.last_active_at, self.max_lifetime_seconds);
            let taken =
                table.slot_of_id(s.data.id).is_some() || table.slot_of_digest(&s.digest).is_some();
            if live && !taken {
                table.insert(s.data, s.digest, s.last_active_at);
                inserted += 1;
            }
        }
        inserted
    }

    /// Replaces every session with `saved` (the live ones): a replica catching up with its
    /// source.
    pub fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        *self.write() = Table::default();
        self.import(saved, now)
    }

    /// Records activity seen elsewhere; time never moves backwards.
    pub fn touch(&self, id: SessionId, at: Millis) {
        let table = self.read();
        if let Some(slot) = table.slot_of_id(id) {
            table.row(slot).last_active_at.fetch_max(at.0, Relaxed);
        }
    }

    /// Removes sessions ended elsewhere, live or not.
    pub fn forget(&self, ids: &[SessionId]) {
        let mut table = self.write();
        for id in ids {
            if let Some(slot) = table.slot_of_id(*id) {
                table.remove(slot);
            }
        }
    }

    /// Counts the rows that match `query` in `scope`, and keeps the first `limit + 1` of them
    /// after the cursor, in a max-heap whose top is the worst kept so far.
    fn rank<'a>(
        &self,
        table: &'a Table,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
        rows: impl Iterator<Item = (u32, &'a Row)>,
    ) -> (u64, BinaryHeap<Ranked<'a>>) {
        let wanted = query.limit + 1;
        let mut best = BinaryHeap::with_capacity(wanted + 1);
        // Organisations are shared values: an organisation no session has matches nothing,
        // and the others compare as numbers before any text is read.
        let organisation = match (scope, &query.filters.organisation) {
            (Scope::Organisation(own), Some(wanted)) if **own != **wanted => return (0, best),
            (Scope::Organisation(own), _) => Some(&**own),
            (Scope::All, wanted) => wanted.as_deref(),
        };
        let organisation = match organisation.map(|o| table.strings.find(o)) {
            Some(None) => return (0, best),
            Some(Some(n)) => Some(n),
            None => None,
        };
        let after = query
            .after
            .as_ref()
            .map(|position| (position.key.borrowed(), position.id));
        // Sorting by name, rows whose name prefix already places them before the cursor or
        // after the worst row kept are passed over without reading their names.
        let by_name = query.sort == SortField::Name;
        let descending = query.order == Order::Desc;
        let after_prefix = match &query.after {
            Some(Position {
                key: SortKey::Text(name),
                ..
            }) => Some(prefix(name)),
            _ => None,
        };
        let filtered = !query.filters.is_empty();
        let mut total = 0u64;
        for (slot, row) in rows {
            if organisation.is_some_and(|o| row.organisation != o) || !self.live(row, now) {
                continue;
            }
            if filtered && !query.filters.matches(&table.fields(row)) {
                continue;
            }
            total += 1;
            if by_name {
                let beyond = |p: u64, bound: u64| if descending { p < bound } else { p > bound };
                if after_prefix.is_some_and(|a| beyond(a, row.name_prefix)) {
                    continue;
                }
                if best.len() == wanted
                    && best
                        .peek()
                        .is_some_and(|worst: &Ranked| beyond(row.name_prefix, worst.name_prefix))
                {
                    continue;
                }
            }
            let key = query.sort.key(&table.fields(row));
            let id = row.id();
            if let Some((after_key, after_id)) = &after {
                if query.compare((&key, id), (after_key, *after_id)) != Ordering::Greater {
                    continue;
                }
            }
            let ranked = Ranked {
                key,
                id,
                slot,
                name_prefix: row.name_prefix,
                order: query.order,
            };
            if best.len() < wanted {
                best.push(ranked);
            } else if best.peek().is_some_and(|worst| ranked < *worst) {
                best.pop();
                best.push(ranked);
            }
        }
        (total, best)
    }
}

/// A row competing for a place on the page; `Ord` is the listing's order.
struct Ranked<'a> {
    key: SortKey<&'a str>,
    id: SessionId,
    slot: u32,
    name_prefix: u64,
    order: Order,
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let natural = self.key.cmp(&other.key).then(self.id.cmp(&other.id));
        match self.order {
            Order::Asc => natural,
            Order::Desc => natural.reverse(),
        }
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_> {}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(
        &self,
        insert: Insert,
        policy: ConcurrentSessions,
        now: Millis,
    ) -> Result<(SessionRecord, Vec<SessionId>), StoreError> {
        let mut table = self.write();
        let (live, expired): (Vec<u32>, Vec<u32>) = table
            .slots_of_user(&insert.session.user_id)
            .into_iter()
            .partition(|&slot| self.live(table.row(slot), now));
        for slot in expired {
            table.remove(slot);
        }
        let mut replaced = Vec::new();
        match policy {
            ConcurrentSessions::DenyOtherIp => {
                let ip = insert.session.ip_address;
                if live.iter().any(|&slot| table.row(slot).ip_address != ip) {
                    let existing = live
                        .iter()
                        .map(|&slot| {
                            let row = table.row(slot);
                            BlockingSession {
                                id: row.id(),
                                ip_address: row.ip_address,
                                server_name: table.strings.get(row.server_name).clone(),
                            }
                        })
                        .collect();
                    return Err(StoreError::LoginDenied(existing));
                }
            }
            ConcurrentSessions::Replace => {
                for slot in live {
                    replaced.push(table.remove(slot).id());
                }
            }
            ConcurrentSessions::Allow => {}
        }
        let Insert {
            id,
            digest,
            session,
        } = insert;
        let slot = table.insert(session.into_data(id, now), digest, now);
        Ok((
            table.record(table.row(slot), self.max_lifetime_seconds),
            replaced,
        ))
    }

    async fn authenticate(
        &self,
        digest: &TokenDigest,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let table = self.read();
        let Some(slot) = table.slot_of_digest(digest) else {
            return Ok(None);
        };
        let row = table.row(slot);
        if !self.live(row, now) {
            return Ok(None);
        }
        row.last_active_at.fetch_max(now.0, Relaxed);
        Ok(Some(table.record(row, self.max_lifetime_seconds)))
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let table = self.read();
        Ok(table.slot_of_id(id).and_then(|slot| {
            let row = table.row(slot);
            (self.live(row, now) && scope.admits(table.strings.get(row.organisation)))
                .then(|| table.record(row, self.max_lifetime_seconds))
        }))
    }

    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut table = self.write();
        let mut ended = Vec::new();
        for id in ids {
            let Some(slot) = table.slot_of_id(*id) else {
                continue;
            };
            let row = table.row(slot);
            if self.live(row, now) && scope.admits(table.strings.get(row.organisation)) {
                ended.push(table.record(row, self.max_lifetime_seconds));
                table.remove(slot);
            }
        }
        Ok(ended)
    }

    async fn list(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
    ) -> Result<Page, StoreError> {
        let table = self.read();
        // A user filter follows that user's chain: only their rows are looked at.
        let (total, best) = match &query.filters.user_id {
            Some(user) => {
                let slots = table.slots_of_user(user);
                let rows = slots.into_iter().map(|slot| (slot, table.row(slot)));
                self.rank(&table, query, scope, now, rows)
            }
            None => {
                let rows = table
                    .rows
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, row)| row.as_ref().map(|row| (slot as u32, row)));
                self.rank(&table, query, scope, now, rows)
            }
        };
        let mut ranked = best.into_sorted_vec();
        let more = ranked.len() > query.limit;
        ranked.truncate(query.limit);
        let items = ranked
            .iter()
            .map(|r| table.record(table.row(r.slot), self.max_lifetime_seconds))
            .collect();
        Ok(Page { items, total, more })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        let table = self.read();
        let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
        for row in table
            .rows
            .iter()
            .flatten()
            .filter(|row| self.live(row, now))
        {
            *counts
                .entry((row.organisation, row.server_name))
                .or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((organisation, server_name), sessions)| Census {
                organisation: table.strings.get(organisation).clone(),
                server_name: table.strings.get(server_name).clone(),
                sessions,
            })
            .collect())
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        Ok(self.read().report())
    }

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        let mut table = self.write();
        let expired: Vec<u32> = table
            .rows
            .iter()
            .enumerate()
            .filter_map(|(slot, row)| {
                row.as_ref()
                    .filter(|row| !self.live(row, now))
                    .map(|_| slot as u32)
            })
            .collect();
        for &slot in &expired {
            table.remove(slot);
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_small() {
        assert!(
            std::mem::size_of::<Option<Row>>() <= 136,
            "{}",
            std::mem::size_of::<Option<Row>>()
        );
    }

    #[test]
    fn prefixes_order_as_their_texts() {
        let mut names = [
            "Bob",
            "Bobson",
            "Bob Brown",
            "",
            "Élodie",
            "adam",
            "Bobsonnet Z",
        ];
        names.sort();
        let prefixes: Vec<u64> = names.iter().map(|n| prefix(n)).collect();
        assert!(prefixes.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn shared_values_are_freed_with_their_last_row() {
        let mut shared: Interner<Arc<str>> = Interner::default();
        let a = shared.acquire("Acme".into());
        assert_eq!(shared.acquire("Acme".into()), a);
        shared.release(a);
        assert_eq!(shared.find("Acme"), Some(a));
        shared.release(a);
        assert_eq!(shared.find("Acme"), None);
        assert_eq!(shared.acquire("Globex".into()), a, "the slot is reused");
    }
}
