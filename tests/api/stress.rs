//! The memory store under everything at once: validations, logins under every policy, deletes,
//! listings and the reaper, on real threads, on a clock that runs fast enough for sessions to
//! expire meanwhile. Afterwards every index must agree with the rows, and the policy with what
//! is left.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sessiond::domain::listing::ListParams;
use sessiond::domain::{
    ConcurrentSessions, EndReason, ListQuery, Millis, NewSession, Order, PresentedToken, Scope,
    SessionId, SortField, Token,
};
use sessiond::store::SessionCounts;
use sessiond::store::{Insert, MemoryStore, SessionStore, StoreError};

const MAX_LIFETIME: u64 = 60;
const USERS: usize = 40;
const ROUNDS: usize = 6000;

/// A clock every thread moves forward: each reading is 7 ms after the one before.
struct Clock {
    base: u64,
    ticks: AtomicU64,
}

impl Clock {
    fn now(&self) -> Millis {
        Millis(self.base + 7 * self.ticks.fetch_add(1, Ordering::Relaxed))
    }
}

fn policy_of(user: usize) -> ConcurrentSessions {
    match user % 3 {
        0 => ConcurrentSessions::DenyOtherIp,
        1 => ConcurrentSessions::Replace,
        _ => ConcurrentSessions::Allow,
    }
}

