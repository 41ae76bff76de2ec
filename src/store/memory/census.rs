//! Counting the live sessions: by organisation, server and role `admin` (the census behind
//! the metrics and the summary), and the distinct users.

use std::sync::Arc;

use compact_str::CompactString;
use hashbrown::HashMap;

use super::rows::SHARDS;
use super::Engine;
use crate::domain::Millis;
use crate::store::{Census, UserCount, Users};

impl Engine {
    pub(super) fn census(&self, now: Millis) -> Vec<Census> {
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
    pub(super) fn users(&self, now: Millis) -> Users {
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

    /// How many users have a live session in `organisation`: its seats in use.
    pub(super) fn seats_in_use(&self, organisation: &str, now: Millis) -> usize {
        self.seats.in_use(organisation, |at| {
            self.live(self.shard(at.shard()).row(at.slot()), now)
        })
    }
}
