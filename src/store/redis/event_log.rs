//! Reading the shared event log into this node's hub.

use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;

use super::fields::{field, roles_of, session_of};
use super::link::{unavailable, Link};
use super::{EVENT_WAIT, TIMEOUT};
use crate::domain::session::holds_admin;
use crate::domain::{EndReason, Millis, SessionRecord};
use crate::events::{
    Amended, Amendment, Change, CreatedSession, Denied, DenyReason, Ended, Event, EventId, Hub,
    HUB_CAPACITY,
};
use crate::store::StoreError;

/// Reads the event log into a node's hub: first the newest events the hub can keep, then
/// every event as it is appended.
pub(super) struct EventReader {
    pub(super) link: Arc<Link>,
    pub(super) key: String,
    pub(super) max_lifetime_seconds: u64,
    pub(super) hub: Arc<Hub>,
}

impl EventReader {
    pub(super) async fn follow(&self) -> Result<(), StoreError> {
        // Nothing is read until someone on this node wants events.
        while !self.hub.wanted() {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(EVENT_WAIT + TIMEOUT));
        let mut conn = self
            .link
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        let mut from = match self.hub.last() {
            Some(last) => last.to_string(),
            None => {
                let newest: StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(&self.key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(HUB_CAPACITY)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let from = newest.ids.first().map_or("0-0".into(), |e| e.id.clone());
                self.hub.seed(
                    newest
                        .ids
                        .iter()
                        .rev()
                        .filter_map(|entry| self.event(entry)),
                );
                from
            }
        };
        self.hub.mark_ready();
        loop {
            let read: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(EVENT_WAIT.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&from)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            for entry in read.iter().flat_map(|r| &r.keys).flat_map(|k| &k.ids) {
                self.accept(entry);
                from.clone_from(&entry.id);
            }
        }
    }

    fn accept(&self, entry: &StreamId) {
        match self.event(entry) {
            Some(event) => self.hub.accept(event),
            None => log::warn!("unreadable entry {} in the event log", entry.id),
        }
    }

    /// An entry of the log as the scripts' `emit` wrote it.
    fn event(&self, entry: &StreamId) -> Option<Event> {
        let text = |name: &str| match entry.map.get(name)? {
            redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        let get = |meaning: &str| text(field(meaning));
        let why = text("why")?;
        let change = match text("kind")? {
            "created" | "ended" => {
                let (data, last_active_at) = session_of(text("sid")?, get)?;
                if text("kind")? == "ended" {
                    Change::Ended(Ended::of(&data, EndReason::parse(why)?))
                } else {
                    Change::Created(CreatedSession::of(&SessionRecord::new(
                        data,
                        last_active_at,
                        self.max_lifetime_seconds,
                    )))
                }
            }
            "rotated" | "reauthenticated" | "ip-changed" => {
                let (data, _) = session_of(text("sid")?, get)?;
                let what = match text("kind")? {
                    "rotated" => Amendment::Rotated {},
                    "reauthenticated" => Amendment::Reauthenticated {
                        assurance_level: data.assurance_level,
                    },
                    _ => Amendment::IpChanged {
                        from: why.parse().ok()?,
                        to: data.last_ip_address,
                    },
                };
                Change::Amended(Amended::of(&data, what))
            }
            "denied" => {
                let roles = roles_of(get("roles")?)?;
                Change::Denied(Denied {
                    user_id: get("user_id")?.into(),
                    organisation: get("organisation")?.into(),
                    ip_address: get("ip_address")?.parse().ok()?,
                    reason: DenyReason::parse(why)?,
                    holds_admin: holds_admin(&roles),
                })
            }
            _ => return None,
        };
        Some(Event::new(
            EventId::parse(&entry.id)?,
            Millis(text("at")?.parse().ok()?),
            change,
        ))
    }
}
