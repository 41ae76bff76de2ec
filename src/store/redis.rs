//! The Redis store: several sessiond nodes share their sessions through one Redis.
//!
//! Every rule is decided in Redis, atomically, by a Lua script: the policy's check-and-insert,
//! validation with its touch (one round trip: a token carries its session's id, so the script
//! reads that session's hash and compares the digest of the token's secret), and deletes.
//! Keys, under a prefix:
//! - `s:{id}`: a hash per session, expiring (TTL) when the session does;
//! - `u:{user id}`: the set of the user's session ids, for the policy; scripts remove members
//!   as sessions end, and the set expires with the longest session it may hold;
//! - `o:{organisation}`: the organisation's users, for its seats; a full one is cleared of
//!   users without a live session there before a login is refused.
//!
//! Listing needs a scan-friendly layout, so each node keeps a replica of the sessions in a
//! [`MemoryStore`], loaded at start-up and kept current by the change events the scripts
//! publish. Before it answers a list, a node publishes a marker and waits to receive it back:
//! Redis delivers messages in order, so every change made before the request has reached the
//! replica by then, on whichever node it was made.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, Script};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{
    BlockingSession, Census, Created, IndexReport, Insert, LoginRules, MemoryStore, Page,
    SavedSession, SessionStore, StoreError, Users,
};
use crate::domain::session::holds_admin;
use crate::domain::{
    EndReason, ListQuery, Millis, PresentedToken, Scope, SessionData, SessionId, SessionRecord,
    TokenDigest,
};
use crate::events::{
    Change, CreatedSession, Denied, DenyReason, Ended, Event, EventId, Hub, HUB_CAPACITY,
};

/// How long a request waits for Redis before answering `503`.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The event log (a stream under the prefix) keeps about this many of the newest events:
/// what a node starting, or a reader resuming on another node, can catch up from.
const EVENT_LOG_LENGTH: usize = 20_000;
const EVENT_LOG: &str = "log:events";

/// How long a session's hash outlives its expiry, so that the reaper (every 10 s, on every
/// node) can end it and say so; the expiry rule, not the hash's presence, decides liveness.
const EXPIRED_KEPT: Duration = Duration::from_secs(300);

/// How long one read of the event log waits for new events before asking again.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// A session's hash in Redis: what each field holds and its name there (one letter, because
/// every hash repeats its field names), in the order a session is returned after its id. This
/// is the only place field names are spelled: the Lua scripts get them from [`lua_prelude`].
const FIELDS: [(&str, &str); 11] = [
    ("user_id", "u"),
    ("name", "n"),
    ("organisation", "o"),
    ("ip_address", "i"),
    ("server_name", "v"),
    ("roles", "r"),
    ("user_agent", "a"),
    ("timeout_seconds", "t"),
    ("created_at", "c"),
    ("last_active_at", "l"),
    ("digest", "d"),
];

/// The Redis name of the field holding `meaning`.
fn field(meaning: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(m, _)| *m == meaning)
        .map(|(_, name)| *name)
        .expect("a field of the table")
}

/// What every script starts with: for each field of [`FIELDS`], its Redis name as a local
/// `F_<MEANING>` and its position in a returned row as `<MEANING>`; `ROW`, the names in row
/// order; then reading a session and the expiry rule of [`crate::domain::session::expires_at`]
/// in Lua. Plain locals, because a script runs its prelude on every call.
pub fn lua_prelude() -> String {
    let upper = |meaning: &str| meaning.to_uppercase();
    let mut lines = Vec::new();
    for (i, (meaning, name)) in FIELDS.iter().enumerate() {
        lines.push(format!(
            "local F_{0}, {0} = '{name}', {1}",
            upper(meaning),
            i + 1
        ));
    }
    let row: Vec<String> = FIELDS
        .iter()
        .map(|(m, _)| format!("F_{}", upper(m)))
        .collect();
    lines.push(format!("local ROW = {{{}}}", row.join(", ")));
    lines.push(format!(
        "local EVENT_LOG, EVENT_LOG_LENGTH, EXPIRED_KEPT_MS = '{EVENT_LOG}', {EVENT_LOG_LENGTH}, {}",
        EXPIRED_KEPT.as_millis()
    ));
    format!("{}\n{}", lines.join("\n"), include_str!("lua/prelude.lua"))
}

