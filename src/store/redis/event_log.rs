//! Reading the shared event log into this node's hub. On one Redis, one log, read as it grows;
//! on a cluster, one log per group (each written by the scripts of its slot), merged by id: an
//! event is passed on once no master can still add one before it (every master's clock has
//! passed its time), so every node passes the same events in the same order, and an id a
//! reader resumes from means the same on each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;

use super::fields::{field, roles_of, session_of};
use super::keys::Keys;
use super::link::{unavailable, Link};
use super::{EVENT_WAIT, TIMEOUT};
use crate::domain::session::holds_admin;
use crate::domain::{EndReason, Millis, SessionRecord};
use crate::events::{
    Amended, Amendment, Change, CreatedSession, Denied, DenyReason, Ended, Event, EventId, Hub,
    HUB_CAPACITY,
};
use crate::store::StoreError;

/// How often a cluster's logs are read for new events.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// Reads the event log into a node's hub: first the newest events the hub can keep, then
/// every event as it is appended.
pub(super) struct EventReader {
    pub(super) link: Arc<Link>,
    pub(super) keys: Keys,
    pub(super) max_lifetime_seconds: u64,
    pub(super) hub: Arc<Hub>,
}

impl EventReader {
    pub(super) async fn follow(&self) -> Result<(), StoreError> {
        // Nothing is read until someone on this node wants events.
        while !self.hub.wanted() {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        if self.keys.groups() > 1 {
            return self.follow_groups().await;
        }
        let key = self.keys.event_log(0);
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
                    .arg(&key)
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
                .arg(&key)
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

    /// Follows every group's log (a cluster): polls each from where it was last read, and
    /// passes on, in id order, the events older than every master's clock.
    async fn follow_groups(&self) -> Result<(), StoreError> {
        let groups = self.keys.groups();
        let mut held: BTreeMap<EventId, Event> = BTreeMap::new();
        let mut from: Vec<String> = match self.hub.last() {
            Some(last) => vec![format!("({last}"); groups as usize],
            None => {
                // The newest events the hub keeps, spread over the groups; each group's log
                // is read on from its newest.
                let share = (HUB_CAPACITY * 2).div_ceil(groups as usize);
                let calls =
                    (0..groups).map(|group| self.range(group, "XREVRANGE", "+", "-", share));
                let watermark = self.watermark().await?;
                let newest = try_join_all(calls).await?;
                let from = newest
                    .iter()
                    .map(|log| log.ids.first().map_or("-".into(), |e| format!("({}", e.id)))
                    .collect();
                let mut events: Vec<Event> = newest
                    .iter()
                    .flat_map(|log| &log.ids)
                    .filter_map(|e| self.event(e))
                    .collect();
                events.sort_by_key(|e| e.id);
                let later = events.partition_point(|e| e.id.ms < watermark);
                held.extend(events.split_off(later).into_iter().map(|e| (e.id, e)));
                let skip = events.len().saturating_sub(HUB_CAPACITY);
                self.hub.seed(events.into_iter().skip(skip));
                from
            }
        };
        self.hub.mark_ready();
        loop {
            // Whatever a master adds from now on is at its clock or later.
            let watermark = self.watermark().await?;
            let calls = (0..groups)
                .map(|group| self.range(group, "XRANGE", &from[group as usize], "+", 1000));
            let mut full = false;
            for (group, read) in try_join_all(calls).await?.into_iter().enumerate() {
                full |= read.ids.len() == 1000;
                if let Some(last) = read.ids.last() {
                    from[group] = format!("({}", last.id);
                }
                for entry in &read.ids {
                    match self.event(entry) {
                        Some(event) => {
                            held.insert(event.id, event);
                        }
                        None => log::warn!("unreadable entry {} in the event log", entry.id),
                    }
                }
            }
            while let Some(entry) = held.first_entry() {
                if entry.key().ms >= watermark {
                    break;
                }
                self.hub.accept(entry.remove());
            }
            if !full {
                actix_web::rt::time::sleep(GROUP_POLL).await;
            }
        }
    }

    /// The earliest of the masters' clocks, in ms.
    async fn watermark(&self) -> Result<u64, StoreError> {
        let times = self
            .link
            .conn()
            .on_every_master(&redis::cmd("TIME"))
            .await
            .map_err(unavailable)?;
        times
            .into_iter()
            .map(|time| {
                let (seconds, micros): (u64, u64) = redis::from_redis_value(time).ok()?;
                Some(seconds * 1000 + micros / 1000)
            })
            .min()
            .flatten()
            .ok_or_else(|| StoreError::Unavailable("no master told its time".into()))
    }

    async fn range(
        &self,
        group: u32,
        command: &str,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<StreamRangeReply, StoreError> {
        redis::cmd(command)
            .arg(self.keys.event_log(group))
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.link.conn())
            .await
            .map_err(unavailable)
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
