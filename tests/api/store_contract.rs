//! One contract, every store: the same cases run against the memory store and the Redis store,
//! calling the store directly with explicit clocks.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use sessiond::domain::listing::ListParams;
use sessiond::domain::{
    ConcurrentSessions, EndReason, ListQuery, Millis, NewSession, PresentedToken, Scope, SessionId,
    Token,
};
use sessiond::store::{
    Insert, LoginRules, MemoryStore, RedisClock, RedisOptions, RedisStore, SharedStore, StoreError,
};

use crate::helpers::unique;
use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

const MAX_LIFETIME: u64 = 3600;

/// The stores every case runs against.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Memory,
    Redis,
    /// A three-master Redis Cluster.
    Cluster,
}

/// Runs `case` against a fresh store of the given kind.
fn with_store<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    actix_web::rt::System::new().block_on(async move {
        if kind == Kind::Cluster {
            let Some(cluster) = RedisCluster::shared() else {
                return;
            };
            let options = RedisOptions {
                clock: RedisClock::Caller,
                ..RedisOptions::new(&format!("contract-{}:", unique()), MAX_LIFETIME)
            };
            let store = RedisStore::connect(&cluster.url(), options)
                .await
                .expect("the cluster is reachable");
            case(store).await;
        } else if kind == Kind::Redis {
            let Some(server) = RedisServer::start() else {
                return;
            };
            let prefix = format!("contract-{}:", unique());
            // These cases travel in time, so the scripts go by the clock each call passes.
            let options = RedisOptions {
                clock: RedisClock::Caller,
                ..RedisOptions::new(&prefix, MAX_LIFETIME)
            };
            let store = RedisStore::connect(&server.url(), options)
                .await
                .expect("Redis is reachable");
            case(store).await;
            drop(server);
        } else {
            case(Arc::new(MemoryStore::new(MAX_LIFETIME))).await;
        }
    });
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $case() { super::with_store(super::Kind::Memory, super::$case) })*
        }
        mod redis {
            $(#[test] fn $case() { super::with_store(super::Kind::Redis, super::$case) })*
        }
        mod redis_cluster {
            $(#[test] fn $case() { super::with_store(super::Kind::Cluster, super::$case) })*
        }
    };
}

contract!(
    validation_touches_and_expiry_ends,
    the_max_lifetime_caps_activity,
    deny_other_ip_allows_the_same_address_only,
    replace_and_allow,
    simultaneous_logins_from_different_ips_let_exactly_one_in,
    deletes_respect_the_scope_and_report_what_ended,
    listing_pages_cover_every_match_once,
    indexes_stay_consistent,
    the_limit_ends_the_least_recently_active,
    seats_hold_distinct_users_and_free_on_expiry,
    a_seat_freed_by_expiry_is_found_for_every_new_user,
    logins_follow_the_one_login_rule,
);

fn session(user: &str, org: &str, ip: &str, timeout: u32) -> NewSession {
    NewSession {
        user_id: user.into(),
        name: format!("Name of {user}").into(),
        organisation: org.into(),
        ip_address: ip.parse::<IpAddr>().unwrap(),
        server_name: "LOCAL".into(),
        roles: vec![],
        user_agent: None,
        timeout_seconds: timeout,
        device: None,
        assurance_level: 1,
        reauthenticate_by: None,
    }
}

/// Creates a session; returns its id and its token as a client would present it.
async fn login(
    store: &SharedStore,
    new: NewSession,
    rules: impl Into<LoginRules>,
    now: Millis,
) -> Result<(SessionId, PresentedToken), StoreError> {
    login_ending(store, new, rules, now)
        .await
        .map(|(id, token, _)| (id, token))
}

