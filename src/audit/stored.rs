//! An event as the trail keeps it, beyond what the API shows.

use serde::{Deserialize, Serialize};

use super::AuditEvent;

/// An event as the trail keeps it (a line of the file, an entry in Redis): with what the API
/// does not show, whether the session held `admin`, which decides who may see it, and in the
/// file its number (Redis numbers its entries itself).
#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    admin: bool,
    event: AuditEvent,
    /// Where the existing sessions of a denied login are ([`AuditEvent::existing_in`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    existing: Vec<(String, bool)>,
}

impl Stored {
    pub(super) fn json(seq: Option<u64>, event: &AuditEvent) -> String {
        serde_json::to_string(&Stored {
            seq,
            admin: event.session.holds_admin,
            existing: event.existing_in.clone(),
            event: event.clone(),
        })
        .expect("an audit event always serialises")
    }

    pub(super) fn into_event(self) -> (Option<u64>, AuditEvent) {
        let mut event = self.event;
        event.session.holds_admin = self.admin;
        event.existing_in = self.existing;
        (self.seq, event)
    }
}
