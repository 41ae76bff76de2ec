//! The embedded store: every session in one table behind one reader-writer lock.
//!
//! Reads (validation, listing) share the lock; a validation's touch is an atomic store into its
//! row, so it needs no write access. Writes (login, logout, deletes, reaping) take the lock
//! alone, which makes the policy's check-and-insert and the upkeep of the three indexes one
//! atomic step. Rows sit in one contiguous vector, so a listing scans memory in order instead
//! of chasing pointers through hash-map shards.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::{Census, Existing, IndexReport, Insert, Page, SessionStore, StoreError};
use crate::domain::{
    ConcurrentSessions, ListQuery, Millis, Order, Scope, SessionData, SessionId, SessionRecord,
    SortKey, TokenDigest,
};

pub struct MemoryStore {
    table: RwLock<Table>,
    max_lifetime_seconds: u64,
}

/// A session as a snapshot keeps it.
#[derive(Debug)]
pub struct Saved {
    pub digest: TokenDigest,
    pub data: SessionData,
    pub last_active_at: Millis,
}

struct Row {
    data: SessionData,
    digest: TokenDigest,
    last_active_at: AtomicU64,
}

impl Row {
    fn last_active_at(&self) -> Millis {
        Millis(self.last_active_at.load(Relaxed))
    }

    fn expires_at(&self, max_lifetime_seconds: u64) -> Millis {
        self.data
            .expires_at(self.last_active_at(), max_lifetime_seconds)
    }

    fn record(&self, max_lifetime_seconds: u64) -> SessionRecord {
        let last_active_at = self.last_active_at();
        SessionRecord {
            data: self.data.clone(),
            last_active_at,
            expires_at: self.data.expires_at(last_active_at, max_lifetime_seconds),
        }
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    by_id: HashMap<SessionId, u32>,
    by_digest: HashMap<TokenDigest, u32>,
    by_user: HashMap<Arc<str>, Vec<u32>>,
    /// Organisations, server names, user agents and role names: few distinct values shared by
    /// many sessions, each kept once.
    strings: HashSet<Arc<str>>,
    role_sets: HashSet<Arc<[Arc<str>]>>,
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
        now < row.expires_at(self.max_lifetime_seconds)
    }