/// [`login`], with the sessions the login ended.
async fn login_ending(
    store: &SharedStore,
    new: NewSession,
    rules: impl Into<LoginRules>,
    now: Millis,
) -> Result<(SessionId, PresentedToken, Vec<(SessionId, EndReason)>), StoreError> {
    // The store names the id: on a cluster, it leads to the user's slot.
    let id = store.new_session_id(&new.user_id);
    let token = Token::generate(id);
    let digest = token.digest();
    let insert = Insert {
        id,
        digest,
        session: new,
    };
    store
        .create(insert, rules.into(), now)
        .await
        .map(|created| {
            (
                id,
                PresentedToken::parse(&token.expose()).expect("a token of ours"),
                created.ended,
            )
        })
}

async fn seats_hold_distinct_users_and_free_on_expiry(store: SharedStore) {
    let t0 = Millis::now();
    let organisation = format!("Seats-{}", unique());
    let rules = LoginRules {
        policy: ConcurrentSessions::Allow,
        max_per_user: 0,
        seats: Some(2),
    };
    let (a, b, c) = (unique(), unique(), unique());
    for (user, timeout) in [(&a, 60), (&b, 600)] {
        let new = session(user, &organisation, "10.0.0.1", timeout);
        login(&store, new, rules, t0).await.unwrap();
    }
    let refused = login(
        &store,
        session(&c, &organisation, "10.0.0.2", 60),
        rules,
        t0,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::SeatLimit { limit: 2, .. })),
        "{refused:?}"
    );
    // A user already on takes no new seat.
    let again = session(&b, &organisation, "10.0.0.3", 600);
    assert!(login(&store, again, rules, at(t0, 1)).await.is_ok());
    assert_eq!(
        store.seats_in_use(&organisation, at(t0, 1)).await.unwrap(),
        2
    );
    // a's session expires: its seat is free from that instant, before any reaper runs.
    let later = at(t0, 61);
    assert_eq!(store.seats_in_use(&organisation, later).await.unwrap(), 1);
    assert!(login(
        &store,
        session(&c, &organisation, "10.0.0.2", 60),
        rules,
        later
    )
    .await
    .is_ok());
}

