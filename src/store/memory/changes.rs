//! The one place every change of the memory store is said: a session created, a session ended
//! and why, a login denied. The store's operations make a change under the user's entry and
//! say it here before they let go, so what listens sees each session's changes in order.

use std::sync::{Arc, OnceLock};

use compact_str::CompactString;

use crate::domain::{EndReason, Millis, SessionData, SessionId, SessionRecord};
use crate::events::{Change, CreatedSession, Denied, DenyReason, Ended, Hub};

#[derive(Default)]
pub(super) struct Changes {
    /// Where the events of changes go, once set (a replica's changes are not its own).
    events: OnceLock<Arc<Hub>>,
}

impl Changes {
    pub(super) fn publish_events(&self, hub: Arc<Hub>) {
        if self.events.set(hub).is_err() {
            log::warn!("the memory store's events already go to a hub");
        }
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

    pub(super) fn created(&self, session: &SessionRecord, now: Millis) {
        if let Some(hub) = self.hub() {
            hub.publish(Change::Created(CreatedSession::of(session)), now);
        }
    }

    /// The session `id` ended for `reason`; `described` is what [`Changes::describes_ends`]
    /// asked for.
    pub(super) fn ended(
        &self,
        _id: SessionId,
        _reason: EndReason,
        described: Option<Ended>,
        now: Millis,
    ) {
        if let (Some(hub), Some(ended)) = (self.hub(), described) {
            hub.publish(Change::Ended(ended), now);
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
    pub(super) fn ended_record(&self, record: &SessionRecord, reason: EndReason, now: Millis) {
        let described = self
            .describes_ends()
            .then(|| Ended::of(&record.data, reason));
        self.ended(record.data.id, reason, described, now);
    }
}
