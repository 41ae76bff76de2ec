//! Organisation seats: per organisation, the users with sessions there and where those sessions
//! are, so that counting the seats in use reads rows directly.
//!
//! Counting never looks a user up in the user map: a login holds its own user's entry there,
//! which locks that entry's whole map shard, so other users of the shard could not be read
//! (and counting them as seated refused logins while seats were free). Rows are reached by
//! their [`RowRef`]s instead, under their shard's read lock.
//!
//! A row's reference is added after the row is stored and removed before it is freed, both
//! under the organisation's entry here, so a count never meets a freed or reused slot.

use compact_str::CompactString;
use dashmap::DashMap;
use hashbrown::{DefaultHashBuilder, HashMap};

use super::rows::RowRef;

/// Where one user's sessions in one organisation are.
#[derive(Debug)]
enum Seated {
    /// A login is taking the seat; its row is not stored yet.
    Reserved,
    One(RowRef),
    /// Boxed as a slice to keep the common case (one session) small.
    Many(Box<[RowRef]>),
}

impl Seated {
    /// The seat with row `at` added (taking up a reservation).
    fn with(self, at: RowRef) -> Seated {
        match self {
            Seated::Reserved => Seated::One(at),
            Seated::One(first) => Seated::Many(Box::new([first, at])),
            Seated::Many(rows) => {
                let mut rows = rows.into_vec();
                rows.push(at);
                Seated::Many(rows.into_boxed_slice())
            }
        }
    }

    /// The seat without row `at`; `None` when nothing holds it any more.
    fn without(self, at: RowRef) -> Option<Seated> {
        match self {
            Seated::One(only) if only == at => None,
            Seated::Many(rows) => {
                let rest: Vec<RowRef> = rows.iter().copied().filter(|&r| r != at).collect();
                Some(match rest[..] {
                    [only] => Seated::One(only),
                    _ => Seated::Many(rest.into_boxed_slice()),
                })
            }
            kept => Some(kept),
        }
    }

    /// Whether the user holds the seat now: a login is taking it, or a session is live.
    fn holds(&self, live: &impl Fn(RowRef) -> bool) -> bool {
        match self {
            Seated::Reserved => true,
            Seated::One(at) => live(*at),
            Seated::Many(rows) => rows.iter().any(|&at| live(at)),
        }
    }
}

type Organisation = HashMap<CompactString, Seated>;

pub(super) struct Seats(DashMap<CompactString, Organisation, DefaultHashBuilder>);

impl Default for Seats {
    fn default() -> Self {
        Seats(DashMap::with_hasher_and_shard_amount(
            DefaultHashBuilder::default(),
            super::rows::SHARDS,
        ))
    }
}

impl Seats {
    /// Reserves a seat in `organisation` for `user`, who has no live session there, unless
    /// `limit` other users hold seats now (`live` tells whether a row is live). Decided under
    /// the organisation's entry, so racing logins see each other's reservations.
    pub(super) fn reserve(
        &self,
        organisation: &str,
        user: &str,
        limit: u32,
        live: impl Fn(RowRef) -> bool,
    ) -> bool {
        let mut seated = self.0.entry(CompactString::from(organisation)).or_default();
        if !seated.contains_key(user)
            && seated.len() >= limit as usize
            && holders(&seated, &live) >= limit as usize
        {
            return false;
        }
        seated
            .entry(CompactString::from(user))
            .or_insert(Seated::Reserved);
        true
    }

    /// Records that `user`'s row `at` is in `organisation` (taking up a reservation).
    pub(super) fn hold(&self, organisation: &str, user: &str, at: RowRef) {
        self.hold_all(organisation, [(user, at)]);
    }

    /// [`Seats::hold`] for many rows of one organisation, taking its entry once.
    pub(super) fn hold_all<'a>(
        &self,
        organisation: &str,
        rows: impl IntoIterator<Item = (&'a str, RowRef)>,
    ) {
        let mut seated = self.0.entry(CompactString::from(organisation)).or_default();
        for (user, at) in rows {
            let seat = seated
                .entry(CompactString::from(user))
                .or_insert(Seated::Reserved);
            *seat = std::mem::replace(seat, Seated::Reserved).with(at);
        }
    }

    /// Forgets `user`'s row `at` in `organisation`, before the row is freed.
    pub(super) fn release(&self, organisation: &str, user: &str, at: RowRef) {
        let Some(mut seated) = self.0.get_mut(organisation) else {
            return;
        };
        if let Some(seat) = seated.remove(user) {
            if let Some(rest) = seat.without(at) {
                seated.insert(CompactString::from(user), rest);
            }
        }
        let empty = seated.is_empty();
        drop(seated);
        if empty {
            self.0
                .remove_if(organisation, |_, seated| seated.is_empty());
        }
    }

    /// How many users hold a seat in `organisation` now.
    pub(super) fn in_use(&self, organisation: &str, live: impl Fn(RowRef) -> bool) -> usize {
        self.0
            .get(organisation)
            .map_or(0, |seated| holders(&seated, &live))
    }

    /// Forgets every seat (a replica replacing all its sessions).
    pub(super) fn clear(&self) {
        self.0.clear();
    }
}

fn holders(seated: &Organisation, live: &impl Fn(RowRef) -> bool) -> usize {
    seated.values().filter(|s| s.holds(live)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_follows_its_rows() {
        let seats = Seats::default();
        let (a, b) = (RowRef::new(1, 1), RowRef::new(2, 2));
        assert!(seats.reserve("Acme", "ann", 1, |_| true));
        assert!(
            !seats.reserve("Acme", "bob", 1, |_| true),
            "a reservation holds the seat"
        );
        seats.hold("Acme", "ann", a);
        seats.hold("Acme", "ann", b);
        assert_eq!(seats.in_use("Acme", |at| at == b), 1);
        seats.release("Acme", "ann", b);
        assert_eq!(seats.in_use("Acme", |at| at == b), 0, "only row a is left");
        assert!(
            seats.reserve("Acme", "bob", 1, |at| at != a),
            "a user whose sessions expired frees the seat"
        );
        seats.release("Acme", "ann", a);
        seats.hold("Acme", "bob", b);
        seats.release("Acme", "bob", b);
        assert!(seats.0.is_empty(), "nothing is left behind");
    }
}
