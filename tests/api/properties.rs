//! Property tests: the parsers take arbitrary input without panicking, and the memory store
//! agrees with a plain reference model over arbitrary sequences of operations.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use sessiond::domain::listing::ListParams;
use sessiond::domain::new_session::Defaults;
use sessiond::domain::{
    ConcurrentSessions, EndReason, ListQuery, Millis, NewSession, NewSessionRequest,
    PresentedToken, Scope, SessionId, Token,
};
use sessiond::store::SessionCounts;
use sessiond::store::{Insert, MemoryStore, SessionStore, StoreError};

proptest! {
    #[test]
    fn ids_parse_only_what_they_print(text in ".{0,40}") {
        if let Some(id) = SessionId::parse(&text) {
            prop_assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn presented_tokens_never_panic(text in ".{0,60}") {
        let _ = PresentedToken::parse(&text);
    }

    #[test]
    fn any_cursor_is_a_page_or_a_clean_refusal(cursor in ".{0,200}", limit in -5i64..1100) {
        let params = ListParams { limit: Some(limit), cursor: Some(cursor), ..ListParams::default() };
        match ListQuery::parse(params) {
            Ok(query) => prop_assert!((1..=1000).contains(&query.limit)),
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    #[test]
    fn any_login_body_is_parsed_or_refused_with_the_field_named(
        user in ".{0,300}", name in ".{0,300}", ip in ".{0,50}",
        roles in proptest::collection::vec(".{0,70}", 0..20),
        timeout in proptest::option::of(-10i64..700_000),
    ) {
        let body = json!({"user_id": user, "name": name, "ip_address": ip, "roles": roles,
            "timeout_seconds": timeout});
        let request: NewSessionRequest = serde_json::from_value(body).unwrap();
        let defaults = Defaults { server_name: "LOCAL", timeout_seconds: 1800 };
        match NewSession::parse(request, &defaults, &Default::default(), sessiond::domain::Millis(0)) {
            Ok(s) => {
                prop_assert!((1..=256).contains(&s.user_id.chars().count()));
                prop_assert!((1..=604_800).contains(&s.timeout_seconds));
                prop_assert!(s.roles.len() <= 16);
            }
            Err(message) => {
                let named = ["user_id", "name", "ip_address", "roles", "timeout_seconds"]
                    .iter()
                    .any(|f| message.starts_with(f));
                prop_assert!(named, "{}", message);
            }
        }
    }

    #[test]
    fn snapshot_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = sessiond::persistence::snapshot::decode(&bytes);
        let mut framed = b"SESSIOND".to_vec();
        framed.extend(&bytes);
        let _ = sessiond::persistence::snapshot::decode(&framed);
    }
}

/// One step of a store's life.
#[derive(Clone, Debug)]
enum Op {
    Login { user: u8, ip: u8, timeout: u8 },
    Validate { pick: u8 },
    Delete { pick: u8 },
    Wait { seconds: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 0u8..3, 1u8..30).prop_map(|(user, ip, timeout)| Op::Login { user, ip, timeout }),
        any::<u8>().prop_map(|pick| Op::Validate { pick }),
        any::<u8>().prop_map(|pick| Op::Delete { pick }),
        (1u8..20).prop_map(|seconds| Op::Wait { seconds }),
    ]
}

/// The reference: every rule written as plainly as possible.
#[derive(Clone)]
struct Reference {
    user: u8,
    ip: u8,
    timeout: u64,
    created: u64,
    last: u64,
}

const MAX_LIFETIME: u64 = 60;

impl Reference {
    fn live(&self, now: u64) -> bool {
        now < (self.last + self.timeout * 1000).min(self.created + MAX_LIFETIME * 1000)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_memory_store_agrees_with_the_reference(ops in proptest::collection::vec(op(), 1..60)) {
        actix_web::rt::System::new().block_on(async move {
            let store = Arc::new(MemoryStore::new(MAX_LIFETIME));
            let mut reference: HashMap<SessionId, (PresentedToken, Reference)> = HashMap::new();
            let mut order: Vec<SessionId> = Vec::new();
            let base = Millis::now().0;
            let mut now = base;
            for op in ops {
                match op {
                    Op::Login { user, ip, timeout } => {
                        let mine: Vec<&Reference> = reference.values().map(|(_, r)| r)
                            .filter(|r| r.user == user && r.live(now)).collect();
                        let denied = mine.iter().any(|r| r.ip != ip);
                        let id = SessionId::generate();
                        let token = Token::generate(id);
                        let digest = token.digest();
                        let presented = PresentedToken::parse(&token.expose()).unwrap();
                        let session = NewSession {
                            user_id: format!("u{user}").into(), name: "N".into(), organisation: "O".into(),
                            ip_address: format!("10.0.0.{ip}").parse().unwrap(), server_name: "S".into(),
                            roles: vec![], user_agent: None, timeout_seconds: u32::from(timeout),
                            device: None, assurance_level: 1, reauthenticate_by: None,
                        };
                        let outcome = store.create(Insert { id, digest, session }, ConcurrentSessions::DenyOtherIp.into(), Millis(now)).await;
                        match outcome {
                            Err(StoreError::LoginDenied(existing)) => {
                                assert!(denied);
                                assert_eq!(existing.len(), mine.len());
                            }
                            Ok(_) => {
                                assert!(!denied);
                                reference.insert(id, (presented, Reference { user, ip, timeout: u64::from(timeout), created: now, last: now }));
                                order.push(id);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    Op::Validate { pick } if !order.is_empty() => {
                        let id = order[pick as usize % order.len()];
                        let (token, r) = reference.get_mut(&id).unwrap();
                        let found = store.authenticate(token, Millis(now)).await.unwrap();
                        assert_eq!(found.is_some(), r.live(now));
                        if r.live(now) {
                            r.last = now;
                        }
                    }
                    Op::Delete { pick } if !order.is_empty() => {
                        let id = order[pick as usize % order.len()];
                        let live = reference[&id].1.live(now);
                        let ended = store.delete(&[id], &Scope::All, Millis(now), EndReason::Admin).await.unwrap();
                        assert_eq!(ended.len(), usize::from(live));
                        reference.remove(&id);
                        order.retain(|o| *o != id);
                    }
                    Op::Wait { seconds } => now += u64::from(seconds) * 1000,
                    _ => {}
                }
                let params = ListParams { limit: Some(1000), ..ListParams::default() };
                let page = store.list(&ListQuery::parse(params).unwrap(), &Scope::All, Millis(now)).await.unwrap();
                let expected = reference.values().filter(|(_, r)| r.live(now)).count();
                assert_eq!(page.total as usize, expected);
            }
            store.reap(Millis(now)).await.unwrap();
            let report = store.check_indexes().await.unwrap();
            assert_eq!(report.orphans, 0);
            assert_eq!(report.rows, reference.values().filter(|(_, r)| r.live(now)).count());
        });
    }
}
