//! Each node's replica of the sessions, for listing: loaded from Redis, then kept current by
//! the change feed the scripts publish to; a marker a node publishes and sees come back tells
//! it every earlier change has arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::fields::{field_names, parse};
use super::link::{unavailable, Conn};
use super::{RedisStore, TIMEOUT};
use crate::domain::{Millis, SessionId};
use crate::events::EventId;
use crate::store::StoreError;

/// Markers this node published and is waiting to see come back.
pub(super) struct Markers {
    pub(super) node: String,
    pub(super) next: AtomicU64,
    /// Each marker's arrivals (one from each master it was published on).
    pub(super) waiting: Mutex<HashMap<u64, Arc<Semaphore>>>,
    /// Whether the change feed is subscribed and the replica caught up.
    pub(super) following: AtomicBool,
    /// The newest event whose change the replica holds (the feed's messages carry their
    /// events' ids, in the order Redis ran the scripts).
    pub(super) position: Mutex<EventId>,
}

impl Markers {
    pub(super) fn position(&self) -> EventId {
        *self.position.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn advance(&self, event: Option<&str>) {
        if let Some(id) = event.and_then(EventId::parse) {
            let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
            *position = (*position).max(id);
        }
    }
}

impl RedisStore {
    /// Follows the change feed for as long as the process runs: subscribes, reloads the
    /// replica, applies events in order, and starts over whenever the connection drops.
    pub(super) fn follow(self: Arc<Self>) {
        actix_web::rt::spawn(async move {
            loop {
                // A client of the master now: after a failover, of the new one.
                if let Err(e) = self.follow_once(&self.link.client()).await {
                    self.link
                        .failed(&format!("the change feed stopped: {e}; reconnecting"));
                }
                self.markers.following.store(false, Ordering::SeqCst);
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    async fn follow_once(&self, client: &redis::Client) -> Result<(), StoreError> {
        let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub
            .subscribe(self.keys.changes())
            .await
            .map_err(unavailable)?;
        // Subscribed first, reloaded second: no change can fall between the two.
        let loaded = self.reload().await?;
        self.link.succeeded();
        log::info!("replica loaded with {loaded} sessions from Redis; following changes");
        self.markers.following.store(true, Ordering::SeqCst);
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            match message.get_payload::<String>() {
                Ok(payload) => self.apply(&payload),
                Err(e) => log::warn!("unreadable change event: {e}"),
            }
        }
        Err(StoreError::Unavailable("the subscription ended".into()))
    }

    /// Loads every session from Redis into the replica, group by group (slot by slot).
    async fn reload(&self) -> Result<usize, StoreError> {
        let mut conn = self.link.conn();
        if !self.clustered() {
            self.list_earlier_users(&mut conn).await?;
        }
        // Read before the sessions: every change up to the newest event is in what follows.
        let mut newest = EventId::default();
        for group in 0..self.keys.groups() {
            let last: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
                .arg(self.keys.event_log(group))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if let Some(id) = last.first().and_then(|(id, _)| EventId::parse(id)) {
                newest = newest.max(id);
            }
        }
        *self
            .markers
            .position
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = newest;
        let mut saved = Vec::new();
        for group in 0..self.keys.groups() {
            let users: Vec<String> = conn
                .smembers(self.keys.users(group))
                .await
                .map_err(unavailable)?;
            for users in users.chunks(500) {
                let mut pipe = redis::pipe();
                for user in users {
                    pipe.smembers(self.keys.user(user));
                }
                let sets: Vec<Vec<String>> =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                let ids: Vec<SessionId> = sets
                    .iter()
                    .flatten()
                    .filter_map(|id| SessionId::parse(id))
                    .collect();
                for ids in ids.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for id in ids {
                        pipe.cmd("HMGET")
                            .arg(self.keys.session(*id))
                            .arg(&field_names());
                    }
                    let rows: Vec<Vec<Option<String>>> =
                        pipe.query_async(&mut conn).await.map_err(unavailable)?;
                    for (id, fields) in ids.iter().zip(rows) {
                        let mut row = vec![Some(id.to_string())];
                        row.extend(fields);
                        saved.extend(parse(&row));
                    }
                }
            }
        }
        Ok(self.replica.replace_all(saved, Millis::now()))
    }

    /// On one Redis, users whose sessions an earlier release made are listed in the group's
    /// set of users (which listing and the reaper walk), once.
    async fn list_earlier_users(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let users = self.keys.users(0);
        let listed: bool = conn.exists(&users).await.map_err(unavailable)?;
        if listed {
            return Ok(());
        }
        let mut found = Vec::new();
        let mut iter = conn
            .scan_match::<_, String>(self.keys.every_user())
            .await
            .map_err(unavailable)?;
        while let Some(key) = iter.next_item().await {
            found.extend(
                self.keys
                    .user_id(&key.map_err(unavailable)?)
                    .map(String::from),
            );
        }
        drop(iter);
        for batch in found.chunks(1000) {
            let _: () = conn.sadd(&users, batch).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// Applies one change event to the replica.
    fn apply(&self, payload: &str) {
        let message: FeedMessage = match serde_json::from_str(payload) {
            Ok(event) => event,
            Err(e) => return log::warn!("unreadable change event: {e}"),
        };
        match message {
            FeedMessage::Created { id, row, e } => {
                if let Some(saved) = parse(&row_of(id, row)) {
                    self.replica.import(vec![saved], Millis::now());
                }
                self.markers.advance(e.as_deref());
            }
            FeedMessage::Amended { id, row, e } => {
                if let Some(saved) = parse(&row_of(id, row)) {
                    self.replica.amend(&saved, Millis::now());
                }
                self.markers.advance(e.as_deref());
            }
            FeedMessage::Touched { id, l } => {
                if let (Some(id), Ok(at)) = (SessionId::parse(&id), l.parse()) {
                    self.replica.touch(id, Millis(at));
                }
            }
            FeedMessage::Deleted { id, e } => {
                if let Some(id) = SessionId::parse(&id) {
                    self.replica.forget(&[id]);
                }
                self.markers.advance(e.as_deref());
            }
            FeedMessage::Marker { node, n } => {
                if node == self.markers.node {
                    let waiting = n.parse().ok().and_then(|n| {
                        self.markers
                            .waiting
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(&n)
                            .cloned()
                    });
                    if let Some(arrivals) = waiting {
                        arrivals.add_permits(1);
                    }
                }
            }
        }
    }

    /// Returns once every change published before this call has reached the replica: a marker
    /// published on every master comes back after each one's earlier changes.
    pub(super) async fn catch_up(&self) -> Result<(), StoreError> {
        if !self.markers.following.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "not following the Redis change feed".into(),
            ));
        }
        let n = self.markers.next.fetch_add(1, Ordering::Relaxed);
        let arrivals = Arc::new(Semaphore::new(0));
        self.markers
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(n, arrivals.clone());
        let marker = serde_json::json!({"op": "m", "node": self.markers.node, "n": n.to_string()});
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.keys.changes()).arg(marker.to_string());
        let published = self.link.conn().on_every_master(&publish).await;
        let outcome = match published {
            Err(e) => Err(unavailable(e)),
            Ok(masters) => {
                let all = arrivals.acquire_many(masters.len() as u32);
                match actix_web::rt::time::timeout(TIMEOUT, all).await {
                    Ok(Ok(_)) => Ok(()),
                    _ => Err(StoreError::Unavailable(
                        "the Redis change feed did not answer in time".into(),
                    )),
                }
            }
        };
        self.markers
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&n);
        outcome
    }
}

/// A row as the scripts publish it: its id, then its values in FIELDS order (`false` for a
/// field not given).
fn row_of(id: String, row: Vec<serde_json::Value>) -> Vec<Option<String>> {
    std::iter::once(Some(id))
        .chain(row.into_iter().map(|v| match v {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        }))
        .collect()
}

/// A change event, as the scripts publish it (all numbers as strings).
#[derive(Deserialize)]
#[serde(tag = "op")]
enum FeedMessage {
    /// A live session changed in place: its whole row as it is now.
    #[serde(rename = "u")]
    Amended {
        id: String,
        row: Vec<serde_json::Value>,
        e: Option<String>,
    },
    #[serde(rename = "c")]
    Created {
        id: String,
        row: Vec<serde_json::Value>,
        /// The id of the change's event.
        e: Option<String>,
    },
    #[serde(rename = "t")]
    Touched { id: String, l: String },
    #[serde(rename = "d")]
    Deleted { id: String, e: Option<String> },
    #[serde(rename = "m")]
    Marker { node: String, n: String },
}
