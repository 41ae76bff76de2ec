//! Where sessions are kept: rows in 64 independently locked shards, each row found by its id
//! (the token's selector) through a slot-only hash table, and a [`RowRef`] naming a row's shard
//! and slot in 4 bytes (the links of a user's chain).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use compact_str::CompactString;
use hashbrown::HashTable;

use super::interner::Interner;
use crate::domain::listing::Bigrams;
use crate::domain::session::{expires_at, holds_admin};
use crate::domain::{Device, Millis, Scope, SessionData, SessionId, SessionRecord, TokenDigest};

pub(super) const SHARD_BITS: u32 = 6;
pub(super) const SHARDS: usize = 1 << SHARD_BITS;
pub(super) const SLOT_BITS: u32 = 32 - SHARD_BITS;
/// An absent interned value (a session without a user agent).
pub(super) const NO_VALUE: u32 = u32::MAX;
/// No time: a session whose authentication never becomes too old.
const NEVER: u64 = u64::MAX;

/// Where a row is: its shard and its slot there, in one `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RowRef(u32);

impl RowRef {
    /// The end of a user's chain.
    pub(super) const END: RowRef = RowRef(u32::MAX);

    pub(super) fn new(shard: usize, slot: u32) -> Self {
        RowRef(((shard as u32) << SLOT_BITS) | slot)
    }

    pub(super) fn shard(self) -> usize {
        (self.0 >> SLOT_BITS) as usize
    }

    pub(super) fn slot(self) -> u32 {
        self.0 & ((1 << SLOT_BITS) - 1)
    }
}

pub(super) fn shard_of(id: SessionId) -> usize {
    (id.as_u128() as usize) & (SHARDS - 1)
}

// Ids are uniformly random: their own bits are the hash (mixed, so the shard bits do not repeat
// in the hash of every row of a shard).
pub(super) fn id_hash(id: SessionId) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64).rotate_left(32)
}

pub(super) fn id_halves(id: SessionId) -> [u64; 2] {
    let v = id.as_u128();
    [(v >> 64) as u64, v as u64]
}

pub(super) struct Row {
    /// The session id, as two halves (a `u128` would force 16-byte alignment on every row).
    pub(super) id: [u64; 2],
    pub(super) digest: TokenDigest,
    pub(super) user_id: CompactString,
    pub(super) name: CompactString,
    pub(super) created_at: u64,
    /// Raised in place by validation, under the shard's read lock.
    pub(super) last_active_at: AtomicU64,
    pub(super) ip_address: IpAddr,
    pub(super) organisation: u32,
    pub(super) server_name: u32,
    pub(super) roles: u32,
    pub(super) user_agent: u32,
    pub(super) device: u32,
    pub(super) timeout_seconds: u32,
    pub(super) assurance_level: u8,
    pub(super) authenticated_at: u64,
    /// [`NEVER`] for none.
    pub(super) reauthenticate_by: u64,
    /// The client address last reported, when it is not `ip_address`.
    pub(super) moved_to: Option<Box<IpAddr>>,
    pub(super) previous_of_user: RowRef,
    pub(super) next_of_user: RowRef,
    /// Byte pairs of name, user id and address, so a search passes over most rows unread.
    pub(super) bigrams: Bigrams,
}

impl Row {
    pub(super) fn id(&self) -> SessionId {
        SessionId::from_u128((u128::from(self.id[0]) << 64) | u128::from(self.id[1]))
    }

    pub(super) fn last_active_at(&self) -> Millis {
        Millis(self.last_active_at.load(Relaxed))
    }

    pub(super) fn expires_at(&self, max_lifetime_seconds: u64) -> Millis {
        expires_at(
            self.last_active_at(),
            self.timeout_seconds,
            Millis(self.created_at),
            max_lifetime_seconds,
            self.reauthenticate_by(),
        )
    }

    pub(super) fn reauthenticate_by(&self) -> Option<Millis> {
        (self.reauthenticate_by != NEVER).then_some(Millis(self.reauthenticate_by))
    }

