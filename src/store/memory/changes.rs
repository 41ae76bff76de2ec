//! The one place every change of the memory store is said: a session created, a session ended
//! and why, a login denied. The store's operations make a change under the user's entry and
//! say it here before they let go, so the journal and the events hold each session's changes
//! in order.

use std::sync::{Arc, OnceLock};

use compact_str::CompactString;

use super::stopped::StoppedTokens;
use crate::domain::{
    Amendment, EndReason, Millis, SessionData, SessionId, SessionRecord, Stopped, TokenDigest,
};
use crate::events::{
    Amended, Amendment as Told, Change, CreatedSession, Denied, DenyReason, Ended, EventId, Hub,
};
use crate::persistence::journal::{Fsync, Journal};
use crate::store::StoreError;

#[derive(Default)]
pub(super) struct Changes {
    /// Where the events of changes go, once set (a replica's changes are not its own).
    events: OnceLock<Arc<Hub>>,
    /// Where changes are journaled, with a data directory (once replay is done).
    journal: OnceLock<Arc<Journal>>,
    /// Why the newest ended sessions' tokens stopped working.
    pub(super) stopped: StoppedTokens,
}

impl Changes {
    pub(super) fn publish_events(&self, hub: Arc<Hub>) {
        if self.events.set(hub).is_err() {
            log::warn!("the memory store's events already go to a hub");
        }
    }

    pub(super) fn journal_to(&self, journal: Arc<Journal>) {
        if self.journal.set(journal).is_err() {
            log::warn!("the memory store is already journaled");
        }
    }

    pub(super) fn journal(&self) -> Option<&Journal> {
        self.journal.get().map(|j| &**j)
    }

    /// Waits until the changes this thread just made are on disk, if they must be before they
    /// are acknowledged: every change with `SESSIOND_FSYNC=always`, and ends (`ends`) always;
    /// and their events in the webhook outbox, if there is one. Called right after the change,
    /// with no await between.
    pub(super) async fn acknowledged(&self, ends: bool) -> Result<(), StoreError> {
        if let Some(journal) = self.journal() {
            if ends || journal.fsync() == Fsync::Always {
                journal
                    .durable(journal.appended_here())
                    .await
                    .map_err(StoreError::Unavailable)?;
            }
        }
        if let Some(hub) = self.events.get() {
            hub.kept().await;
        }
        Ok(())
    }

    /// Where the store stands in its events (which are wanted from now on): changes are
    /// numbered after they are made, so every event up to it has its change in the store.
    pub(super) fn position(&self) -> EventId {
        self.events
            .get()
            .map(|hub| hub.position())
            .unwrap_or_default()
    }

    /// The hub, if there is one and anyone reads its events.
    fn hub(&self) -> Option<&Hub> {
        self.events
            .get()
            .map(|hub| &**hub)
            .filter(|hub| hub.wanted())
    }

    /// Whether an ended session must be described (read before its row goes).
    pub(super) fn describes_ends(&self) -> bool {
        self.hub().is_some()
    }

    pub(super) fn created(&self, session: &SessionRecord, digest: &TokenDigest, now: Millis) {
        if let Some(journal) = self.journal() {
            journal.created(digest, &session.data, session.last_active_at);
        }
        if let Some(hub) = self.hub() {
            hub.publish(Change::Created(CreatedSession::of(session)), now);
        }
    }

    /// The session `id` ended for `reason`; `described` is what [`Changes::describes_ends`]
    /// asked for.
    pub(super) fn ended(
        &self,
        id: SessionId,
        digest: &TokenDigest,
        reason: EndReason,
        described: Option<Ended>,
        now: Millis,
    ) {
        self.stopped.record(id, digest, reason.into(), now);
        if let Some(journal) = self.journal() {
            journal.ended(id, reason);
        }
        if let (Some(hub), Some(ended)) = (self.hub(), described) {
            hub.publish(Change::Ended(ended), now);
        }
    }

    /// A live session was changed in place (its record is as it is now); `told` is its
    /// event, if it has one.
    pub(super) fn amended(
        &self,
        session: &SessionRecord,
        amendment: &Amendment,
        told: Option<Told>,
        replaced: Option<&TokenDigest>,
        now: Millis,
    ) {
        if let Some(old) = replaced {
            self.stopped
                .record(session.data.id, old, Stopped::Rotated, now);
        }
        if let Some(journal) = self.journal() {
            journal.amended(session.data.id, amendment);
        }
        if let (Some(hub), Some(told)) = (self.hub(), told) {
            hub.publish(Change::Amended(Amended::of(&session.data, told)), now);
        }
    }

    /// A login `data` was refused for `reason`.
    pub(super) fn denied(&self, data: &SessionData, reason: DenyReason, now: Millis) {
        if let Some(hub) = self.hub() {
            let denied = Denied {
                user_id: CompactString::from(&*data.user_id),
                organisation: CompactString::from(&*data.organisation),
                ip_address: data.ip_address,
                reason,
                holds_admin: data.holds_admin(),
            };
            hub.publish(Change::Denied(denied), now);
        }
    }

    /// A session read out before it ended, described for its event.
    pub(super) fn ended_record(
        &self,
        record: &SessionRecord,
        digest: &TokenDigest,
        reason: EndReason,
        now: Millis,
    ) {
        let described = self
            .describes_ends()
            .then(|| Ended::of(&record.data, reason));
        self.ended(record.data.id, digest, reason, described, now);
    }
}
