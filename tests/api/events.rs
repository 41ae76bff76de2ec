//! `GET /events`: every change as an event, scoped like the list, resumable.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, unique, TestApp};
use crate::sse::EventStream;

fn org_admin(app: &TestApp, organisation: &str) -> String {
    app.login_as(&json!({
        "user_id": unique(), "name": "Olga Org", "organisation": organisation,
        "ip_address": "10.9.9.9", "roles": ["org_admin"]
    }))
    .token
}

fn kind_and_reason(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap().to_string(),
        event["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn every_change_is_an_event_in_the_order_it_happened() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "", None);
    let user = unique();

    let first = app.login(&user, "10.1.0.1");
    assert_eq!(
        app.create(&json!({"user_id": user, "name": user, "ip_address": "10.1.0.2"}))
            .status,
        409
    );
    let second = app.login_as(&json!({"user_id": user, "name": user, "ip_address": "10.1.0.2", "concurrent_sessions": "replace"}));
    let third = app.device(&user, "10.1.0.2", "phone");
    assert_eq!(
        app.delete(&format!("/sessions/{}", third.id), &second.token)
            .status,
        204
    );
    let fourth = app.device(&user, "10.1.0.2", "tablet");
    assert_eq!(
        app.delete(&format!("/sessions/{}", fourth.id), &admin.token)
            .status,
        204
    );
    assert_eq!(app.delete("/sessions/current", &second.token).status, 204);

    let events = stream.events(9);
    let seen: Vec<(String, String)> = events.iter().map(|(_, e)| kind_and_reason(e)).collect();
    let expected = [
        ("session-created", ""),
        ("login-denied", "other-ip"),
        ("session-ended", "replaced"),
        ("session-created", ""),
        ("session-created", ""),
        ("session-ended", "self"),
        ("session-created", ""),
        ("session-ended", "admin"),
        ("session-ended", "logout"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect();
    assert_eq!(seen[..9], expected[..], "{events:#?}");

    // The session itself on creation; which one and why on its end.
    let created = &events[0].1;
    assert_eq!(created["data"]["id"], first.id.as_str());
    assert_eq!(created["data"]["user_id"], user.as_str());
    assert_eq!(created["data"]["ip_address"], "10.1.0.1");
    let replaced = &events[2].1["data"];
    assert_eq!(replaced["id"], first.id.as_str());
    for field in ["user_id", "organisation", "server_name"] {
        assert!(replaced[field].is_string(), "{field} in {replaced}");
    }
    let denied = &events[1].1["data"];
    assert_eq!(denied["user_id"], user.as_str());
    assert_eq!(denied["ip_address"], "10.1.0.2");
    assert_eq!(denied["organisation"], "Default");

    // Ids are the `id:` lines, unique and increasing; times are RFC 3339; no secret anywhere.
    let mut last = (0u64, 0u64);
    for (line_id, event) in &events {
        assert_eq!(event["id"], line_id.as_str());
        let (ms, seq) = line_id.split_once('-').unwrap();
        let id = (ms.parse().unwrap(), seq.parse().unwrap());
        assert!(id > last, "{line_id} after {last:?}");
        last = id;
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        let text = event.to_string();
        for secret in [&first.token, &second.token, &third.token, &admin.token] {
            assert!(!text.contains(secret.as_str()), "a token in {text}");
        }
        assert!(!text.contains("digest"), "{text}");
    }
}

#[test]
fn an_org_admin_sees_only_its_organisations_events() {
    let app = spawn_app();
    let acme = format!("Acme-{}", unique());
    let token = org_admin(&app, &acme);
    let stream = EventStream::open(&app, &token, "", None);
    app.login(&unique(), "10.2.0.1");
    app.login_as(&json!({"user_id": unique(), "name": "Root", "organisation": acme, "ip_address": "10.2.0.3", "roles": ["admin"]}));
    let ours = app.login_as(
        &json!({"user_id": unique(), "name": "A", "organisation": acme, "ip_address": "10.2.0.2"}),
    );
    let (_, event) = stream.event();
    assert_eq!(event["data"]["id"], ours.id.as_str(), "{event}");
    assert!(stream.next_event(Duration::from_millis(300)).is_none());
}

#[test]
fn a_reader_that_reconnects_with_last_event_id_gets_exactly_what_it_missed() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "", None);
    app.login(&unique(), "10.3.0.1");
    let (seen, _) = stream.event();
    drop(stream);

    let missed: Vec<String> = (0..3)
        .map(|_| app.login(&unique(), "10.3.0.2").id)
        .collect();
    let resumed = EventStream::open(&app, &admin.token, "", Some(&seen));
    let got: Vec<String> = resumed
        .events(3)
        .iter()
        .map(|(_, e)| e["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, missed);
    assert!(resumed.next_event(Duration::from_millis(300)).is_none());

    // And then it goes on live.
    let live = app.login(&unique(), "10.3.0.3");
    assert_eq!(resumed.event().1["data"]["id"], live.id.as_str());

    // An EventSource polyfill resumes with ?lastEventId= (and a cache-buster) instead.
    let polyfilled = EventStream::open(
        &app,
        &admin.token,
        &format!("?lastEventId={seen}&_=1795820400123"),
        None,
    );
    let got: Vec<String> = polyfilled
        .events(4)
        .iter()
        .map(|(_, e)| e["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got[..3], missed[..]);
    assert_eq!(got[3], live.id);
    for path in ["/sessions?_=1", "/audit?_=1"] {
        assert_eq!(app.get(path, &admin.token).status, 200, "{path}");
    }
    app.get("/events?lastEventId=not-an-id", &admin.token)
        .problem(400, "invalid-request");
}

#[test]
fn a_reader_may_ask_for_some_types_only() {
    let app = spawn_app();
    let admin = app.admin();
    // The type parameter repeats (as generated clients send an array); `types=a,b` is the same.
    let stream = EventStream::open(
        &app,
        &admin.token,
        "?type=login-denied&type=session-ended",
        None,
    );
    let listed = EventStream::open(
        &app,
        &admin.token,
        "?types=login-denied,session-ended",
        None,
    );
    let user = unique();
    let session = app.login(&user, "10.4.0.1");
    assert_eq!(
        app.create(&json!({"user_id": user, "name": user, "ip_address": "10.4.0.2"}))
            .status,
        409
    );
    assert_eq!(app.delete("/sessions/current", &session.token).status, 204);
    let kinds: Vec<String> = stream
        .events(2)
        .iter()
        .map(|(_, e)| kind_and_reason(e).0)
        .collect();
    assert_eq!(kinds, ["login-denied", "session-ended"]);
    let kinds: Vec<String> = listed
        .events(2)
        .iter()
        .map(|(_, e)| kind_and_reason(e).0)
        .collect();
    assert_eq!(kinds, ["login-denied", "session-ended"]);

    let only_created = EventStream::open(&app, &admin.token, "?type=session-created", None);
    app.login(&unique(), "10.4.0.3");
    assert_eq!(only_created.event().1["type"], "session-created");
}

#[test]
fn a_login_after_expiry_ends_the_expired_session_with_reason_expired() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?types=session-ended", None);
    let user = unique();
    let old = app.login_as(
        &json!({"user_id": user, "name": user, "ip_address": "10.5.0.1", "timeout_seconds": 1}),
    );
    // Expiry is a matter of time passing.
    std::thread::sleep(Duration::from_millis(1100));
    app.login(&user, "10.5.0.2");
    let (_, event) = stream.event();
    assert_eq!(event["data"]["id"], old.id.as_str());
    assert_eq!(event["data"]["reason"], "expired");
}

#[test]
fn bad_requests_for_the_stream_are_clear_problems() {
    let app = spawn_app();
    let admin = app.admin();
    let user = app.login(&unique(), "10.6.0.1");
    let bearer = format!("Bearer {}", admin.token);
    for garbage in ["zz", "12-", "-1-2", "1-2-3", "99999999999999999999999-0"] {
        let answer = app.send(
            "GET",
            "/events",
            &[("Authorization", &bearer), ("Last-Event-ID", garbage)],
            b"",
        );
        let problem = answer.problem(400, "invalid-request");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Last-Event-ID"),
            "{problem}"
        );
    }
    let answer = app.get(
        "/events?types=session-created,session-exploded",
        &admin.token,
    );
    let problem = answer.problem(400, "invalid-request");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("session-exploded"),
        "{problem}"
    );
    app.get("/events?colour=red", &admin.token)
        .problem(400, "invalid-request");
    app.get("/events", &user.token).problem(403, "forbidden");
    app.get("/events", "nonsense").problem(401, "unauthorized");
}

#[test]
fn a_quiet_stream_still_gets_a_comment_at_least_every_15_seconds() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "", None);
    // The first comments come at once; the next one only once the interval has passed.
    assert_eq!(
        stream.next_comment(Duration::from_secs(2)).as_deref(),
        Some("connected")
    );
    assert!(stream.next_comment(Duration::from_secs(2)).is_some());
    let started = std::time::Instant::now();
    assert!(
        stream.next_comment(Duration::from_secs(15)).is_some(),
        "a comment within 15 s"
    );
    assert!(
        started.elapsed() > Duration::from_secs(5),
        "not a flood of comments"
    );
}

