//! Organisation seats on a cluster. A user's sessions live in its group's slot, an
//! organisation's seats in a slot of their own, so no one script sees both: a login reserves a
//! seat (atomically, in the organisation's slot: the last seat goes to one login however many
//! race for it), is made in its user's slot, then confirms the seat with the time it was made.
//! An end that leaves a user no session in an organisation releases the seat, unless a session
//! was made there since (`seat.lua`).
//!
//! A seat whose release was lost (a node stopped between the end and the release), or whose
//! reservation lapsed unconfirmed (a node stopped between the login and the confirm), is
//! settled when the organisation is full: each holder's slot is asked whether it still has a
//! session there, and those without one are released before the login is refused.

use futures_util::{stream, StreamExt, TryStreamExt};

use super::{RedisStore, EXPIRED_KEPT};
use crate::domain::Millis;
use crate::store::StoreError;

/// How long a reservation holds a seat for a login being made.
const RESERVATION_MS: u64 = 30_000;

/// How many holders' slots a full organisation asks at once.
const HOLDERS_ASKED_AT_ONCE: usize = 16;

impl RedisStore {
    fn seat_call(&self, op: &str, organisation: &str, now: Millis) -> redis::ScriptInvocation<'_> {
        let mut invocation = self.seat.prepare_invoke();
        invocation
            .key(self.keys.organisation(organisation))
            .arg(op)
            .arg(self.clock.arg(now));
        invocation
    }

    /// Runs a seat script (on the organisation's slot).
    async fn seat_change<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        organisation: &str,
    ) -> Result<T, StoreError> {
        self.change(invocation, &self.keys.organisation(organisation))
            .await
    }

    /// How long an organisation's seats are kept after their last change.
    fn seats_kept_ms(&self) -> u64 {
        self.max_ms() + EXPIRED_KEPT.as_millis() as u64
    }

    /// Reserves a seat for `user`: whether one was free (the login script then refuses a user
    /// new to the organisation, after the policy).
    pub(super) async fn reserve_seat(
        &self,
        organisation: &str,
        user: &str,
        seats: Option<u32>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        for attempt in 0..2 {
            let mut invocation = self.seat_call("reserve", organisation, now);
            invocation
                .arg(user)
                .arg(seats.map(|n| n.to_string()).unwrap_or_default())
                .arg(RESERVATION_MS)
                .arg(self.seats_kept_ms());
            let reply: Vec<String> = self.seat_change(&invocation, organisation).await?;
            let Some((status, holders)) = reply.split_first() else {
                return Err(StoreError::Unavailable(
                    "Redis answered a seat with nothing".into(),
                ));
            };
            if status == "ok" {
                return Ok(true);
            }
            // Full: release the seats of holders that no longer have a session there, once.
            if attempt == 0 && self.check_holders(organisation, holders, now).await? > 0 {
                continue;
            }
            break;
        }
        Ok(false)
    }

    /// Asks each holder's slot whether it still has a session in the organisation (`holders`:
    /// user, kind, ... as `seat.lua` names them), a few side by side: the seats of those
    /// without are released, those with keep theirs (a reservation that lapsed because its
    /// node died before confirming becomes their session's seat); how many were released.
    async fn check_holders(
        &self,
        organisation: &str,
        holders: &[String],
        now: Millis,
    ) -> Result<usize, StoreError> {
        let mut checks = Vec::new();
        for pair in holders.chunks_exact(2) {
            checks.push(self.check_holder(organisation, &pair[0], pair[1] == "p", now));
        }
        let released: Vec<bool> = stream::iter(checks)
            .buffer_unordered(HOLDERS_ASKED_AT_ONCE)
            .try_collect()
            .await?;
        Ok(released.into_iter().filter(|r| *r).count())
    }

    /// Asks `user`'s slot whether it holds a session in the organisation; whether its seat was
    /// released.
    async fn check_holder(
        &self,
        organisation: &str,
        user: &str,
        lapsed: bool,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.call(&self.holds, self.keys.group_of_user(user), now);
        invocation.arg(user).arg(organisation);
        let (seen_by, holds): (String, String) = self
            .link
            .check(invocation.invoke_async(&mut self.link.conn()).await)?;
        if holds == "0" {
            return self.release(organisation, user, &seen_by, now).await;
        }
        if lapsed {
            let mut invocation = self.seat_call("settle", organisation, now);
            invocation.arg(user).arg(&seen_by);
            self.seat_change::<String>(&invocation, organisation)
                .await?;
        }
        Ok(false)
    }

    async fn release(
        &self,
        organisation: &str,
        user: &str,
        seen_by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.seat_call("release", organisation, now);
        invocation.arg(user).arg(seen_by);
        let released: u32 = self.seat_change(&invocation, organisation).await?;
        Ok(released > 0)
    }

    /// Confirms the seat of a session made by the event `made_by` at `made_at` (every login on
    /// a cluster: a limit set later counts every user).
    pub(super) async fn confirm_seat(
        &self,
        organisation: &str,
        user: &str,
        made_by: &str,
        made_at: Millis,
    ) -> Result<(), StoreError> {
        let mut invocation = self.seat_call("confirm", organisation, made_at);
        invocation.arg(user).arg(made_by).arg(self.seats_kept_ms());
        self.seat_change::<String>(&invocation, organisation)
            .await
            .map(drop)
    }

    /// Gives back the reservation of a login that was refused.
    pub(super) async fn cancel_seat(&self, organisation: &str, user: &str) {
        let mut invocation = self.seat_call("cancel", organisation, Millis::now());
        invocation.arg(user);
        if let Err(e) = self.seat_change::<u32>(&invocation, organisation).await {
            log::warn!("a refused login's seat reservation stays until it lapses: {e}");
        }
    }

    /// Releases the seats of users left without a session in an organisation (`pairs`: user,
    /// organisation, ...), seen so when `at` was their group's newest event. A release that
    /// fails is found again when the organisation is full.
    pub(super) async fn release_vacated(&self, pairs: &[String], at: &str) {
        if !self.clustered() {
            return;
        }
        for pair in pairs.chunks(2) {
            if let [user, organisation] = pair {
                if let Err(e) = self.release(organisation, user, at, Millis::now()).await {
                    log::warn!("a seat stays held until its organisation is full: {e}");
                }
            }
        }
    }

    /// The seats an organisation's users hold: reservations, and users with a live session
    /// there (each holder's slot is asked; seats of those without are released).
    pub(super) async fn seats_held(
        &self,
        organisation: &str,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let invocation = self.seat_call("count", organisation, now);
        let reply: Vec<redis::Value> = self
            .link
            .check(invocation.invoke_async(&mut self.link.conn()).await)?;
        let Some((reserved, holders)) = reply.split_first() else {
            return Ok(0);
        };
        let reserved: u64 = redis::from_redis_value_ref(reserved).unwrap_or_default();
        let holders: Vec<String> = holders
            .iter()
            .filter_map(|h| redis::from_redis_value_ref(h).ok())
            .collect();
        let released = self.check_holders(organisation, &holders, now).await?;
        Ok(reserved + (holders.len() / 2 - released) as u64)
    }
}
