//! Micro-benchmarks of the memory store's own operations (`cargo bench`), at 100,000 sessions,
//! and how validation and logins scale with threads straight on the store (no HTTP).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sessiond::domain::listing::ListParams;
use sessiond::domain::{
    ConcurrentSessions, ListQuery, Millis, NewSession, PresentedToken, Scope, Token,
};
use sessiond::store::{Insert, MemoryStore, SessionStore};

const SESSIONS: usize = 100_000;

/// Runs a store call to completion on a current-thread runtime (the store never waits on I/O).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: actix_web::rt::Runtime = actix_web::rt::Runtime::new().expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// Names that share long prefixes, as real directories do.
fn new_session(i: usize) -> NewSession {
    NewSession {
        user_id: format!("user-{i}").into(),
        name: format!("User 1-{:06}", (i * 7919) % 1_000_003).into(),
        organisation: format!("Org {}", i % 20).into(),
        ip_address: std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into(),
        server_name: format!("APP-{}", i % 4).into(),
        roles: vec![],
        user_agent: None,
        timeout_seconds: 1800,
        device: None,
        assurance_level: 1,
        reauthenticate_by: None,
    }
}

fn login(store: &MemoryStore, i: usize, now: Millis) -> PresentedToken {
    let token = Token::issue();
    let insert = Insert {
        id: token.id(),
        digest: token.digest(),
        session: new_session(i),
    };
    block_on(store.create(insert, ConcurrentSessions::DenyOtherIp.into(), now)).unwrap();
    PresentedToken::parse(&token.expose()).unwrap()
}

fn filled(now: Millis) -> (MemoryStore, Vec<PresentedToken>) {
    let store = MemoryStore::new(43_200);
    let tokens = (0..SESSIONS).map(|i| login(&store, i, now)).collect();
    (store, tokens)
}

fn query(text: &str) -> ListQuery {
    let mut query = ListQuery::parse(ListParams::default()).unwrap();
    if !text.is_empty() {
        query.filters.q = Some(text.to_string());
    }
    query
}

fn store_operations(c: &mut Criterion) {
    let now = Millis::now();
    let (store, tokens) = filled(now);
    let mut n = 0;
    c.bench_function("authenticate (validate + touch)", |b| {
        b.iter(|| {
            n = (n + 7919) % SESSIONS;
            block_on(store.authenticate(black_box(&tokens[n]), now)).unwrap()
        })
    });
    c.bench_function("get by id", |b| {
        b.iter(|| {
            n = (n + 7919) % SESSIONS;
            block_on(store.get(black_box(tokens[n].id), &Scope::All, now)).unwrap()
        })
    });
    let mut group = c.benchmark_group("list a page of 100 at 100,000");
    group.sample_size(20);
    for (name, q) in [
        ("default sort (name)", query("")),
        ("search", query("user 1-0012")),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| block_on(store.list(black_box(&q), &Scope::All, now)).unwrap())
        });
    }
    group.finish();
    // Last: it adds sessions.
    let mut i = SESSIONS;
    c.bench_function("create (policy deny-other-ip)", |b| {
        b.iter(|| {
            i += 1;
            login(&store, i, now)
        })
    });
}

/// The time `threads` threads take to do `iters` operations in all, each thread doing its
/// share: throughput per thread count, so the ratio to one thread is the scaling.
fn on_threads(threads: usize, iters: u64, operation: impl Fn(usize) + Sync) -> Duration {
    let next = AtomicUsize::new(0);
    let share = (iters as usize).div_ceil(threads);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let base = next.fetch_add(share, Ordering::Relaxed);
                for k in 0..share {
                    operation(base + k);
                }
            });
        }
    });
    started.elapsed()
}

fn scaling(c: &mut Criterion) {
    let now = Millis::now();
    let (store, tokens) = filled(now);
    let mut group = c.benchmark_group("scaling");
    group.sample_size(20);
    for threads in [1, 2, 4] {
        group.bench_with_input(
            BenchmarkId::new("validate", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |k| {
                        let token = &tokens[(k * 7919) % SESSIONS];
                        black_box(block_on(store.authenticate(token, now)).unwrap());
                    })
                })
            },
        );
    }
    let logged_in = AtomicUsize::new(SESSIONS);
    for threads in [1, 2, 4] {
        group.bench_with_input(
            BenchmarkId::new("login of distinct users", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let base = logged_in.fetch_add(iters as usize + threads, Ordering::Relaxed);
                    on_threads(threads, iters, |k| {
                        black_box(login(&store, base + k, now));
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, store_operations, scaling);
criterion_main!(benches);