#[test]
fn a_stream_ends_with_its_readers_session() {
    let app = spawn_app();
    let (reader, other) = (app.admin(), app.admin());
    let stream = EventStream::open(&app, &reader.token, "", None);
    assert_eq!(
        stream.next_comment(Duration::from_secs(2)).as_deref(),
        Some("connected")
    );
    let streams = || {
        let metrics = app.send("GET", "/metrics", &[], b"").body;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("sessiond_event_streams "))
            .map(str::to_string)
    };
    assert_eq!(streams().as_deref(), Some("1"), "the reader is counted");
    // Ended by another administrator: the stream says so and closes.
    assert_eq!(
        app.delete(&format!("/sessions/{}", reader.id), &other.token)
            .status,
        204
    );
    let comments = stream
        .ends_within(Duration::from_secs(5))
        .expect("the stream closes");
    assert!(
        comments.contains(&"stream-ended".to_string()),
        "{comments:?}"
    );

    // Logging out ends it too.
    let stream = EventStream::open(&app, &other.token, "", None);
    assert_eq!(app.delete("/sessions/current", &other.token).status, 204);
    assert!(stream.ends_within(Duration::from_secs(5)).is_some());
    crate::helpers::wait_until(Duration::from_secs(5), "no reader is counted", || {
        streams().as_deref() == Some("0")
    });
}

