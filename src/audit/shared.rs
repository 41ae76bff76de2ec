//! Paging through the trail the store keeps for every node (Redis).

use std::sync::Arc;

use super::cursor::encode_cursor;
use super::{AuditEvent, AuditPage, Stored, SHARED_BATCH};
use crate::domain::Scope;
use crate::error::ApiError;
use crate::events::EventId;
use crate::store::AuditTrail;

/// The most entries one page reads from the store: a scope with few events in a long trail
/// (an organisation with none) answers with fewer items and a cursor, not with a read of the
/// whole trail.
const MAX_READ: usize = 4 * SHARED_BATCH;

/// A page of the trail the store keeps: its entries are read newest first, a batch at a time,
/// until the page is full or [`MAX_READ`] entries were read. Each event's id is its entry's.
pub(super) async fn shared_page(
    store: &Arc<dyn AuditTrail>,
    scope: &Scope,
    mut before: Option<String>,
    limit: usize,
) -> Result<AuditPage, ApiError> {
    let mut items: Vec<AuditEvent> = Vec::new();
    let mut read = 0;
    // Where the next page starts, if there is more to read.
    let resume = 'reading: loop {
        let batch = store.before(before.as_deref(), SHARED_BATCH).await?;
        let exhausted = batch.len() < SHARED_BATCH;
        read += batch.len();
        for (id, json) in batch {
            let Ok(stored) = serde_json::from_str::<Stored>(&json) else {
                log::warn!("unreadable audit entry {id} skipped");
                before = Some(id);
                continue;
            };
            let (_, mut event) = stored.into_event();
            if scope.admits(&event.session.organisation, event.session.holds_admin) {
                if items.len() == limit {
                    break 'reading before;
                }
                event.id = id.clone();
                items.push(event.within(scope));
            }
            before = Some(id);
        }
        if exhausted {
            break None;
        }
        if read >= MAX_READ {
            break before;
        }
    };
    Ok(AuditPage {
        next: resume.map(|position| encode_cursor(&position)),
        items,
    })
}

/// Whether `position` can name an entry of the store's trail: an event id written `ms-seq`
/// (the form Redis stream ids take), after `0-0`.
pub(super) fn is_entry_id(position: &str) -> bool {
    position.contains('-') && EventId::parse(position).is_some_and(|id| id != EventId::default())
}
