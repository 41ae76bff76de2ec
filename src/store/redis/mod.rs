//! The Redis store: several sessiond nodes share their sessions through one Redis.
//!
//! Every rule is decided in Redis, atomically, by a Lua script: the login rule's check-and-insert
//! (`create.lua`, checked against `domain::login::decide`), validation with its touch (one
//! round trip: a token carries its session's id, so the script reads that session's hash and
//! compares the digest of the token's secret), and deletes. The keys are laid out in
//! [`keys`], a session's fields in [`fields`], the scripts' arguments and replies typed in
//! [`scripts`].
//!
//! Listing needs a scan-friendly layout, so each node keeps a replica of the sessions in a
//! [`MemoryStore`], loaded at start-up and kept current by the change events the scripts
//! publish. Before it answers a list, a node publishes a marker and waits to receive it back:
//! Redis delivers messages in order, so every change made before the request has reached the
//! replica by then, on whichever node it was made ([`replica`]). Events come to each node's hub
//! from a shared log ([`event_log`]).

mod audit;
mod counts;
mod event_log;
mod fields;
pub mod keys;
mod link;
mod replica;
mod scripts;
mod seats;

pub use fields::lua_prelude;
pub use keys::Keys;
pub use link::{Link as RedisLink, Target as RedisTarget};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::{Script, ScriptInvocation};
use subtle::ConstantTimeEq;

use super::{
    AuditTrail, Created, Insert, LoginRules, MemoryStore, Page, SavedSession, SessionStore,
    StoreError,
};
use crate::domain::{
    Amendment, EndReason, ListQuery, Millis, PresentedToken, Scope, SessionId, SessionRecord,
    Stopped, TokenDigest,
};
use crate::events::{EventId, Hub};
use crate::store::outage::Outage;
use audit::RedisAudit;
use event_log::EventReader;
use fields::{field_names, parse, script, to_hex, FIELDS};
use link::{Link, Target};
use replica::Markers;
use scripts::{LoginArgs, LoginReply};

/// How long a request waits for Redis before answering `503`.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The event log (a stream under the prefix) keeps about this many of the newest events:
/// what a node starting, or a reader resuming on another node, can catch up from.
const EVENT_LOG_LENGTH: usize = 20_000;

/// How long a session's hash outlives its expiry, so that the reaper (every 10 s, on every
/// node) can end it and say so; the expiry rule, not the hash's presence, decides liveness.
const EXPIRED_KEPT: Duration = Duration::from_secs(300);

/// How long one read of the event log waits for new events before asking again.
const EVENT_WAIT: Duration = Duration::from_secs(5);

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

/// How a node uses Redis, beyond where it is.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Prefix of every key (`SESSIOND_REDIS_PREFIX`).
    pub prefix: String,
    pub max_lifetime_seconds: u64,
    /// Activity is written at most this often per session (`SESSIOND_ACTIVITY_INTERVAL`);
    /// validations in between are reads.
    pub activity_interval: Duration,
    /// Replicas that must confirm a login or an end before it is acknowledged
    /// (`SESSIOND_REDIS_MIN_REPLICAS`).
    pub min_replicas: u32,
    pub clock: RedisClock,
}

impl RedisOptions {
    /// The defaults sessiond runs with, under `prefix`.
    pub fn new(prefix: &str, max_lifetime_seconds: u64) -> Self {
        RedisOptions {
            prefix: prefix.to_string(),
            max_lifetime_seconds,
            activity_interval: Duration::from_secs(5),
            min_replicas: 0,
            clock: RedisClock::Redis,
        }
    }
}

/// Redis' `TIME`: seconds and microseconds.
type RedisTime = (u64, u64);

/// How many ended sessions' reasons are kept, and for how long they are told.
const STOPPED_KEPT: usize = 100_000;
const STOPPED_TOLD_FOR: Duration = Duration::from_secs(24 * 3600);

/// How long a login or an end waits for replicas to confirm it (`WAIT`).
const REPLICA_WAIT: Duration = Duration::from_secs(1);

pub struct RedisStore {
    clock: RedisClock,
    link: Arc<Link>,
    keys: Keys,
    max_lifetime_seconds: u64,
    activity_interval_ms: u64,
    min_replicas: u32,
    /// Replicas falling short of `min_replicas`, logged once as it starts and ends.
    replicas: Outage,
    replica: Arc<MemoryStore>,
    markers: Arc<Markers>,
    create: Script,
    authenticate: Script,
    delete: Script,
    amend: Script,
    seats: Script,
    sweep: Script,
    /// On a cluster: an organisation's seats, in their own slot, and whether a user still
    /// holds one (see [`seats`]).
    seat: Script,
    holds: Script,
}

