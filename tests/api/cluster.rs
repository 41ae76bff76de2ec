//! Several sessiond nodes sharing one Redis: every rule holds across nodes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{race, race_logins, unique, wait_until, without_clock_fields, Login};
use crate::process::Process;
use crate::redis_server::RedisServer;

pub fn node(redis: &RedisServer, name: &str, prefix: &str) -> Process {
    Process::start(&[
        ("SESSIOND_STORE", &redis.url()),
        ("SESSIOND_SERVER_NAME", name),
        ("SESSIOND_REDIS_PREFIX", prefix),
    ])
    .unwrap_or_else(|e| panic!("node {name} starts: {e}"))
}

fn admin(node: &Process) -> Login {
    node.login_as(&json!({"user_id": unique(), "name": "Ada Admin", "ip_address": "10.0.0.1", "roles": ["admin"]}))
}

/// The listing as both nodes must agree on it: without `own` and the clock-driven fields.
fn listing(node: &Process, token: &str, query: &str) -> Vec<Value> {
    without_clock_fields(node.list_all(token, query))
}

/// A Redis and two nodes on it, named NODE-A and NODE-B, under a prefix of their own.
fn cluster() -> Option<(RedisServer, Process, Process)> {
    let redis = RedisServer::start()?;
    let prefix = format!("{}:", unique());
    let (a, b) = (
        node(&redis, "NODE-A", &prefix),
        node(&redis, "NODE-B", &prefix),
    );
    Some((redis, a, b))
}

#[test]
fn a_session_made_on_one_node_lives_and_ends_on_every_node() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let admin_a = admin(&a);

    let user = a.login(&unique(), "10.1.0.1");
    let on_b = b.get("/sessions/current", &user.token);
    assert_eq!(on_b.status, 200, "{}", on_b.body);
    assert_eq!(
        on_b.json()["server_name"],
        "NODE-A",
        "the node it was created through"
    );

    // Deleted through B: refused on A at once.
    let by_admin = b.login_as(
        &json!({"user_id": unique(), "name": "Bo", "ip_address": "10.0.0.9", "roles": ["admin"]}),
    );
    assert_eq!(
        b.delete(&format!("/sessions/{}", user.id), &by_admin.token)
            .status,
        204
    );
    assert!(!a.validates(&user.token));
    // Logged out through A: refused on B at once.
    let other = b.login(&unique(), "10.1.0.2");
    assert_eq!(a.delete("/sessions/current", &other.token).status, 204);
    assert!(!b.validates(&other.token));
    // Bulk-deleted through A.
    let third = b.login(&unique(), "10.1.0.3");
    let result = a.delete_ids(&admin_a.token, &[&third.id]).json();
    assert_eq!(result["deleted"], json!([third.id]));
    assert!(!b.validates(&third.token));
}

#[test]
fn every_node_lists_every_nodes_sessions_alike() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let admin_a = admin(&a);
    let org = unique();
    for i in 0..12 {
        let through = if i % 2 == 0 { &a } else { &b };
        through.login_as(
            &json!({"user_id": unique(), "name": format!("User {:02}", i % 5),
            "organisation": org, "ip_address": format!("10.2.0.{i}")}),
        );
    }
    // Listed through B right after the logins through A: no waiting.
    for query in [
        format!("organisation={org}&limit=5"),
        format!("organisation={org}&sort=server_name&order=desc&limit=4"),
        format!("organisation={org}&q=user%200&limit=2"),
        format!("organisation={org}&server_name=NODE-B"),
    ] {
        let on_a = listing(&a, &admin_a.token, &query);
        let on_b = listing(&b, &admin_a.token, &query);
        assert_eq!(on_a, on_b, "{query}");
    }
    let all = listing(&b, &admin_a.token, &format!("organisation={org}"));
    assert_eq!(all.len(), 12);
    let servers: HashSet<&str> = all
        .iter()
        .map(|s| s["server_name"].as_str().unwrap())
        .collect();
    assert_eq!(servers, HashSet::from(["NODE-A", "NODE-B"]));
    let page = b
        .get(
            &format!("/sessions?organisation={org}&limit=5"),
            &admin_a.token,
        )
        .json();
    assert_eq!(page["total"], 12);
    // A cursor from one node continues on the other.
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = a.get(
        &format!("/sessions?organisation={org}&limit=5&cursor={cursor}"),
        &admin_a.token,
    );
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["items"].as_array().unwrap().len(), 5);
}

