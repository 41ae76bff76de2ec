//! Changing a live session in place: a new token, a new authentication, another client
//! address — under its shard's write lock, said before the lock is let go (so the journal
//! holds it before any later end of the session).

use std::sync::atomic::Ordering::Relaxed;

use super::rows::shard_of;
use super::Engine;
use crate::domain::{Amendment, Millis, SessionId, SessionRecord, TokenDigest};
use crate::events::Amendment as Told;

impl Engine {
    /// Applies `amendment` to the live session `id` — only if `presented` is its current
    /// token's digest, when given — and says what changed; returns the session as it is now.
    pub(super) fn amend(
        &self,
        id: SessionId,
        presented: Option<&TokenDigest>,
        amendment: &Amendment,
        now: Millis,
    ) -> Option<SessionRecord> {
        let mut rows = self.shard_mut(shard_of(id));
        let slot = rows.slot_of(id)?;
        let row = rows.row(slot);
        if !self.live(row, now) || presented.is_some_and(|d| !row.digest.matches(d)) {
            return None;
        }
        let before = rows.data(row);
        let replaced = amendment.digest.map(|_| row.digest);
        let mut after = before.clone();
        amendment.apply(&mut after);
        let row = rows.row_mut(slot);
        if let Some(digest) = amendment.digest {
            row.digest = digest;
        }
        row.take_changeable(&after);
        // Rotating or authenticating again is the holder at work: activity.
        if amendment.digest.is_some() || amendment.authentication.is_some() {
            row.last_active_at.fetch_max(now.0, Relaxed);
        }
        let told = match amendment {
            Amendment {
                authentication: Some(auth),
                ..
            } => Some(Told::Reauthenticated {
                assurance_level: auth.assurance_level,
            }),
            Amendment {
                digest: Some(_), ..
            } => Some(Told::Rotated {}),
            _ if amendment.report && before.last_ip_address != after.last_ip_address => {
                Some(Told::IpChanged {
                    from: before.last_ip_address,
                    to: after.last_ip_address,
                })
            }
            _ => None,
        };
        let record = rows.record(rows.row(slot), self.max_lifetime_seconds);
        self.changes
            .amended(&record, amendment, told, replaced.as_ref(), now);
        Some(record)
    }
}
