//! Sessions ending by request (logout, an administrator, the user's own other session) and by
//! expiry (the reaper frees their memory).

use super::rows::{Row, SHARDS};
use super::Engine;
use crate::domain::{EndReason, Millis, Scope, SessionId, SessionRecord};

impl Engine {
    /// Ends the live sessions among `ids` that are in `scope`; returns them as they were.
    pub(super) fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Vec<SessionRecord> {
        ids.iter()
            .filter_map(|&id| {
                self.end(id, reason, now, |shard, row| {
                    self.live(row, now) && shard.in_scope(row, scope)
                })
            })
            .collect()
    }

    /// Removes the sessions that have expired, each said as ended (`expired`).
    pub(super) fn reap(&self, now: Millis) -> usize {
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
        expired
            .into_iter()
            .filter_map(|id| self.end(id, EndReason::Expired, now, |_, row| !self.live(row, now)))
            .count()
    }
}