fn script(body: &str) -> Script {
    Script::new(&format!("{}{body}", lua_prelude()))
}

/// Whose clock the scripts decide expiry by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisClock {
    /// Redis' own (`TIME`): nodes whose clocks disagree still agree on every expiry. What
    /// sessiond runs with.
    Redis,
    /// The time each call passes: for tests that travel in time.
    Caller,
}

impl RedisClock {
    fn arg(self, now: Millis) -> String {
        match self {
            RedisClock::Redis => String::new(),
            RedisClock::Caller => now.0.to_string(),
        }
    }
}

pub struct RedisStore {
    clock: RedisClock,
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    channel: String,
    max_lifetime_seconds: u64,
    replica: Arc<MemoryStore>,
    markers: Arc<Markers>,
    create: Script,
    authenticate: Script,
    delete: Script,
    seats: Script,
    sweep: Script,
}

/// Markers this node published and is waiting to see come back.
struct Markers {
    node: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    /// Whether the change feed is subscribed and the replica caught up.
    following: AtomicBool,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("Redis: {e}"))
}

impl RedisStore {
    /// Connects to Redis and starts following its change feed. `url` is a `redis://` or
    /// `rediss://` URL, with a user and password for Redis AUTH/ACL if it has them.
    pub async fn connect(
        url: &str,
        prefix: &str,
        max_lifetime_seconds: u64,
    ) -> Result<Arc<Self>, StoreError> {
        Self::connect_with_clock(url, prefix, max_lifetime_seconds, RedisClock::Redis).await
    }