#[test]
fn simultaneous_logins_through_both_nodes_let_exactly_one_in() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let nodes = Arc::new([a, b]);
    for _round in 0..5 {
        let nodes = nodes.clone();
        race_logins(12, move |i, body| nodes[i % 2].create(body).status);
    }
}

#[test]
fn simultaneous_logins_for_an_organisations_last_seat_through_both_nodes_let_one_in() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let prefix = format!("seats-{}:", unique());
    let seated = |name: &str| {
        Process::start(&[
            ("SESSIOND_STORE", &redis.url()),
            ("SESSIOND_REDIS_PREFIX", &prefix),
            ("SESSIOND_SERVER_NAME", name),
            ("SESSIOND_ORGANISATION_SEATS", "Acme=4"),
        ])
        .unwrap_or_else(|e| panic!("node {name} starts: {e}"))
    };
    let (a, b) = (seated("NODE-A"), seated("NODE-B"));
    for node in [&a, &b, &a] {
        node.login_as(
            &json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1",
            "organisation": "Acme"}),
        );
    }
    let nodes = Arc::new([a, b]);
    race(
        10,
        |i| {
            json!({"user_id": unique(), "name": "N", "ip_address": format!("10.2.0.{i}"),
            "organisation": "Acme"})
        },
        move |i, body| nodes[i % 2].create(body).status,
    );
}

#[test]
fn deployments_with_different_prefixes_do_not_see_each_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, "A", "blue:"), node(&redis, "B", "green:"));
    let user = a.login(&unique(), "10.0.0.1");
    assert!(!b.validates(&user.token));
    let admin_b = admin(&b);
    assert_eq!(
        b.get("/sessions", &admin_b.token).json()["total"],
        1,
        "only its own admin"
    );
}

#[test]
fn redis_down_means_503_fast_and_recovery_needs_no_restart() {
    let Some((mut redis, a, b)) = cluster() else {
        return;
    };
    let admin_a = admin(&a);
    let user = b.login(&unique(), "10.0.0.5");

    redis.stop();
    for (name, node) in [("A", &a), ("B", &b)] {
        for (method, path) in [
            ("GET", "/sessions/current"),
            ("GET", "/sessions"),
            ("GET", "/readyz"),
        ] {
            let started = Instant::now();
            let response = node.send(
                method,
                path,
                &[("Authorization", &format!("Bearer {}", admin_a.token))],
                b"",
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name} {path} answered in time"
            );
            let problem = response.problem(503, "unavailable");
            // The reason (connection refused, an address) is for the log, not for callers.
            let detail = problem["detail"].as_str().unwrap().to_lowercase();
            assert!(
                !detail.contains("redis") && !detail.contains("refused") && !detail.contains(':'),
                "{name} {path}: {detail}"
            );
        }
        let started = Instant::now();
        node.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.6"}))
            .problem(503, "unavailable");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            node.send("GET", "/healthz", &[], b"").status,
            200,
            "still alive"
        );
    }

    // Redis comes back empty (no persistence here): the nodes reconnect by themselves.
    redis.restart();
    for node in [&a, &b] {
        wait_until(Duration::from_secs(15), "the node is ready again", || {
            node.send("GET", "/readyz", &[], b"").status == 200
        });
    }
    assert!(
        !a.validates(&user.token),
        "the sessions went with that Redis"
    );
    let again = a.login(&unique(), "10.0.0.7");
    assert!(b.validates(&again.token));
    let admin_b = admin(&b);
    let listed = a.get("/sessions", &admin_b.token);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["total"], 2);
}

