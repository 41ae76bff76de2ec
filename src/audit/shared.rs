//! Paging through the trail the store keeps for every node (Redis).

use std::sync::Arc;

use super::cursor::encode_cursor;
use super::{AuditEvent, AuditPage, Stored, SHARED_BATCH};
use crate::domain::Scope;
use crate::error::ApiError;
use crate::store::AuditTrail;

/// A page of the trail the store keeps: its entries are read newest first, a batch at a time,
/// until the page is full. Each event's id is its entry's.
pub(super) async fn shared_page(
    store: &Arc<dyn AuditTrail>,
    scope: &Scope,
    mut before: Option<String>,
    limit: usize,
) -> Result<AuditPage, ApiError> {
    let mut items: Vec<AuditEvent> = Vec::new();
    let mut more = false;
    'reading: loop {
        let batch = store.before(before.as_deref(), SHARED_BATCH).await?;
        let exhausted = batch.len() < SHARED_BATCH;
        for (id, json) in batch {
            before = Some(id.clone());
            let Ok(stored) = serde_json::from_str::<Stored>(&json) else {
                log::warn!("unreadable audit entry {id} skipped");
                continue;
            };
            let (_, mut event) = stored.into_event();
            if !scope.admits(&event.session.organisation, event.session.holds_admin) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break 'reading;
            }
            event.id = id;
            items.push(event);
        }
        if exhausted {
            break;
        }
    }
    Ok(AuditPage {
        next: match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(&last.id)),
            _ => None,
        },
        items,
    })
}