/// An organisation at its limit with one user whose session expired (not yet reaped) has a
/// free seat for any new user, whoever else is logging in meanwhile.
async fn a_seat_freed_by_expiry_is_found_for_every_new_user(store: SharedStore) {
    let t0 = Millis::now();
    let organisation = format!("Acme-{}", unique());
    let rules = LoginRules {
        policy: ConcurrentSessions::DenyOtherIp,
        max_per_user: 0,
        seats: Some(2),
    };
    for timeout in [1, 3600] {
        let new = session(&unique(), &organisation, "10.0.0.1", timeout);
        login(&store, new, rules, t0).await.unwrap();
    }
    let later = at(t0, 10);
    let mut refused = 0;
    for _ in 0..400 {
        let new = session(&unique(), &organisation, "10.0.0.2", 600);
        match login(&store, new, rules, later).await {
            Ok((id, _)) => {
                let ended = store
                    .delete(&[id], &Scope::All, later, EndReason::Logout)
                    .await
                    .unwrap();
                assert_eq!(ended.len(), 1);
            }
            Err(StoreError::SeatLimit { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 0, "logins refused while a seat was free");
}

/// Both stores decide logins as `domain::login::decide` does (the memory store calls it; the
/// Redis store's `create.lua` is checked against it here), over policies, limits, seats and
/// the user's sessions in and out of the organisation, from the same address or another.
async fn logins_follow_the_one_login_rule(store: SharedStore) {
    use sessiond::domain::login::{decide, Decision, LiveSession};
    let t0 = Millis::now();
    let setup = LoginRules::from(ConcurrentSessions::Allow);
    let policies = [
        ConcurrentSessions::DenyOtherIp,
        ConcurrentSessions::Replace,
        ConcurrentSessions::Allow,
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for case in 0..60 {
        let (here, elsewhere) = (format!("O-{}", unique()), format!("P-{}", unique()));
        let rules = LoginRules {
            policy: policies[next(3) as usize],
            max_per_user: next(4) as u32,
            seats: [None, Some(1), Some(2)][next(3) as usize],
        };
        let others = next(3);
        for _ in 0..others {
            let new = session(&unique(), &here, "10.9.9.9", 600);
            login(&store, new, setup, t0).await.unwrap();
        }
        let user = unique();
        let mut live = Vec::new();
        let mut ids = Vec::new();
        for i in 0..next(4) {
            let ip = ["10.0.0.1", "10.0.0.2"][next(2) as usize];
            let in_organisation = next(2) == 0;
            let org = if in_organisation { &here } else { &elsewhere };
            let created = at(t0, 1 + i);
            let (id, _) = login(&store, session(&user, org, ip, 600), setup, created)
                .await
                .unwrap();
            ids.push(id);
            live.push(LiveSession {
                ip_address: ip.parse().unwrap(),
                last_active_at: created,
                in_organisation,
            });
        }
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let expected = decide(&rules, ip, &live, || {
            others >= u64::from(rules.seats.unwrap())
        });
        let outcome = login_ending(
            &store,
            session(&user, &here, "10.0.0.1", 600),
            rules,
            at(t0, 9),
        )
        .await;
        let context = format!("case {case}: {rules:?}, {others} others, {live:?}");
        match (expected, outcome) {
            (Decision::DeniedOtherIp, Err(StoreError::LoginDenied(_))) => {}
            (Decision::SeatLimit, Err(StoreError::SeatLimit { .. })) => {}
            (Decision::Admitted { ends, .. }, Ok((_, _, mut ended))) => {
                let mut ends: Vec<(SessionId, EndReason)> = ends
                    .into_iter()
                    .map(|(i, reason)| (ids[i], reason))
                    .collect();
                ends.sort_by_key(|e| e.0);
                ended.sort_by_key(|e| e.0);
                assert_eq!(ended, ends, "{context}");
            }
            (expected, outcome) => {
                panic!(
                    "{context}: expected {expected:?}, got {:?}",
                    outcome.map(|o| o.2)
                )
            }
        }
    }
}

async fn the_limit_ends_the_least_recently_active(store: SharedStore) {
    let t0 = Millis::now();
    let user = unique();
    let rules = LoginRules {
        policy: ConcurrentSessions::Allow,
        max_per_user: 3,
        seats: None,
    };
    let mut sessions = Vec::new();
    for i in 0..3 {
        let new = session(&user, "A", &format!("10.0.0.{i}"), 600);
        let (id, token, ended) = login_ending(&store, new, rules, at(t0, i)).await.unwrap();
        assert!(ended.is_empty(), "within the limit nothing ends");
        sessions.push((id, token));
    }
    // The first is used again, so the second is now the least recently active.
    assert!(store
        .authenticate(&sessions[0].1, at(t0, 10))
        .await
        .unwrap()
        .is_some());
    let new = session(&user, "A", "10.0.0.9", 600);
    let (fourth, _, ended) = login_ending(&store, new, rules, at(t0, 11)).await.unwrap();
    assert_eq!(ended, vec![(sessions[1].0, EndReason::Evicted)]);
    for (id, live) in [
        (sessions[0].0, true),
        (sessions[1].0, false),
        (sessions[2].0, true),
        (fourth, true),
    ] {
        let found = store.get(id, &Scope::All, at(t0, 12)).await.unwrap();
        assert_eq!(found.is_some(), live, "{id}");
    }
    // `replace` ends the others as replaced, not evicted, and the limit has nothing to do.
    let replace = LoginRules {
        policy: ConcurrentSessions::Replace,
        max_per_user: 3,
        seats: None,
    };
    let new = session(&user, "A", "10.0.0.10", 600);
    let (_, _, ended) = login_ending(&store, new, replace, at(t0, 13))
        .await
        .unwrap();
    assert_eq!(ended.len(), 3);
    assert!(ended.iter().all(|(_, why)| *why == EndReason::Replaced));
}

async fn must_login(
    store: &SharedStore,
    new: NewSession,
    now: Millis,
) -> (SessionId, PresentedToken) {
    login(store, new, ConcurrentSessions::Allow, now)
        .await
        .unwrap()
}

fn at(base: Millis, seconds: u64) -> Millis {
    base.plus_seconds(seconds)
}

async fn validation_touches_and_expiry_ends(store: SharedStore) {
    let t0 = Millis::now();
    let (id, digest) = must_login(&store, session(&unique(), "A", "10.0.0.1", 60), t0).await;
    let record = store
        .authenticate(&digest, at(t0, 50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data.id, id);
    assert_eq!(record.last_active_at, at(t0, 50));
    assert_eq!(
        record.expires_at,
        at(t0, 110),
        "the touch slid the idle timeout"
    );
    assert!(store
        .authenticate(&digest, at(t0, 109))
        .await
        .unwrap()
        .is_some());
    let expired = at(t0, 169);
    assert!(store
        .authenticate(&digest, expired)
        .await
        .unwrap()
        .is_none());
    assert!(store.get(id, &Scope::All, expired).await.unwrap().is_none());
    assert!(store
        .delete(&[id], &Scope::All, expired, EndReason::Admin)
        .await
        .unwrap()
        .is_empty());
    let unknown = SessionId::generate();
    let unknown = PresentedToken::parse(&Token::generate(unknown).expose()).unwrap();
    assert!(store.authenticate(&unknown, t0).await.unwrap().is_none());
    let (live, _) = must_login(&store, session(&unique(), "A", "10.0.0.1", 60), t0).await;
    let wrong_secret = PresentedToken::parse(&Token::generate(live).expose()).unwrap();
    assert!(
        store
            .authenticate(&wrong_secret, t0)
            .await
            .unwrap()
            .is_none(),
        "the right id with another secret is refused"
    );
}

async fn the_max_lifetime_caps_activity(store: SharedStore) {
    let t0 = Millis::now();
    let (_, digest) = must_login(&store, session(&unique(), "A", "10.0.0.1", 1800), t0).await;
    let mut now = t0;
    while now < at(t0, MAX_LIFETIME - 1000) {
        now = at(now, 1000);
        assert!(store.authenticate(&digest, now).await.unwrap().is_some());
    }
    let last = store
        .authenticate(&digest, at(t0, MAX_LIFETIME - 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.expires_at, at(t0, MAX_LIFETIME));
    assert!(store
        .authenticate(&digest, at(t0, MAX_LIFETIME))
        .await
        .unwrap()
        .is_none());
}

async fn deny_other_ip_allows_the_same_address_only(store: SharedStore) {
    let t0 = Millis::now();
    let user = unique();
    let deny = ConcurrentSessions::DenyOtherIp;
    let (first, _) = login(&store, session(&user, "A", "10.0.0.1", 60), deny, t0)
        .await
        .unwrap();
    let (second, _) = login(&store, session(&user, "A", "10.0.0.1", 60), deny, t0)
        .await
        .unwrap();
    match login(&store, session(&user, "A", "10.0.0.2", 60), deny, t0).await {
        Err(StoreError::LoginDenied(existing)) => {
            let mut ids: Vec<SessionId> = existing.iter().map(|e| e.id).collect();
            ids.sort();
            let mut expected = vec![first, second];
            expected.sort();
            assert_eq!(ids, expected);
            assert!(existing
                .iter()
                .all(|e| e.ip_address.to_string() == "10.0.0.1"));
        }
        other => panic!("expected a denial, got {:?}", other.map(|_| ())),
    }
    // Once both have expired, another address is welcome.
    assert!(login(
        &store,
        session(&user, "A", "10.0.0.2", 60),
        deny,
        at(t0, 61)
    )
    .await
    .is_ok());
}

async fn replace_and_allow(store: SharedStore) {
    let t0 = Millis::now();
    let user = unique();
    let (old, old_digest) = must_login(&store, session(&user, "A", "10.0.0.1", 60), t0).await;
    let (new, _) = login(
        &store,
        session(&user, "A", "10.0.0.2", 60),
        ConcurrentSessions::Replace,
        t0,
    )
    .await
    .unwrap();
    assert!(store.authenticate(&old_digest, t0).await.unwrap().is_none());
    assert!(store.get(old, &Scope::All, t0).await.unwrap().is_none());
    assert!(store.get(new, &Scope::All, t0).await.unwrap().is_some());
    let (_, third) = must_login(&store, session(&user, "A", "10.0.0.3", 60), t0).await;
    assert!(store.authenticate(&third, t0).await.unwrap().is_some());
    assert!(
        store.get(new, &Scope::All, t0).await.unwrap().is_some(),
        "allow ends nothing"
    );
}

async fn simultaneous_logins_from_different_ips_let_exactly_one_in(store: SharedStore) {
    let t0 = Millis::now();
    let user = unique();
    let attempts = (0..20).map(|i| {
        login(
            &store,
            session(&user, "A", &format!("10.9.0.{i}"), 60),
            ConcurrentSessions::DenyOtherIp,
            t0,
        )
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|e| matches!(e, StoreError::LoginDenied(_))));
}

async fn deletes_respect_the_scope_and_report_what_ended(store: SharedStore) {
    let t0 = Millis::now();
    let (a, a_digest) = must_login(&store, session(&unique(), "Org-A", "10.0.0.1", 60), t0).await;
    let (b, _) = must_login(&store, session(&unique(), "Org-B", "10.0.0.2", 60), t0).await;
    let org_a = Scope::Organisation("Org-A".into());
    assert!(store.get(b, &org_a, t0).await.unwrap().is_none());
    let ended = store
        .delete(&[a, b, SessionId::generate()], &org_a, t0, EndReason::Admin)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].data.id, a);
    assert_eq!(&*ended[0].data.organisation, "Org-A");
    assert!(store.authenticate(&a_digest, t0).await.unwrap().is_none());
    assert!(store.get(b, &Scope::All, t0).await.unwrap().is_some());
}

fn query(org: &str, limit: i64, cursor: Option<String>) -> ListQuery {
    ListQuery::parse(ListParams {
        organisation: Some(org.into()),
        limit: Some(limit),
        cursor,
        ..ListParams::default()
    })
    .unwrap()
}

async fn listing_pages_cover_every_match_once(store: SharedStore) {
    let t0 = Millis::now();
    let org = unique();
    let mut ids = Vec::new();
    for i in 0..17 {
        let new = session(&unique(), &org, &format!("10.3.0.{i}"), 60);
        ids.push(must_login(&store, new, t0).await.0);
    }
    must_login(&store, session(&unique(), "elsewhere", "10.4.0.1", 60), t0).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = query(&org, 5, cursor.clone());
        let page = store.list(&q, &Scope::All, t0).await.unwrap();
        assert_eq!(page.total, 17);
        let names: Vec<String> = page.items.iter().map(|r| r.data.name.to_string()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "each page is in order");
        seen.extend(page.items.iter().map(|r| r.data.id));
        match (page.more, page.items.last()) {
            (true, Some(last)) => {
                cursor = Some(q.cursor_after(&sessiond::domain::Position::of(&q, last)));
            }
            _ => break,
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

async fn indexes_stay_consistent(store: SharedStore) {
    let t0 = Millis::now();
    let mut live = Vec::new();
    for i in 0..30 {
        let user = format!("user-{}", i % 7);
        let (id, _) = must_login(&store, session(&user, "A", "10.0.0.1", 60), t0).await;
        live.push(id);
    }
    let gone: Vec<SessionId> = live.drain(..12).collect();
    store
        .delete(&gone, &Scope::All, t0, EndReason::Admin)
        .await
        .unwrap();
    let report = store.check_indexes().await.unwrap();
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.rows, live.len());
    assert_eq!(report.by_id, live.len());
    assert_eq!(report.by_user, live.len());
}

/// The Redis scripts carry the expiry rule in Lua; it must agree with the Rust rule to the
/// millisecond, at the edges too.
#[test]
fn the_lua_expiry_rule_is_the_rust_rule() {
    use sessiond::domain::session::expires_at;
    use sessiond::domain::Millis;
    let Some(server) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let script = ::redis::Script::new(&format!(
        "{}return expires_at(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] ~= '' and tonumber(ARGV[5]))",
        sessiond::store::lua_prelude()
    ));
    let now = 1_795_820_400_123u64;
    for (last_active, timeout, created, max_lifetime, by) in [
        (now, 1800, now, 43_200, None),
        (now, 1, now - 5_000, 3, None),
        (now + 999, 604_800, now - 43_199_000, 43_200, None),
        (now, 604_800, now, 604_800, None),
        (now - 1, 30, now - 2, 1, None),
        (0, 1, 0, 1, None),
        (now, 3_600, now, 43_200, Some(now + 1_000)),
        (now, 900, now - 10, 43_200, Some(now + 900_000)),
        (now, 900, now, 43_200, Some(now + 900_001)),
    ] {
        let rust = expires_at(
            Millis(last_active),
            timeout,
            Millis(created),
            max_lifetime,
            by.map(Millis),
        );
        let lua: u64 = script
            .arg(last_active)
            .arg(timeout)
            .arg(created)
            .arg(max_lifetime * 1000)
            .arg(by.map(|b| b.to_string()).unwrap_or_default())
            .invoke(&mut conn)
            .unwrap();
        assert_eq!(
            lua, rust.0,
            "{last_active} {timeout} {created} {max_lifetime}"
        );
    }
}

/// sessiond's Redis store decides every expiry by Redis' clock: a node whose own clock is far
/// off still makes sessions that start now by Redis, and validates them.
#[test]
fn nodes_go_by_redis_clock_not_their_own() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    actix_web::rt::System::new().block_on(async move {
        let store: SharedStore = RedisStore::connect(
            &server.url(),
            RedisOptions::new(&format!("clock-{}:", unique()), MAX_LIFETIME),
        )
        .await
        .expect("Redis is reachable");
        let skewed = Millis::now().plus_seconds(2 * MAX_LIFETIME);
        let (id, token) = login(
            &store,
            session(&unique(), "A", "10.0.0.1", 60),
            ConcurrentSessions::Allow,
            skewed,
        )
        .await
        .unwrap();
        let real = Millis::now();
        let record = store.get(id, &Scope::All, skewed).await.unwrap().unwrap();
        assert!(
            record.data.created_at.0.abs_diff(real.0) < 5_000,
            "made at Redis' time, not the node's: {:?} vs {real:?}",
            record.data.created_at
        );
        // A node two lifetimes ahead still finds the session live, as Redis does.
        assert!(store.authenticate(&token, skewed).await.unwrap().is_some());
    });
}

/// On Redis a validation is a read unless activity is due (once per interval, or a quarter of
/// a short idle timeout): Redis counts no write for the validations in between.
#[test]
fn on_redis_validations_write_activity_at_most_once_per_interval() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let writes = move || -> u64 {
        let mut conn = ::redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let info: String = ::redis::cmd("INFO")
            .arg("persistence")
            .query(&mut conn)
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("Redis counts its writes")
    };
    actix_web::rt::System::new().block_on(async move {
        let options = RedisOptions {
            clock: RedisClock::Caller,
            ..RedisOptions::new(&format!("activity-{}:", unique()), MAX_LIFETIME)
        };
        let store: SharedStore = RedisStore::connect(&url, options).await.unwrap();
        let t0 = Millis::now();
        let (_, token) = must_login(&store, session(&unique(), "A", "10.0.0.1", 600), t0).await;
        let before = writes();
        for ms in (0..4_900).step_by(100) {
            let record = store
                .authenticate(&token, Millis(t0.0 + ms))
                .await
                .unwrap()
                .expect("live");
            assert_eq!(record.last_active_at, t0, "no activity written yet");
        }
        assert_eq!(
            writes(),
            before,
            "validations within the interval are reads"
        );
        let record = store
            .authenticate(&token, at(t0, 5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.last_active_at, at(t0, 5));
        assert!(writes() > before, "due activity is written");
        assert_eq!(record.expires_at, at(t0, 605));
    });
}