#[test]
fn event_streams_are_capped_per_node_and_per_session() {
    let app = spawn_app_with(|s| s.max_event_streams = 5);
    let admin = app.admin();
    let open = |token: &str| {
        app.send(
            "GET",
            "/events",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    };
    let held: Vec<EventStream> = (0..4)
        .map(|_| EventStream::open(&app, &admin.token, "", None))
        .collect();
    let refused = open(&admin.token);
    refused.problem(429, "too-many-requests");
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert!(
        refused.body.contains("this session already holds 4"),
        "{}",
        refused.body
    );
    let other = app.admin();
    let _fifth = EventStream::open(&app, &other.token, "", None);
    let full = open(&other.token);
    full.problem(429, "too-many-requests");
    assert!(
        full.body.contains("SESSIOND_MAX_EVENT_STREAMS"),
        "{}",
        full.body
    );
    drop(held);
}

/// An id from before a restart (here: from another process's numbering) cannot be resumed
/// exactly: the stream says so first, as a message a client library delivers.
#[test]
fn resuming_from_before_a_restart_is_told_as_a_stream_reset() {
    let earlier = spawn_app();
    let admin = earlier.admin();
    let stream = EventStream::open(&earlier, &admin.token, "", None);
    earlier.login(&unique(), "10.5.0.1");
    let (seen, _) = stream.event();
    drop(stream);

    let restarted = spawn_app();
    let admin = restarted.admin();
    let resumed = EventStream::open(&restarted, &admin.token, "", Some(&seen));
    let (_, first) = resumed.event();
    assert_eq!(first["type"], "stream-reset", "{first}");
    assert_eq!(first["data"]["reason"], "gap", "{first}");
    // Then what the node keeps (on Redis, the shared log's events), and on live.
    let live = restarted.login(&unique(), "10.5.0.2");
    while resumed.event().1["data"]["id"] != live.id.as_str() {}
}

/// The list and the summary say where they stand in the events: following from there gets the
/// changes made since, in order, and none of those already in the answer.
#[test]
fn a_list_says_where_it_stands_so_following_from_it_misses_nothing() {
    let app = spawn_app();
    let admin = app.admin();
    let organisation = unique();
    let member = |ip: &str| {
        app.login_as(&json!({
            "user_id": unique(), "name": "Lena List", "organisation": organisation,
            "ip_address": ip,
        }))
    };
    let summary = app.get("/sessions/summary", &admin.token).json();
    let counted = summary["last_event_id"].as_str().unwrap().to_string();
    let first = member("10.6.0.1");
    let second = member("10.6.0.2");
    let list = app
        .get(
            &format!("/sessions?organisation={organisation}"),
            &admin.token,
        )
        .json();
    assert_eq!(list["total"], 2);
    let listed = list["last_event_id"].as_str().unwrap().to_string();
    assert!(
        listed
            .split_once('-')
            .is_some_and(|(ms, seq)| { ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok() }),
        "{listed}"
    );

    // Changes after the list, before anyone follows.
    let third = member("10.6.0.3");
    assert_eq!(
        app.delete(&format!("/sessions/{}", first.id), &admin.token)
            .status,
        204
    );

    let stream = EventStream::open(&app, &admin.token, "", Some(&listed));
    let got: Vec<(String, String)> = stream
        .events(2)
        .iter()
        .map(|(_, e)| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("session-created".to_string(), third.id.clone()),
            ("session-ended".to_string(), first.id.clone()),
        ]
    );
    assert!(stream.next_event(Duration::from_millis(300)).is_none());

    // The summary counted before both logins: following from it starts with them.
    let stream = EventStream::open(&app, &admin.token, "", Some(&counted));
    let created: Vec<String> = stream
        .events(3)
        .iter()
        .map(|(_, e)| e["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, [first.id, second.id, third.id]);
}
