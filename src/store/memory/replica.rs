//! Sessions in bulk: exported for a snapshot, imported from one, and a replica (the Redis
//! store's copy for listing) following changes made elsewhere.

use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;

use hashbrown::HashMap;

use super::rows::{shard_of, RowRef, Shard, SHARDS};
use super::{Engine, SavedSession};
use crate::domain::{EndReason, Millis, SessionId};

impl Engine {
    /// Inserts a saved session unless it has expired or its id is taken; `seated` also
    /// records its seat (a restore records seats afterwards, in bulk).
    fn insert_saved(&self, saved: &SavedSession, now: Millis, seated: bool) -> Option<RowRef> {
        let data = &saved.data;
        if now >= data.expires_at(saved.last_active_at, self.max_lifetime_seconds) {
            return None;
        }
        let mut chain = self.hold_user(&data.user_id);
        // Checked under the user's entry: a session's id and user never change.
        if self.shard(shard_of(data.id)).slot_of(data.id).is_some() {
            return None;
        }
        Some(match seated {
            true => self.link(&mut chain, data, saved.digest, saved.last_active_at),
            false => self.link_unseated(&mut chain, data, saved.digest, saved.last_active_at),
        })
    }

    /// Inserts the live ones of `saved` in parallel, then their seats one organisation at a
    /// time (taking each organisation's entry once, not once per session). Only while nothing
    /// else uses the store: start-up.
    pub(super) fn restore(&self, saved: &[SavedSession], now: Millis) -> usize {
        let placed: Vec<(&SavedSession, RowRef)> = saved
            .par_iter()
            .filter_map(|s| self.insert_saved(s, now, false).map(|at| (s, at)))
            .collect();
        let mut by_organisation: HashMap<&str, Vec<(&str, RowRef)>> = HashMap::new();
        for (s, at) in &placed {
            by_organisation
                .entry(&s.data.organisation)
                .or_default()
                .push((&s.data.user_id, *at));
        }
        let by_organisation: Vec<(&str, Vec<(&str, RowRef)>)> =
            by_organisation.into_iter().collect();
        by_organisation
            .into_par_iter()
            .for_each(|(organisation, rows)| self.seats.hold_all(organisation, rows));
        placed.len()
    }

    pub(super) fn export(&self, now: Millis) -> Vec<SavedSession> {
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

    pub(super) fn import(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        saved
            .par_iter()
            .filter(|s| self.insert_saved(s, now, true).is_some())
            .count()
    }

    pub(super) fn replace_all(&self, saved: Vec<SavedSession>, now: Millis) -> usize {
        self.users.clear();
        self.seats.clear();
        for n in 0..SHARDS {
            *self.shard_mut(n) = Shard::default();
        }
        self.import(saved, now)
    }

    pub(super) fn touch(&self, id: SessionId, at: Millis) {
        let rows = self.shard(shard_of(id));
        if let Some(slot) = rows.slot_of(id) {
            rows.row(slot).last_active_at.fetch_max(at.0, Relaxed);
        }
    }

    /// Sessions last active at `since` or later, with when.
    pub(super) fn active_since(&self, since: Millis) -> Vec<(SessionId, Millis)> {
        (0..SHARDS)
            .flat_map(|n| {
                let rows = self.shard(n);
                rows.occupied()
                    .filter(|row| row.last_active_at() >= since)
                    .map(|row| (row.id(), row.last_active_at()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Removes sessions ended elsewhere (a replica says nothing of them: its source did).
    pub(super) fn forget(&self, ids: &[SessionId]) {
        for &id in ids {
            self.end(id, EndReason::Admin, Millis(0), |_, _| true);
        }
    }
}
