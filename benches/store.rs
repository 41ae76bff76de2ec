//! Micro-benchmarks of the memory store's own operations (`cargo bench`), at 100,000 sessions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sessiond::domain::listing::ListParams;
use sessiond::domain::{
    ConcurrentSessions, ListQuery, Millis, NewSession, Scope, SessionId, Token, TokenDigest,
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

fn new_session(i: usize) -> NewSession {
    NewSession {
        user_id: format!("user-{i}").into(),
        name: format!("User {}", (i * 7919) % 100_003).into(),
        organisation: format!("Org {}", i % 20).into(),
        ip_address: std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into(),
        server_name: format!("APP-{}", i % 4).into(),
        roles: vec![],
        user_agent: None,
        timeout_seconds: 1800,
    }
}

fn filled(now: Millis) -> (MemoryStore, Vec<TokenDigest>, Vec<SessionId>) {
    let store = MemoryStore::new(43_200);
    let (mut digests, mut ids) = (Vec::new(), Vec::new());
    block_on(async {
        for i in 0..SESSIONS {
            let (id, digest) = (SessionId::generate(), Token::generate().digest());
            let insert = Insert {
                id,
                digest,
                session: new_session(i),
            };
            store
                .create(insert, ConcurrentSessions::Allow, now)
                .await
                .unwrap();
            digests.push(digest);
            ids.push(id);
        }
    });
    (store, digests, ids)
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
    let (store, digests, ids) = filled(now);
    let mut n = 0;
    c.bench_function("authenticate (validate + touch)", |b| {
        b.iter(|| {
            n = (n + 7919) % SESSIONS;
            block_on(store.authenticate(black_box(&digests[n]), now)).unwrap()
        })
    });
    c.bench_function("get by id", |b| {
        b.iter(|| {
            n = (n + 7919) % SESSIONS;
            block_on(store.get(black_box(ids[n]), &Scope::All, now)).unwrap()
        })
    });
    let mut group = c.benchmark_group("list a page of 100 at 100,000");
    group.sample_size(20);
    for (name, q) in [
        ("default sort (name)", query("")),
        ("search", query("user 12")),
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
            let insert = Insert {
                id: SessionId::generate(),
                digest: Token::generate().digest(),
                session: new_session(i),
            };
            block_on(store.create(insert, ConcurrentSessions::DenyOtherIp, now)).unwrap()
        })
    });
}

criterion_group!(benches, store_operations);
criterion_main!(benches);
