//! The consistency check behind tests: every index entry points at a row with its key, and
//! every user's chain is whole.

use super::rows::{RowRef, SHARDS};
use super::Engine;
use crate::store::IndexReport;

impl Engine {
    pub(super) fn check_indexes(&self) -> IndexReport {
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
        IndexReport {
            rows,
            by_id,
            by_user,
            orphans,
        }
    }
}