    /// [`RedisStore::connect`], deciding expiry by `clock`.
    pub async fn connect_with_clock(
        url: &str,
        prefix: &str,
        max_lifetime_seconds: u64,
        clock: RedisClock,
    ) -> Result<Arc<Self>, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let store = Arc::new(RedisStore {
            clock,
            client: client.clone(),
            conn,
            prefix: prefix.to_string(),
            channel: format!("{prefix}events"),
            max_lifetime_seconds,
            replica: Arc::new(MemoryStore::new(max_lifetime_seconds)),
            markers: Arc::new(Markers {
                node: SessionId::generate().to_string(),
                next: AtomicU64::new(0),
                waiting: Mutex::new(HashMap::new()),
                following: AtomicBool::new(false),
            }),
            create: script(include_str!("lua/create.lua")),
            authenticate: script(include_str!("lua/authenticate.lua")),
            delete: script(include_str!("lua/delete.lua")),
            seats: script(include_str!("lua/seats.lua")),
            sweep: script(include_str!("lua/sweep.lua")),
        });
        store.clone().follow(client);
        // Serve only once the replica is loaded, so the first list is complete.
        for _ in 0..100 {
            if store.markers.following.load(Ordering::SeqCst) {
                return Ok(store);
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StoreError::Unavailable(
            "the sessions in Redis could not be loaded within 10 seconds".into(),
        ))
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn max_ms(&self) -> u64 {
        self.max_lifetime_seconds.saturating_mul(1000)
    }

    /// Follows the change feed for as long as the process runs: subscribes, reloads the
    /// replica, applies events in order, and starts over whenever the connection drops.
    fn follow(self: Arc<Self>, client: redis::Client) {
        actix_web::rt::spawn(async move {
            loop {
                if let Err(e) = self.follow_once(&client).await {
                    log::warn!("the Redis change feed stopped: {e}; reconnecting");
                }
                self.markers.following.store(false, Ordering::SeqCst);
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    async fn follow_once(&self, client: &redis::Client) -> Result<(), StoreError> {
        let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(&self.channel).await.map_err(unavailable)?;
        // Subscribed first, reloaded second: no change can fall between the two.
        let loaded = self.reload().await?;
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

    /// Loads every session from Redis into the replica.
    async fn reload(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}s:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut saved = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            cursor = next;
            if keys.is_empty() {
                if cursor == 0 {
                    break;
                }
                continue;
            }
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("HMGET").arg(key).arg(&field_names());
            }
            let rows: Vec<Vec<Option<String>>> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            for (key, fields) in keys.iter().zip(rows) {
                let id = key.rsplit(':').next().unwrap_or_default().to_string();
                let mut row = vec![Some(id)];
                row.extend(fields);
                if let Some(s) = parse(&row) {
                    saved.push(s);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        Ok(self.replica.replace_all(saved, Millis::now()))
    }

    /// Applies one change event to the replica.
    fn apply(&self, payload: &str) {
        let message: FeedMessage = match serde_json::from_str(payload) {
            Ok(event) => event,
            Err(e) => return log::warn!("unreadable change event: {e}"),
        };
        match message {
            FeedMessage::Created { id, row } => {
                // The row's values in FIELDS order; `false` for a field not given.
                let row: Vec<Option<String>> = std::iter::once(Some(id))
                    .chain(row.into_iter().map(|v| match v {
                        serde_json::Value::String(s) => Some(s),
                        _ => None,
                    }))
                    .collect();
                if let Some(saved) = parse(&row) {
                    self.replica.import(vec![saved], Millis::now());
                }
            }
            FeedMessage::Touched { id, l } => {
                if let (Some(id), Ok(at)) = (SessionId::parse(&id), l.parse()) {
                    self.replica.touch(id, Millis(at));
                }
            }
            FeedMessage::Deleted { id } => {
                if let Some(id) = SessionId::parse(&id) {
                    self.replica.forget(&[id]);
                }
            }
            FeedMessage::Marker { node, n } => {
                if node == self.markers.node {
                    let waiting = n.parse().ok().and_then(|n| {
                        self.markers
                            .waiting
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&n)
                    });
                    if let Some(sender) = waiting {
                        let _ = sender.send(());
                    }
                }
            }
        }
    }

    /// Returns once every change published before this call has reached the replica.
    async fn catch_up(&self) -> Result<(), StoreError> {
        if !self.markers.following.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "not following the Redis change feed".into(),
            ));
        }
        let n = self.markers.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.markers
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(n, sender);
        let marker = serde_json::json!({"op": "m", "node": self.markers.node, "n": n.to_string()});
        let mut conn = self.conn.clone();
        let published: Result<(), _> = conn.publish(&self.channel, marker.to_string()).await;
        let outcome = match published {
            Err(e) => Err(unavailable(e)),
            Ok(()) => match actix_web::rt::time::timeout(TIMEOUT, receiver).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(StoreError::Unavailable(
                    "the Redis change feed did not answer in time".into(),
                )),
            },
        };
        self.markers
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&n);
        outcome
    }

    fn record(&self, saved: SavedSession) -> SessionRecord {
        SessionRecord::new(saved.data, saved.last_active_at, self.max_lifetime_seconds)
    }
}

/// A change event, as the scripts publish it (all numbers as strings).
#[derive(Deserialize)]
#[serde(tag = "op")]
enum FeedMessage {
    #[serde(rename = "c")]
    Created {
        id: String,
        row: Vec<serde_json::Value>,
    },
    #[serde(rename = "t")]
    Touched { id: String, l: String },
    #[serde(rename = "d")]
    Deleted { id: String },
    #[serde(rename = "m")]
    Marker { node: String, n: String },
}

/// The Redis names of a row's fields, in order.
fn field_names() -> [&'static str; FIELDS.len()] {
    FIELDS.map(|(_, name)| name)
}

/// A session from its id followed by its [`FIELDS`]; `None` if anything is off.
fn parse(row: &[Option<String>]) -> Option<SavedSession> {
    if row.len() != FIELDS.len() + 1 {
        return None;
    }
    let get = |meaning: &str| {
        let at = FIELDS.iter().position(|(m, _)| *m == meaning)?;
        row[at + 1].as_deref()
    };
    let (data, last_active_at) = session_of(row[0].as_deref()?, get)?;
    Some(SavedSession {
        digest: TokenDigest(from_hex(get("digest")?)?),
        data,
        last_active_at,
    })
}