impl RedisStore {
    /// Connects to Redis and starts following its change feed. `url` is a `redis://` or
    /// `rediss://` URL, with a user and password for Redis AUTH/ACL if it has them, or a
    /// `redis[s]+sentinel://` URL naming sentinels and a master.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Arc<Self>, StoreError> {
        let RedisOptions {
            prefix,
            max_lifetime_seconds,
            activity_interval,
            min_replicas,
            clock,
        } = options;
        let target = Target::parse(url).map_err(StoreError::Unavailable)?;
        let keys = match target.is_cluster() {
            false => Keys::new(&prefix),
            // A brace in the prefix would be every key's hash tag: all in one slot.
            true if prefix.contains('{') => {
                return Err(StoreError::Unavailable(
                    "on a cluster, SESSIOND_REDIS_PREFIX may not hold '{' (it would put every key in one slot)".into(),
                ))
            }
            true => Keys::clustered(&prefix),
        };
        let link = Link::connect(target, min_replicas > 0).await?;
        let store = Arc::new(RedisStore {
            clock,
            link,
            keys,
            max_lifetime_seconds,
            activity_interval_ms: u64::try_from(activity_interval.as_millis()).unwrap_or(u64::MAX),
            min_replicas,
            replicas: Outage::new("Redis replicas"),
            replica: Arc::new(MemoryStore::new(max_lifetime_seconds)),
            markers: Arc::new(Markers {
                node: SessionId::generate().to_string(),
                next: AtomicU64::new(0),
                waiting: Mutex::new(HashMap::new()),
                following: AtomicBool::new(false),
                position: Mutex::new(EventId::default()),
            }),
            create: scripts::login_script(),
            authenticate: script(include_str!("lua/authenticate.lua")),
            delete: script(include_str!("lua/delete.lua")),
            amend: script(include_str!("lua/amend.lua")),
            seats: script(include_str!("lua/seats.lua")),
            sweep: script(include_str!("lua/sweep.lua")),
            seat: Script::new(include_str!("lua/seat.lua")),
            holds: script(include_str!("lua/holds.lua")),
        });
        store.clone().follow();
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

    /// The node's link to Redis, for others that keep state there (webhook claims).
    pub fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    fn clustered(&self) -> bool {
        self.keys.groups() > 1
    }

    fn max_ms(&self) -> u64 {
        self.max_lifetime_seconds.saturating_mul(1000)
    }