    /// Counts the rows that match `query` in `scope`, and keeps the first `limit + 1` of them
    /// after the cursor, in a max-heap whose top is the worst kept so far.
    fn rank<'a>(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
        rows: impl Iterator<Item = (u32, &'a Row)>,
    ) -> (u64, BinaryHeap<Ranked<'a>>) {
        let wanted = query.limit + 1;
        let after = query
            .after
            .as_ref()
            .map(|position| (position.key.borrowed(), position.id));
        let mut total = 0u64;
        let mut best = BinaryHeap::with_capacity(wanted + 1);
        for (slot, row) in rows {
            if !self.live(row, now)
                || !scope.admits(&row.data.organisation)
                || !query.filters.matches(&row.data)
            {
                continue;
            }
            total += 1;
            let key = query.sort.key(&row.data, row.last_active_at());
            let id = row.data.id;
            if let Some((after_key, after_id)) = &after {
                if query.compare((&key, id), (after_key, *after_id)) != Ordering::Greater {
                    continue;
                }
            }
            let ranked = Ranked {
                key,
                id,
                slot,
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

    /// Every live session with its token digest, for a snapshot.
    pub fn export(&self, now: Millis) -> Vec<Saved> {
        let table = self.read();
        table
            .rows
            .iter()
            .flatten()
            .filter(|row| self.live(row, now))
            .map(|row| Saved {
                digest: row.digest,
                data: row.data.clone(),
                last_active_at: row.last_active_at(),
            })
            .collect()
    }

    /// Inserts saved sessions that are still live and whose id and token are not taken;
    /// returns how many it inserted.
    pub fn import(&self, saved: Vec<Saved>, now: Millis) -> usize {
        let mut table = self.write();
        let mut inserted = 0;
        for s in saved {
            let live = now
                < s.data
                    .expires_at(s.last_active_at, self.max_lifetime_seconds);
            let taken =
                table.by_id.contains_key(&s.data.id) || table.by_digest.contains_key(&s.digest);
            if live && !taken {
                table.insert(s.data, s.digest, s.last_active_at);
                inserted += 1;
            }
        }
        inserted
    }

    /// Replaces every session with `saved` (the live ones): a replica catching up with its
    /// source.
    pub fn replace_all(&self, saved: Vec<Saved>, now: Millis) -> usize {
        *self.write() = Table::default();
        self.import(saved, now)
    }

    /// Records activity seen elsewhere; time never moves backwards.
    pub fn touch(&self, id: SessionId, at: Millis) {
        let table = self.read();
        if let Some(&slot) = table.by_id.get(&id) {
            table.row(slot).last_active_at.fetch_max(at.0, Relaxed);
        }
    }

    /// Removes sessions ended elsewhere, live or not.
    pub fn forget(&self, ids: &[SessionId]) {
        let mut table = self.write();
        for id in ids {
            if let Some(&slot) = table.by_id.get(id) {
                table.remove(slot);
            }
        }
    }

    /// Counts rows and index entries and every entry that does not match its row.
    fn report(&self) -> IndexReport {
        let table = self.read();
        let row_at = |slot: u32| table.rows.get(slot as usize).and_then(Option::as_ref);
        let mut orphans = 0;
        for (id, &slot) in &table.by_id {
            orphans += usize::from(row_at(slot).is_none_or(|r| r.data.id != *id));
        }
        for (digest, &slot) in &table.by_digest {
            orphans += usize::from(row_at(slot).is_none_or(|r| r.digest != *digest));
        }
        for (user, slots) in &table.by_user {
            for &slot in slots {
                orphans += usize::from(row_at(slot).is_none_or(|r| r.data.user_id != *user));
            }
            orphans += usize::from(slots.is_empty());
        }
        IndexReport {
            rows: table.rows.iter().flatten().count(),
            by_id: table.by_id.len(),
            by_digest: table.by_digest.len(),
            by_user: table.by_user.values().map(Vec::len).sum(),
            orphans,
        }
    }
}

impl Table {
    fn row(&self, slot: u32) -> &Row {
        self.rows[slot as usize]
            .as_ref()
            .expect("indexes point only at occupied slots")
    }

    fn intern(&mut self, value: &Arc<str>) -> Arc<str> {
        match self.strings.get(&**value) {
            Some(kept) => kept.clone(),
            None => {
                self.strings.insert(value.clone());
                value.clone()
            }
        }
    }

    fn intern_roles(&mut self, roles: &[Arc<str>]) -> Arc<[Arc<str>]> {
        if let Some(kept) = self.role_sets.get(roles) {
            return kept.clone();
        }
        let interned: Arc<[Arc<str>]> = roles.iter().map(|r| self.intern(r)).collect();
        self.role_sets.insert(interned.clone());
        interned
    }

    /// Inserts a session with its strings interned, and indexes it.
    fn insert(&mut self, data: SessionData, digest: TokenDigest, last_active_at: Millis) -> u32 {
        let user_id = match self.by_user.get_key_value(&*data.user_id) {
            Some((kept, _)) => kept.clone(),
            None => data.user_id,
        };
        let id = data.id;
        let data = SessionData {
            user_id: user_id.clone(),
            organisation: self.intern(&data.organisation),
            server_name: self.intern(&data.server_name),
            roles: self.intern_roles(&data.roles),
            user_agent: data.user_agent.map(|ua| self.intern(&ua)),
            ..data
        };
        let row = Row {
            data,
            digest,
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
        self.by_id.insert(id, slot);
        self.by_digest.insert(digest, slot);
        self.by_user.entry(user_id).or_default().push(slot);
        slot
    }

    fn remove(&mut self, slot: u32) -> Row {
        let row = self.rows[slot as usize]
            .take()
            .expect("indexes point only at occupied slots");
        self.by_id.remove(&row.data.id);
        self.by_digest.remove(&row.digest);
        if let Entry::Occupied(mut entry) = self.by_user.entry(row.data.user_id.clone()) {
            entry.get_mut().retain(|&s| s != slot);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
        self.free.push(slot);
        row
    }

    /// Drops interned values that no session refers to any more.
    fn prune_interned(&mut self) {
        self.role_sets.retain(|set| Arc::strong_count(set) > 1);
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }
}

/// A row competing for a place on the page; `Ord` is the listing's order.
struct Ranked<'a> {
    key: SortKey<&'a str>,
    id: SessionId,
    slot: u32,
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
        let mine = table
            .by_user
            .get(&*insert.session.user_id)
            .cloned()
            .unwrap_or_default();
        let (live, expired): (Vec<u32>, Vec<u32>) = mine
            .into_iter()
            .partition(|&slot| self.live(table.row(slot), now));
        for slot in expired {
            table.remove(slot);
        }
        let mut replaced = Vec::new();
        match policy {
            ConcurrentSessions::DenyOtherIp => {
                let ip = insert.session.ip_address;
                if live
                    .iter()
                    .any(|&slot| table.row(slot).data.ip_address != ip)
                {
                    let existing = live
                        .iter()
                        .map(|&slot| {
                            let data = &table.row(slot).data;
                            Existing {
                                id: data.id,
                                ip_address: data.ip_address,
                                server_name: data.server_name.clone(),
                            }
                        })
                        .collect();
                    return Err(StoreError::LoginDenied(existing));
                }
            }
            ConcurrentSessions::Replace => {
                for slot in live {
                    replaced.push(table.remove(slot).data.id);
                }
            }
            ConcurrentSessions::Allow => {}
        }
        let Insert {
            id,
            digest,
            session,
        } = insert;
        let data = SessionData {
            id,
            user_id: session.user_id,
            name: session.name,
            organisation: session.organisation,
            ip_address: session.ip_address,
            server_name: session.server_name,
            roles: session.roles.into(),
            user_agent: session.user_agent,
            timeout_seconds: session.timeout_seconds,
            created_at: now,
        };
        let slot = table.insert(data, digest, now);
        Ok((table.row(slot).record(self.max_lifetime_seconds), replaced))
    }

    async fn authenticate(
        &self,
        digest: &TokenDigest,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let table = self.read();
        let Some(&slot) = table.by_digest.get(digest) else {
            return Ok(None);
        };
        let row = table.row(slot);
        if !self.live(row, now) {
            return Ok(None);
        }
        row.last_active_at.fetch_max(now.0, Relaxed);
        Ok(Some(row.record(self.max_lifetime_seconds)))
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let table = self.read();
        Ok(table.by_id.get(&id).and_then(|&slot| {
            let row = table.row(slot);
            (self.live(row, now) && scope.admits(&row.data.organisation))
                .then(|| row.record(self.max_lifetime_seconds))
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
            let Some(&slot) = table.by_id.get(id) else {
                continue;
            };
            let row = table.row(slot);
            if self.live(row, now) && scope.admits(&row.data.organisation) {
                ended.push(table.remove(slot).record(self.max_lifetime_seconds));
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
        // A user filter has its own index: only that user's rows are looked at.
        let (total, best) = match &query.filters.user_id {
            Some(user) => self.rank(
                query,
                scope,
                now,
                table
                    .by_user
                    .get(user.as_str())
                    .into_iter()
                    .flatten()
                    .map(|&slot| (slot, table.row(slot))),
            ),
            None => self.rank(
                query,
                scope,
                now,
                table
                    .rows
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, row)| row.as_ref().map(|row| (slot as u32, row))),
            ),
        };
        let mut ranked = best.into_sorted_vec();
        let more = ranked.len() > query.limit;
        ranked.truncate(query.limit);
        let items = ranked
            .iter()
            .map(|r| table.row(r.slot).record(self.max_lifetime_seconds))
            .collect();
        Ok(Page { items, total, more })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        let table = self.read();
        // Interned strings: the pointer identifies the value.
        let mut counts: HashMap<(*const u8, *const u8), Census> = HashMap::new();
        for row in table
            .rows
            .iter()
            .flatten()
            .filter(|row| self.live(row, now))
        {
            let (org, server) = (&row.data.organisation, &row.data.server_name);
            counts
                .entry((org.as_ptr(), server.as_ptr()))
                .or_insert_with(|| Census {
                    organisation: org.clone(),
                    server_name: server.clone(),
                    sessions: 0,
                })
                .sessions += 1;
        }
        Ok(counts.into_values().collect())
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        Ok(self.report())
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
        table.prune_interned();
        Ok(expired.len())
    }
}