    /// Takes from `data` what a login sets and a renewal or a reported address may change:
    /// the idle timeout and the authentication, and the client address (kept only when it is
    /// not the login's).
    pub(super) fn take_changeable(&mut self, data: &SessionData) {
        self.timeout_seconds = data.timeout_seconds;
        self.assurance_level = data.assurance_level;
        self.authenticated_at = data.authenticated_at.0;
        self.reauthenticate_by = data.reauthenticate_by.map_or(NEVER, |by| by.0);
        self.moved_to =
            (data.last_ip_address != data.ip_address).then(|| Box::new(data.last_ip_address));
    }
}

/// One shard: rows in a contiguous vector, found by id through a slot-only hash table, and
/// the shared values its rows use.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) rows: Vec<Option<Row>>,
    pub(super) free: Vec<u32>,
    pub(super) by_id: HashTable<u32>,
    /// Organisations and server names.
    pub(super) labels: Interner<Arc<str>>,
    pub(super) agents: Interner<Arc<str>>,
    pub(super) devices: Interner<Arc<Device>>,
    pub(super) role_sets: Interner<Arc<[Arc<str>]>>,
}

impl Shard {
    /// A shard with room for `rows` rows.
    pub(super) fn with_capacity(rows: usize) -> Self {
        Shard {
            rows: Vec::with_capacity(rows),
            by_id: HashTable::with_capacity(rows),
            ..Shard::default()
        }
    }

    pub(super) fn row(&self, slot: u32) -> &Row {
        self.rows[slot as usize]
            .as_ref()
            .expect("the index and chains point only at occupied slots")
    }

    pub(super) fn row_mut(&mut self, slot: u32) -> &mut Row {
        self.rows[slot as usize]
            .as_mut()
            .expect("the index and chains point only at occupied slots")
    }

    pub(super) fn slot_of(&self, id: SessionId) -> Option<u32> {
        let halves = id_halves(id);
        self.by_id
            .find(id_hash(id), |&s| self.row(s).id == halves)
            .copied()
    }

    pub(super) fn data(&self, row: &Row) -> SessionData {
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
            device: (row.device != NO_VALUE).then(|| self.devices.get(row.device).clone()),
            timeout_seconds: row.timeout_seconds,
            created_at: Millis(row.created_at),
            authenticated_at: Millis(row.authenticated_at),
            assurance_level: row.assurance_level,
            reauthenticate_by: row.reauthenticate_by(),
            last_ip_address: row.moved_to.as_deref().copied().unwrap_or(row.ip_address),
        }
    }

    pub(super) fn record(&self, row: &Row, max_lifetime_seconds: u64) -> SessionRecord {
        SessionRecord::new(self.data(row), row.last_active_at(), max_lifetime_seconds)
    }

    /// Stores a session, interning its shared values here; returns its slot.
    pub(super) fn insert(
        &mut self,
        data: &SessionData,
        digest: TokenDigest,
        last_active_at: Millis,
        next_of_user: RowRef,
    ) -> u32 {
        let ip = data.ip_address.to_string();
        let mut row = Row {
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
            device: data
                .device
                .as_ref()
                .map_or(NO_VALUE, |device| self.devices.acquire(device)),
            timeout_seconds: 0,
            assurance_level: 0,
            authenticated_at: 0,
            reauthenticate_by: NEVER,
            moved_to: None,
            previous_of_user: RowRef::END,
            next_of_user,
        };
        row.take_changeable(data);
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
    pub(super) fn remove(&mut self, slot: u32) -> (Row, Arc<str>) {
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
        if row.device != NO_VALUE {
            self.devices.release(row.device);
        }
        (row, organisation)
    }

    pub(super) fn occupied(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().flatten()
    }

    pub(super) fn holds_admin(&self, row: &Row) -> bool {
        holds_admin(self.role_sets.get(row.roles))
    }

    pub(super) fn in_scope(&self, row: &Row, scope: &Scope) -> bool {
        scope.admits(self.labels.get(row.organisation), self.holds_admin(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_small() {
        let size = std::mem::size_of::<Option<Row>>();
        assert!(size <= 200, "{size}");
    }

    #[test]
    fn row_refs_keep_shard_and_slot() {
        let at = RowRef::new(SHARDS - 1, (1 << SLOT_BITS) - 2);
        assert_eq!(at.shard(), SHARDS - 1);
        assert_eq!(at.slot(), (1 << SLOT_BITS) - 2);
        assert_ne!(at, RowRef::END);
    }
}