    /// A call of one of the group scripts for `group`: the group's keys and the arguments every
    /// one takes first (prelude.lua); its own follow.
    fn call<'s>(&self, script: &'s Script, group: u32, now: Millis) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys.group_keys(group) {
            invocation.key(key);
        }
        for arg in self.keys.script_args(group) {
            invocation.arg(arg);
        }
        invocation
            .arg(self.keys.changes())
            .arg(self.clock.arg(now))
            .arg(self.max_ms());
        invocation
    }

    fn record(&self, saved: SavedSession) -> SessionRecord {
        SessionRecord::new(saved.data, saved.last_active_at, self.max_lifetime_seconds)
    }

    /// A session as Redis holds it, with the time by which to judge it: Redis' (every node
    /// decides expiry by it; a hash outlives its session until the reaper ends it), or the
    /// caller's. One round trip, no script.
    async fn read(
        &self,
        id: SessionId,
        now: Millis,
    ) -> Result<(Option<SavedSession>, Millis), StoreError> {
        let read: redis::RedisResult<(Vec<Option<String>>, RedisTime)> = redis::pipe()
            .cmd("HMGET")
            .arg(self.keys.session(id))
            .arg(&field_names())
            .cmd("TIME")
            .query_async(&mut self.link.conn())
            .await;
        let (fields, (seconds, micros)) = self.link.check(read)?;
        let now = match self.clock {
            RedisClock::Redis => Millis(seconds * 1000 + micros / 1000),
            RedisClock::Caller => now,
        };
        let mut row = vec![Some(id.to_string())];
        row.extend(fields);
        Ok((parse(&row), now))
    }

    /// Runs a change's script, one declaring `key`. With replicas required, on the connection
    /// that then waits for them (`WAIT` blocks its connection, so validations go on the other
    /// one), on the master of `key`'s slot: an answer means the change is on the master and,
    /// if they confirmed in time, on its replicas.
    async fn change<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        key: &str,
    ) -> Result<T, StoreError> {
        if self.min_replicas == 0 {
            return self
                .link
                .check(invocation.invoke_async(&mut self.link.conn()).await);
        }
        let mut conn = self.link.waited();
        let reply = self.link.check(invocation.invoke_async(&mut conn).await)?;
        let confirmed = self.link.check(
            conn.wait_for_replicas(key, self.min_replicas, REPLICA_WAIT)
                .await,
        )?;
        if confirmed < self.min_replicas {
            let why = format!(
                "{confirmed} of the {} replicas SESSIOND_REDIS_MIN_REPLICAS asks for confirmed a change within {} ms",
                self.min_replicas,
                REPLICA_WAIT.as_millis()
            );
            self.replicas.failed(&why);
            return Err(StoreError::Unavailable(why));
        }
        self.replicas.succeeded();
        Ok(reply)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn new_session_id(&self, user_id: &str) -> SessionId {
        self.keys.new_session_id(user_id)
    }

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
        let group = self.keys.group_of_user(&session.user_id);
        if self.keys.group_of_session(id) != group {
            return Err(StoreError::Unavailable(
                "a new session's id must come from the store's new_session_id (it names the user's slot)".into(),
            ));
        }
        // On a cluster, a seat is reserved in the organisation's slot first.
        let limited = self.clustered() && rules.seats.is_some();
        let reserved = limited
            && self
                .reserve_seat(&session.organisation, &session.user_id, rules.seats, now)
                .await?;
        let args = LoginArgs {
            rules: &rules,
            keys: &self.keys,
            id,
            digest: &digest,
            session: &session,
            seat_refused: limited && !reserved,
        };
        let invocation = args.invocation(self.call(&self.create, group, now));
        let reply = self
            .change::<Vec<String>>(&invocation, &self.keys.users(group))
            .await
            .and_then(LoginReply::parse);
        let (made_at, made_by, ended, vacated) = match reply {
            Ok(LoginReply::Admitted {
                made_at,
                made_by,
                ended,
                vacated,
            }) => (made_at, made_by, ended, vacated),
            refused => {
                if reserved {
                    self.cancel_seat(&session.organisation, &session.user_id)
                        .await;
                }
                return Err(match refused? {
                    LoginReply::Denied(existing) => StoreError::LoginDenied(existing),
                    _ => StoreError::SeatLimit {
                        organisation: session.organisation.clone(),
                        limit: rules.seats.unwrap_or_default(),
                    },
                });
            }
        };
        if self.clustered() {
            self.confirm_seat(&session.organisation, &session.user_id, &made_by, made_at)
                .await?;
            self.release_vacated(&vacated, &made_by).await;
        }
        // The session was made at Redis' time, which every node goes by.
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
        // Most validations are a read: activity is written at most once per interval.
        let (saved, now) = self.read(token.id, now).await?;
        let Some(record) = saved
            .filter(|saved| saved.digest == token.digest)
            .map(|saved| self.record(saved))
            .filter(|record| now < record.expires_at)
        else {
            return Ok(None);
        };
        if !record.activity_due(now, self.activity_interval_ms) {
            return Ok(Some(record));
        }
        let mut invocation = self.call(
            &self.authenticate,
            self.keys.group_of_session(token.id),
            now,
        );
        invocation
            .key(self.keys.session(token.id))
            .arg(to_hex(&token.digest.0));
        let reply: Option<Vec<Option<String>>> = self
            .link
            .check(invocation.invoke_async(&mut self.link.conn()).await)?;
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
        let (saved, now) = self.read(id, now).await?;
        let live = |r: &SessionRecord| now < r.expires_at;
        Ok(saved
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
        // One call per group (per slot on a cluster), made side by side.
        let mut groups: HashMap<u32, Vec<SessionId>> = HashMap::new();
        for id in ids {
            groups
                .entry(self.keys.group_of_session(*id))
                .or_default()
                .push(*id);
        }
        let calls = groups.into_iter().map(|(group, ids)| {
            let mut invocation = self.call(&self.delete, group, now);
            invocation.arg(&organisation).arg(reason.as_str());
            for id in ids {
                invocation.arg(id.to_string());
            }
            async move {
                self.change::<(Vec<Option<String>>, Vec<String>, String)>(
                    &invocation,
                    &self.keys.users(group),
                )
                .await
            }
        });
        let mut ended: Vec<SessionRecord> = Vec::new();
        for (rows, vacated, at) in try_join_all(calls).await? {
            ended.extend(
                rows.chunks(FIELDS.len() + 1)
                    .filter_map(parse)
                    .map(|saved| self.record(saved)),
            );
            self.release_vacated(&vacated, &at).await;
        }
        let ended_ids: Vec<SessionId> = ended.iter().map(|r| r.data.id).collect();
        self.replica.forget(&ended_ids);
        Ok(ended)
    }

    async fn why_stopped(
        &self,
        token: &PresentedToken,
        now: Millis,
    ) -> Result<Option<Stopped>, StoreError> {
        let (saved, now) = self.read(token.id, now).await?;
        if let Some(saved) = saved.filter(|s| s.digest.matches(&token.digest)) {
            let expires = saved
                .data
                .expires_at(saved.last_active_at, self.max_lifetime_seconds);
            return Ok((now >= expires).then_some(Stopped::Expired));
        }
        let kept: Option<String> = self.link.check(
            redis::cmd("HGET")
                .arg(self.keys.stopped(self.keys.group_of_session(token.id)))
                .arg(token.id.to_string())
                .query_async(&mut self.link.conn())
                .await,
        )?;
        let Some(kept) = kept else { return Ok(None) };
        let mut parts = kept.split(' ');
        let (Some(why), Some(at), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let genuine: bool = to_hex(&token.digest.0[..16])
            .as_bytes()
            .ct_eq(tag.as_bytes())
            .into();
        let recent = at
            .parse::<u64>()
            .is_ok_and(|at| now.0.saturating_sub(at) < STOPPED_TOLD_FOR.as_millis() as u64);
        Ok(Stopped::parse(why).filter(|_| genuine && recent))
    }

    async fn amend(
        &self,
        id: SessionId,
        presented: Option<&TokenDigest>,
        amendment: Amendment,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let hex = |digest: Option<&TokenDigest>| digest.map(|d| to_hex(&d.0)).unwrap_or_default();
        let auth = amendment.authentication;
        let mut invocation = self.call(&self.amend, self.keys.group_of_session(id), now);
        invocation
            .key(self.keys.session(id))
            .arg(id.to_string())
            .arg(hex(presented))
            .arg(hex(amendment.digest.as_ref()))
            .arg(auth.map(|a| a.at.0.to_string()).unwrap_or_default())
            .arg(
                auth.map(|a| a.assurance_level.to_string())
                    .unwrap_or_default(),
            )
            .arg(
                auth.map(|a| a.timeout_seconds.to_string())
                    .unwrap_or_default(),
            )
            .arg(
                auth.map(|a| {
                    a.reauthenticate_by
                        .map_or("-".into(), |by| by.0.to_string())
                })
                .unwrap_or_default(),
            )
            .arg(
                amendment
                    .last_ip_address
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
            )
            .arg(if amendment.report { "1" } else { "0" });
        let reply: Option<Vec<Option<String>>> =
            self.change(&invocation, &self.keys.session(id)).await?;
        Ok(reply.as_deref().and_then(parse).map(|saved| {
            self.replica.amend(&saved, now);
            self.record(saved)
        }))
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
        let _: String = self
            .link
            .check(redis::cmd("PING").query_async(&mut self.link.conn()).await)?;
        if !self.markers.following.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "not following the Redis change feed yet".into(),
            ));
        }
        Ok(())
    }

    async fn reap(&self, now: Millis) -> Result<usize, StoreError> {
        // Expired sessions are ended (and announced) by the sweep, a step at a time; Redis
        // removes any hash left past EXPIRED_KEPT itself.
        let mut ended = 0;
        for group in 0..self.keys.groups() {
            let mut cursor = "0".to_string();
            loop {
                let mut invocation = self.call(&self.sweep, group, now);
                invocation.arg(&cursor).arg(500);
                let reply: Vec<String> = self
                    .link
                    .check(invocation.invoke_async(&mut self.link.conn()).await)?;
                let [next, swept, at, vacated @ ..] = &reply[..] else {
                    return Err(StoreError::Unavailable(
                        "Redis answered a sweep with too little".into(),
                    ));
                };
                ended += swept.parse::<usize>().unwrap_or_default();
                self.release_vacated(vacated, at).await;
                if next == "0" {
                    break;
                }
                cursor.clone_from(next);
            }
        }
        self.replica.reap(now).await?;
        Ok(ended)
    }

    fn audit_trail(&self) -> Option<Arc<dyn AuditTrail>> {
        Some(Arc::new(RedisAudit {
            link: self.link.clone(),
            key: self.keys.audit_log(),
        }))
    }

    fn position(&self) -> EventId {
        self.markers.position()
    }

    fn publish_events(&self, hub: Arc<Hub>) {
        hub.fed_elsewhere();
        let reader = EventReader {
            link: self.link.clone(),
            keys: self.keys.clone(),
            max_lifetime_seconds: self.max_lifetime_seconds,
            hub,
        };
        actix_web::rt::spawn(async move {
            loop {
                if let Err(e) = reader.follow().await {
                    reader
                        .link
                        .failed(&format!("reading the event log stopped: {e}"));
                }
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
}
