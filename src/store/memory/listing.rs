//! A page of the session list: every shard ranked in parallel, each keeping a bounded top-k
//! heap, then merged; a user filter follows that user's chain instead.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use compact_str::CompactString;
use rayon::prelude::*;

use super::rows::{shard_of, Row, Shard, SHARDS};
use super::Engine;
use crate::domain::listing::Search;
use crate::domain::{ListQuery, Millis, Order, Scope, SessionId, SortField, SortKey};
use crate::store::Page;

impl Engine {
    pub(super) fn list(&self, query: &ListQuery, scope: &Scope, now: Millis) -> Page {
        let empty = || Page {
            items: Vec::new(),
            total: 0,
            more: false,
        };
        let organisation = match (scope, &query.filters.organisation) {
            (Scope::Organisation(own), Some(wanted)) if **own != **wanted => return empty(),
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
                    return empty();
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
        Page { items, total, more }
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
