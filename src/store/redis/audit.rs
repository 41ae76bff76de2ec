//! The audit trail in Redis.

use std::sync::Arc;

use async_trait::async_trait;
use redis::streams::StreamRangeReply;

use super::link::Link;
use crate::store::{AuditTrail, StoreError};

/// The audit trail in Redis: a capped stream every node appends to and reads.
pub(super) struct RedisAudit {
    pub(super) link: Arc<Link>,
    pub(super) key: String,
}

#[async_trait]
impl AuditTrail for RedisAudit {
    async fn append(&self, record: &str, capacity: usize) -> Result<String, StoreError> {
        let appended = redis::cmd("XADD")
            .arg(&self.key)
            // Exactly the capacity: the trail is bounded as SESSIOND_AUDIT_CAPACITY says.
            .arg("MAXLEN")
            .arg(capacity.max(1))
            .arg("*")
            .arg("e")
            .arg(record)
            .query_async::<String>(&mut self.link.conn())
            .await;
        self.link.check(appended)
    }

    async fn before(
        &self,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let end = before.map_or("+".to_string(), |id| format!("({id}"));
        let read = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.link.conn())
            .await;
        let entries: StreamRangeReply = self.link.check(read)?;
        Ok(entries
            .ids
            .into_iter()
            .filter_map(|entry| {
                let record: String = entry.get("e")?;
                Some((entry.id, record))
            })
            .collect())
    }
}