/// A session's data and last activity from its id and `get`, which gives each field by its
/// meaning in [`FIELDS`].
fn session_of<'a>(
    id: &str,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<(SessionData, Millis)> {
    let data = SessionData {
        id: SessionId::parse(id)?,
        user_id: get("user_id")?.into(),
        name: get("name")?.into(),
        organisation: get("organisation")?.into(),
        ip_address: get("ip_address")?.parse::<IpAddr>().ok()?,
        server_name: get("server_name")?.into(),
        roles: roles_of(get("roles")?)?,
        user_agent: get("user_agent").map(Into::into),
        timeout_seconds: get("timeout_seconds")?.parse().ok()?,
        created_at: Millis(get("created_at")?.parse().ok()?),
    };
    Some((data, Millis(get("last_active_at")?.parse().ok()?)))
}

/// Roles as the scripts keep them (a JSON array).
fn roles_of(json: &str) -> Option<Arc<[Arc<str>]>> {
    let roles: Vec<String> = serde_json::from_str(json).ok()?;
    Some(roles.iter().map(|r| r.as_str().into()).collect())
}

/// Reads the event log into a node's hub: first the newest events the hub can keep, then
/// every event as it is appended.
struct EventReader {
    client: redis::Client,
    key: String,
    max_lifetime_seconds: u64,
    hub: Arc<Hub>,
}