#[test]
fn events_made_on_one_node_reach_a_stream_on_the_other_in_order() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let watcher = admin(&b);
    let stream = crate::sse::EventStream::open(
        &b,
        &watcher.token,
        "?types=session-created,session-ended",
        None,
    );
    let mut expected = Vec::new();
    for n in 0..5 {
        let user = a.login(&unique(), &format!("10.7.0.{n}"));
        assert_eq!(a.delete("/sessions/current", &user.token).status, 204);
        expected.push((user.id.clone(), "session-created".to_string()));
        expected.push((user.id, "session-ended".to_string()));
    }
    let seen: Vec<(String, String)> = stream
        .events(10)
        .into_iter()
        .map(|(_, e)| {
            (
                e["data"]["id"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen, expected);

    // A reader that drops its stream on B resumes on A from the id B gave it.
    let (last, _) = {
        // An id B never held ("0"): told as a reset first, then everything B keeps.
        let probe = crate::sse::EventStream::open(&b, &watcher.token, "", Some("0"));
        let all = probe.events(12);
        assert_eq!(all[0].1["type"], "stream-reset", "{:?}", all[0]);
        all.last().cloned().unwrap()
    };
    let missed = b.login(&unique(), "10.7.1.1");
    let on_a = crate::sse::EventStream::open(&a, &watcher.token, "", Some(&last));
    assert_eq!(on_a.event().1["data"]["id"], missed.id.as_str());
}

#[test]
fn an_expired_session_is_announced_once_whichever_node_reaps_it() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let watcher = admin(&b);
    let stream = crate::sse::EventStream::open(&a, &watcher.token, "?types=session-ended", None);
    let user = unique();
    let brief = a.login_as(
        &json!({"user_id": user, "name": user, "ip_address": "10.8.0.1", "timeout_seconds": 1}),
    );
    // Both nodes' reapers run every 10 s; one of them ends it.
    let (_, event) = stream
        .next_event(Duration::from_secs(25))
        .expect("the reaper announces the expiry");
    assert_eq!(event["data"]["id"], brief.id.as_str());
    assert_eq!(event["data"]["reason"], "expired");
    assert_eq!(event["data"]["user_id"], user.as_str());
    assert!(
        stream.next_event(Duration::from_secs(11)).is_none(),
        "the other node's reaper does not announce it again"
    );
}

#[test]
fn an_event_stream_outlives_a_redis_restart() {
    let Some((mut redis, a, b)) = cluster() else {
        return;
    };
    let watcher = admin(&b);
    let stream = crate::sse::EventStream::open(&b, &watcher.token, "?types=session-created", None);
    redis.restart();
    wait_until(Duration::from_secs(15), "node A is ready again", || {
        a.send("GET", "/readyz", &[], b"").status == 200
    });
    // Node B reads the event log again once Redis is back: a login through A reaches it.
    let user = a.login(&unique(), "10.7.2.1");
    let (_, event) = stream
        .next_event(Duration::from_secs(15))
        .expect("the event reaches the open stream");
    assert_eq!(event["data"]["id"], user.id.as_str());
}

/// A rotation, a reauthentication and a revocation made through one node hold on the other at
/// once — in validation, in its list and in the reasons its 401s give.
#[test]
fn renewals_and_revocations_hold_on_every_node() {
    let Some((_redis, a, b)) = cluster() else {
        return;
    };
    let admin_b = admin(&b);
    let user = unique();
    let first = a.login_as(&json!({"user_id": user, "name": "Nia", "ip_address": "10.8.1.1",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"}));
    let rotated = a.rotate(&first.token);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let token = rotated.json()["token"].as_str().unwrap().to_string();
    let old = b
        .get("/sessions/current", &first.token)
        .problem(401, "unauthorized");
    assert_eq!(old["reason"], "rotated");
    assert!(b.validates(&token));

    let renewed = b.send(
        "POST",
        &format!("/sessions/{}/reauthenticated", first.id),
        &[
            ("X-Service-Key", crate::helpers::SERVICE_KEY),
            ("Content-Type", "application/json"),
        ],
        br#"{"assurance_level": 2}"#,
    );
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let token = renewed.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        a.get("/sessions/current", &token).json()["assurance_level"],
        2
    );
    wait_until(
        Duration::from_secs(5),
        "B's list shows the new level",
        || {
            let listed = b
                .get(&format!("/sessions/{}", first.id), &admin_b.token)
                .json();
            listed["assurance_level"] == 2 && listed["device"]["os"] == "iOS 18"
        },
    );

    let revoked = a.send(
        "DELETE",
        &format!("/users/{user}/sessions"),
        &[("X-Service-Key", crate::helpers::SERVICE_KEY)],
        b"",
    );
    assert_eq!(revoked.json()["deleted"], json!([first.id]));
    assert_eq!(
        b.get("/sessions/current", &token)
            .problem(401, "unauthorized")["reason"],
        "revoked"
    );
}
