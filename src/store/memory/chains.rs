//! Each user's sessions as a doubly linked chain of rows, headed by the user's entry in the
//! user map. Every rule about one user runs under that entry's lock, so it is atomic for that
//! user while logins of other users proceed; linking and unlinking a row are O(1), and only a
//! login walks its user's chain.
//!
//! Locks are always taken in one order: a user's entry, then an organisation's seats, then
//! shards one at a time; no code holds a shard while it waits for anything else.

use compact_str::CompactString;
use dashmap::mapref::one::RefMut;

use super::rows::{shard_of, Row, RowRef, Shard};
use super::Engine;
use crate::domain::{EndReason, Millis, SessionData, SessionId, SessionRecord, TokenDigest};
use crate::events::Ended;

/// The head of a user's chain of rows, and its length.
#[derive(Clone, Copy, Debug)]
pub(super) struct UserChain {
    pub(super) head: RowRef,
    pub(super) count: u32,
}

/// A user's entry, held: the user's lock.
pub(super) type HeldUser<'a> = RefMut<'a, CompactString, UserChain>;

impl Engine {
    /// Takes `user`'s entry, making an empty chain for a user new here.
    pub(super) fn hold_user(&self, user: &str) -> HeldUser<'_> {
        self.users
            .entry(CompactString::from(user))
            .or_insert(UserChain {
                head: RowRef::END,
                count: 0,
            })
    }

    /// Lets go of a user's entry, removing it if the user has no session left.
    pub(super) fn let_go(&self, chain: HeldUser<'_>) {
        if chain.count > 0 {
            return;
        }
        let user = chain.key().clone();
        drop(chain);
        self.users.remove_if(&user, |_, chain| chain.count == 0);
    }

    /// Stores a session at the head of its user's chain and in its organisation's seats. The
    /// caller holds the user's entry.
    pub(super) fn link(
        &self,
        chain: &mut UserChain,
        data: &SessionData,
        digest: TokenDigest,
        last_active_at: Millis,
    ) -> RowRef {
        let at = self.link_unseated(chain, data, digest, last_active_at);
        self.seats.hold(&data.organisation, &data.user_id, at);
        at
    }

    /// [`Engine::link`] without the seats: for a restore, which fills them afterwards.
    pub(super) fn link_unseated(
        &self,
        chain: &mut UserChain,
        data: &SessionData,
        digest: TokenDigest,
        last_active_at: Millis,
    ) -> RowRef {
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

    /// Removes the row at `at` from its seats, its shard and its user's chain, in O(1); returns
    /// its id and its token's digest. The caller holds the user's entry.
    pub(super) fn unlink(&self, chain: &mut UserChain, at: RowRef) -> (SessionId, TokenDigest) {
        let (organisation, user) = {
            let rows = self.shard(at.shard());
            let row = rows.row(at.slot());
            (
                rows.labels.get(row.organisation).clone(),
                row.user_id.clone(),
            )
        };
        self.seats.release(&organisation, &user, at);
        let (row, _) = self.shard_mut(at.shard()).remove(at.slot());
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
        (row.id(), row.digest)
    }

    /// Unlinks the row at `at`, which ended for `reason`, and says so. The caller holds the
    /// user's entry.
    pub(super) fn end_linked(
        &self,
        chain: &mut UserChain,
        at: RowRef,
        reason: EndReason,
        now: Millis,
    ) -> SessionId {
        let described = self.changes.describes_ends().then(|| {
            let rows = self.shard(at.shard());
            describe(&rows, rows.row(at.slot()), reason)
        });
        let (id, digest) = self.unlink(chain, at);
        self.changes.ended(id, &digest, reason, described, now);
        id
    }

    /// The rows of a user's chain. The caller holds the user's entry.
    pub(super) fn chain(&self, chain: &UserChain) -> Vec<RowRef> {
        let mut rows = Vec::with_capacity(chain.count as usize);
        let mut at = chain.head;
        while at != RowRef::END {
            rows.push(at);
            at = self.shard(at.shard()).row(at.slot()).next_of_user;
        }
        rows
    }

    /// Ends the session `id` for `reason` if `admits` its row; returns it as it was.
    pub(super) fn end(
        &self,
        id: SessionId,
        reason: EndReason,
        now: Millis,
        admits: impl Fn(&Shard, &Row) -> bool,
    ) -> Option<SessionRecord> {
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
        let (_, digest) = self.unlink(&mut chain, at);
        self.changes.ended_record(&record, &digest, reason, now);
        self.let_go(chain);
        Some(record)
    }
}

/// A row's end, as its event tells it.
fn describe(rows: &Shard, row: &Row, reason: EndReason) -> Ended {
    Ended {
        id: row.id(),
        user_id: row.user_id.clone(),
        organisation: CompactString::from(&**rows.labels.get(row.organisation)),
        server_name: CompactString::from(&**rows.labels.get(row.server_name)),
        reason,
        holds_admin: rows.holds_admin(row),
    }
}