impl EventReader {
    async fn follow(&self) -> Result<(), StoreError> {
        // Nothing is read until someone on this node wants events.
        while !self.hub.wanted() {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(EVENT_WAIT + TIMEOUT));
        let mut conn = self
            .client
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

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(
        &self,
        insert: Insert,
        rules: LoginRules,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let Insert {
            id,
            digest,
            session,
        } = insert;
        let roles: Vec<&str> = session.roles.iter().map(|r| &**r).collect();
        let reply: Vec<String> = self
            .create
            .key(self.key("u", &session.user_id))
            .key(self.key("s", &id.to_string()))
            .key(self.key("o", &session.organisation))
            .arg(rules.policy.name())
            .arg(self.clock.arg(now))
            .arg(self.max_ms())
            .arg(&self.prefix)
            .arg(&self.channel)
            .arg(id.to_string())
            .arg(to_hex(&digest.0))
            .arg(&*session.user_id)
            .arg(&*session.name)
            .arg(&*session.organisation)
            .arg(session.ip_address.to_string())
            .arg(&*session.server_name)
            .arg(serde_json::to_string(&roles).expect("roles serialise"))
            .arg(session.timeout_seconds)
            .arg(session.user_agent.as_deref().unwrap_or_default())
            .arg(if session.user_agent.is_some() {
                "1"
            } else {
                "0"
            })
            .arg(rules.max_per_user)
            .arg(rules.seats.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let (status, rest) = reply
            .split_first()
            .ok_or_else(|| StoreError::Unavailable("Redis gave an empty answer".into()))?;
        if status == "seat-limit" {
            return Err(StoreError::SeatLimit {
                organisation: session.organisation.clone(),
                limit: rules.seats.unwrap_or_default(),
            });
        }
        if status == "denied" {
            let existing = rest
                .chunks(3)
                .filter_map(|c| {
                    Some(BlockingSession {
                        id: SessionId::parse(c.first()?)?,
                        ip_address: c.get(1)?.parse().ok()?,
                        server_name: c.get(2)?.as_str().into(),
                    })
                })
                .collect();
            return Err(StoreError::LoginDenied(existing));
        }
        // The session was made at Redis' time, which every node goes by.
        let (made_at, ended) = rest
            .split_first()
            .ok_or_else(|| StoreError::Unavailable("Redis gave a short answer".into()))?;
        let made_at = made_at.parse().map(Millis).unwrap_or(now);
        let ended: Vec<(SessionId, EndReason)> = ended
            .chunks(2)
            .filter_map(|pair| {
                let reason = match pair.first()?.as_str() {
                    "replaced" => EndReason::Replaced,
                    _ => EndReason::Evicted,
                };
                Some((SessionId::parse(pair.get(1)?)?, reason))
            })
            .collect();
        let saved = SavedSession {
            digest,
            data: session.into_data(id, made_at),
            last_active_at: made_at,
        };
        // The replica learns of the new session from the change feed, in order with every
        // other change; importing it here could resurrect it after a concurrent delete.
        let ended_ids: Vec<SessionId> = ended.iter().map(|(id, _)| *id).collect();
        self.replica.forget(&ended_ids);
        Ok(Created {
            session: self.record(saved),
            ended,
        })
    }

    async fn authenticate(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let reply: Option<Vec<Option<String>>> = self
            .authenticate
            .key(self.key("s", &token.id.to_string()))
            .arg(self.clock.arg(now))
            .arg(self.max_ms())
            .arg(&self.prefix)
            .arg(&self.channel)
            .arg(to_hex(&token.digest.0))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(reply.and_then(|row| parse(&row)).map(|saved| {
            self.replica.touch(saved.data.id, saved.last_active_at);
            self.record(saved)
        }))
    }

    async fn get(
        &self,
        id: SessionId,
        scope: &Scope,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // Read with Redis' time, by which every node decides expiry (a hash outlives its
        // session until the reaper ends it).
        let (fields, (seconds, micros)): (Vec<Option<String>>, (u64, u64)) = redis::pipe()
            .cmd("HMGET")
            .arg(self.key("s", &id.to_string()))
            .arg(&field_names())
            .cmd("TIME")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let now = match self.clock {
            RedisClock::Redis => Millis(seconds * 1000 + micros / 1000),
            RedisClock::Caller => now,
        };
        let mut row = vec![Some(id.to_string())];
        row.extend(fields);
        let live = |r: &SessionRecord| now < r.expires_at;
        Ok(parse(&row)
            .map(|saved| self.record(saved))
            .filter(|r| live(r) && scope.admits(&r.data.organisation, r.data.holds_admin())))
    }

    async fn delete(
        &self,
        ids: &[SessionId],
        scope: &Scope,
        now: Millis,
        reason: EndReason,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let organisation = match scope {
            Scope::All => String::new(),
            Scope::Organisation(org) => org.to_string(),
        };
        let mut invocation = self.delete.prepare_invoke();
        invocation
            .arg(self.clock.arg(now))
            .arg(self.max_ms())
            .arg(&self.prefix)
            .arg(&self.channel)
            .arg(organisation)
            .arg(reason.as_str());
        for id in ids {
            invocation.arg(id.to_string());
        }
        let reply: Vec<Option<String>> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let ended: Vec<SessionRecord> = reply
            .chunks(FIELDS.len() + 1)
            .filter_map(parse)
            .map(|saved| self.record(saved))
            .collect();
        let ended_ids: Vec<SessionId> = ended.iter().map(|r| r.data.id).collect();
        self.replica.forget(&ended_ids);
        Ok(ended)
    }

    async fn list(
        &self,
        query: &ListQuery,
        scope: &Scope,
        now: Millis,
    ) -> Result<Page, StoreError> {
        self.catch_up().await?;
        self.replica.list(query, scope, now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if !self.markers.following.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "not following the Redis change feed yet".into(),
            ));
        }
        Ok(())
    }

    async fn census(&self, now: Millis) -> Result<Vec<Census>, StoreError> {
        self.replica.census(now).await
    }

    async fn users(&self, now: Millis) -> Result<Users, StoreError> {
        self.replica.users(now).await
    }