fn login(store: &MemoryStore, user: usize, round: usize, now: Millis) -> Option<PresentedToken> {
    let id = SessionId::generate();
    let token = Token::generate(id);
    let session = NewSession {
        user_id: format!("stress-{user}").into(),
        name: format!("Student 1{:04}", (user * 37 + round) % 10_000).into(),
        organisation: format!("Org {}", user % 3).into(),
        ip_address: format!("10.1.{}.{}", user % 256, round % 3)
            .parse::<IpAddr>()
            .unwrap(),
        server_name: format!("APP-{}", round % 2).into(),
        roles: vec![],
        user_agent: (round % 2 == 0).then(|| "Mozilla/5.0".into()),
        timeout_seconds: 1 + (round % 5) as u32,
        device: None,
        assurance_level: 1,
        reauthenticate_by: None,
    };
    let insert = Insert {
        id,
        digest: token.digest(),
        session,
    };
    let outcome = block_on(store.create(insert, policy_of(user).into(), now));
    match outcome {
        Ok(_) => Some(PresentedToken::parse(&token.expose()).unwrap()),
        Err(StoreError::LoginDenied(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: actix_web::rt::Runtime = actix_web::rt::Runtime::new().unwrap();
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

#[test]
fn everything_at_once_leaves_every_index_consistent() {
    let store = Arc::new(MemoryStore::new(MAX_LIFETIME));
    let clock = Arc::new(Clock {
        base: Millis::now().0,
        ticks: AtomicU64::new(0),
    });
    let tokens: Arc<Mutex<Vec<PresentedToken>>> = Arc::default();
    let listed = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        // Logins: two threads over the same users, so the same user races with itself.
        for worker in 0..2 {
            let (store, clock, tokens) = (&store, &clock, &tokens);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let user = (round * 7 + worker) % USERS;
                    if let Some(token) = login(store, user, round, clock.now()) {
                        tokens.lock().unwrap().push(token);
                    }
                }
            });
        }
        // Validations and deletes of sessions made so far.
        for worker in 0..2 {
            let (store, clock, tokens) = (&store, &clock, &tokens);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let picked = {
                        let tokens = tokens.lock().unwrap();
                        (!tokens.is_empty()).then(|| tokens[(round * 31 + worker) % tokens.len()])
                    };
                    let Some(token) = picked else { continue };
                    let now = clock.now();
                    if round % 4 == worker {
                        block_on(store.delete(&[token.id], &Scope::All, now, EndReason::Logout))
                            .unwrap();
                    } else if let Some(record) = block_on(store.authenticate(&token, now)).unwrap()
                    {
                        assert_eq!(record.data.id, token.id);
                        assert!(record.expires_at > now);
                    }
                }
            });
        }
        // Listings in several orders, with and without filters, paging on.
        {
            let (store, clock, listed) = (&store, &clock, &listed);
            scope.spawn(move || {
                let queries = [
                    ListParams::default(),
                    ListParams {
                        sort: Some(SortField::SessionTime),
                        order: Some(Order::Desc),
                        ..Default::default()
                    },
                    ListParams {
                        organisation: Some("Org 1".into()),
                        sort: Some(SortField::LastActive),
                        ..Default::default()
                    },
                    ListParams {
                        q: Some("student 1".into()),
                        limit: Some(7),
                        ..Default::default()
                    },
                    ListParams {
                        user_id: Some("stress-5".into()),
                        ..Default::default()
                    },
                ];
                for round in 0..ROUNDS / 5 {
                    let query = ListQuery::parse(queries[round % queries.len()].clone()).unwrap();
                    let page = block_on(store.list(&query, &Scope::All, clock.now())).unwrap();
                    assert!(page.items.len() <= query.limit);
                    let ids: HashSet<SessionId> = page.items.iter().map(|r| r.data.id).collect();
                    assert_eq!(ids.len(), page.items.len(), "no row twice on a page");
                    listed.fetch_add(page.items.len(), Ordering::Relaxed);
                }
            });
        }
        // The reaper.
        {
            let (store, clock) = (&store, &clock);
            scope.spawn(move || {
                for _ in 0..ROUNDS / 20 {
                    block_on(store.reap(clock.now())).unwrap();
                    std::thread::yield_now();
                }
            });
        }
    });
    assert!(
        listed.load(Ordering::Relaxed) > 0,
        "the listings saw sessions"
    );
    let made = tokens.lock().unwrap().len();
    assert!(made > ROUNDS / 2, "{made} logins went through");

    let report = block_on(store.check_indexes()).unwrap();
    println!(
        "stress: {made} logins, {} rows listed, {} sessions left: {report:?}",
        listed.load(Ordering::Relaxed),
        report.rows
    );
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.rows, report.by_id, "{report:?}");
    assert_eq!(report.rows, report.by_user, "{report:?}");

    // What is left obeys each user's policy.
    let now = clock.now();
    for user in 0..USERS {
        let query = ListQuery::parse(ListParams {
            user_id: Some(format!("stress-{user}")),
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
        let page = block_on(store.list(&query, &Scope::All, now)).unwrap();
        let ips: HashSet<IpAddr> = page.items.iter().map(|r| r.data.ip_address).collect();
        match policy_of(user) {
            ConcurrentSessions::DenyOtherIp => assert!(ips.len() <= 1, "user {user}: {ips:?}"),
            ConcurrentSessions::Replace => {
                // Every login under `replace` ends the others; expiry may have ended the last.
                assert!(page.items.len() <= 1, "user {user}: {}", page.items.len())
            }
            ConcurrentSessions::Allow => {}
        }
    }

    // Once everything has expired, the reaper leaves nothing behind, in any index.
    let later = Millis(now.0 + (MAX_LIFETIME + 1) * 1000);
    block_on(store.reap(later)).unwrap();
    let report = block_on(store.check_indexes()).unwrap();
    assert_eq!(
        (report.rows, report.by_id, report.by_user, report.orphans),
        (0, 0, 0, 0),
        "{report:?}"
    );
}

/// One app server in a loop logs one user in a hundred thousand times: validations of other
/// users go on meanwhile, and the user never holds more sessions than the limit.
#[test]
fn a_hundred_thousand_logins_of_one_user_stall_no_one_and_stay_within_the_limit() {
    use sessiond::store::LoginRules;
    use std::sync::atomic::AtomicBool;
    const LIMIT: u32 = 100;
    let store = MemoryStore::new(MAX_LIFETIME);
    let now = Millis::now();
    let others: Vec<PresentedToken> = (0..1000)
        .map(|i| login(&store, USERS + i, 0, now).expect("another user logs in"))
        .collect();
    let done = AtomicBool::new(false);
    let validated = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let rules = LoginRules {
                policy: ConcurrentSessions::Allow,
                max_per_user: LIMIT,
                seats: None,
            };
            for round in 0..100_000u32 {
                let token = Token::issue();
                let session = NewSession {
                    user_id: "looping-app-server-user".into(),
                    name: "Loop".into(),
                    organisation: "Org".into(),
                    ip_address: "10.9.9.9".parse().unwrap(),
                    server_name: "APP".into(),
                    roles: vec![],
                    user_agent: None,
                    timeout_seconds: 1800,
                    device: None,
                    assurance_level: 1,
                    reauthenticate_by: None,
                };
                let insert = Insert {
                    id: token.id(),
                    digest: token.digest(),
                    session,
                };
                let at = Millis(now.0 + u64::from(round));
                block_on(store.create(insert, rules, at)).unwrap();
            }
            done.store(true, Ordering::Relaxed);
        });
        scope.spawn(|| {
            let mut k = 0;
            while !done.load(Ordering::Relaxed) {
                let token = &others[k % others.len()];
                assert!(block_on(store.authenticate(token, now)).unwrap().is_some());
                validated.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
        });
    });
    let report = block_on(store.check_indexes()).unwrap();
    println!(
        "100,000 logins of one user: {} validations of others meanwhile; {report:?}",
        validated.load(Ordering::Relaxed)
    );
    assert!(
        validated.load(Ordering::Relaxed) >= 10_000,
        "validations of other users went on throughout"
    );
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.rows, others.len() + LIMIT as usize, "{report:?}");
}