    async fn seats_in_use(&self, organisation: &str, now: Millis) -> Result<u64, StoreError> {
        self.seats
            .key(self.key("o", organisation))
            .arg(self.clock.arg(now))
            .arg(self.max_ms())
            .arg(&self.prefix)
            .arg(organisation)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn check_indexes(&self) -> Result<IndexReport, StoreError> {
        let mut conn = self.conn.clone();
        let keys = |kind: &str| format!("{}{kind}:*", self.prefix);
        let scan = |pattern: String| {
            let mut conn = conn.clone();
            async move {
                let mut all = Vec::new();
                let mut iter = conn
                    .scan_match::<_, String>(pattern)
                    .await
                    .map_err(unavailable)?;
                while let Some(key) = iter.next_item().await {
                    all.push(key.map_err(unavailable)?);
                }
                Ok::<_, StoreError>(all)
            }
        };
        let sessions = scan(keys("s")).await?;
        let users = scan(keys("u")).await?;
        let mut orphans = 0;
        let mut by_user = 0;
        for user in &users {
            let members: Vec<String> = conn.smembers(user).await.map_err(unavailable)?;
            let name = &user[self.prefix.len() + 2..];
            for id in &members {
                let owner: Option<String> = conn
                    .hget(self.key("s", id), field("user_id"))
                    .await
                    .map_err(unavailable)?;
                orphans += usize::from(owner.as_deref() != Some(name));
            }
            by_user += members.len();
        }
        Ok(IndexReport {
            rows: sessions.len(),
            by_id: sessions.len(),
            by_user,
            orphans,
        })
    }

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        // Expired sessions are ended (and announced) by the sweep, a step at a time; Redis
        // removes any hash left past EXPIRED_KEPT itself.
        let mut cursor = "0".to_string();
        let mut ended = 0;
        loop {
            let (next, swept): (String, usize) = self
                .sweep
                .arg(self.clock.arg(now))
                .arg(self.max_ms())
                .arg(&self.prefix)
                .arg(&self.channel)
                .arg(&cursor)
                .arg(500)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            ended += swept;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        self.replica.reap(now).await?;
        Ok(ended)
    }

    fn keeps_audit(&self) -> bool {
        true
    }

    async fn append_audit(&self, record: &str, capacity: usize) -> Result<String, StoreError> {
        redis::cmd("XADD")
            .arg(self.key("log", "audit"))
            // Exactly the capacity: the trail is bounded as SESSIOND_AUDIT_CAPACITY says.
            .arg("MAXLEN")
            .arg(capacity.max(1))
            .arg("*")
            .arg("e")
            .arg(record)
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn audit_before(
        &self,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let end = before.map_or("+".to_string(), |id| format!("({id}"));
        let entries: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key("log", "audit"))
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(entries
            .ids
            .into_iter()
            .filter_map(|entry| {
                let record: String = entry.get("e")?;
                Some((entry.id, record))
            })
            .collect())
    }

    fn publish_events(&self, hub: Arc<Hub>) {
        hub.fed_elsewhere();
        let reader = EventReader {
            client: self.client.clone(),
            key: format!("{}{EVENT_LOG}", self.prefix),
            max_lifetime_seconds: self.max_lifetime_seconds,
            hub,
        };
        actix_web::rt::spawn(async move {
            loop {
                if let Err(e) = reader.follow().await {
                    log::warn!("reading the Redis event log stopped: {e}; reconnecting");
                }
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0xab; 32];
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn a_row_with_a_missing_or_bad_field_is_no_session() {
        let good: Vec<Option<String>> = [
            "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a",
            "u",
            "N",
            "Default",
            "10.0.0.1",
            "LOCAL",
            "[\"admin\"]",
            "ua",
            "1800",
            "1000",
            "2000",
            &"ab".repeat(32),
        ]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
        let saved = parse(&good).unwrap();
        assert!(saved.data.has_role("admin"));
        assert_eq!(saved.last_active_at, Millis(2000));
        for i in [0, 1, 4, 6, 8, 9, 11] {
            let mut bad = good.clone();
            bad[i] = Some("x".into());
            if i == 1 {
                bad[i] = None;
            }
            assert!(parse(&bad).is_none(), "field {i}");
        }
        let mut no_agent = good.clone();
        no_agent[7] = None;
        assert!(parse(&no_agent).unwrap().data.user_agent.is_none());
    }
}
