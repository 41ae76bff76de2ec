//! Users manage their own sessions, resolve a denied login themselves, and the limits that make
//! room instead of locking people out: per user, and seats per organisation.

use serde_json::{json, Value};

use crate::helpers::{
    race, spawn_app, spawn_app_with, testing_redis, unique, wait_until, Login, TestApp,
};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_user_sees_its_own_sessions_most_recently_active_first() {
    let app = spawn_app();
    let user = unique();
    let laptop = app.device(&user, "59.100.242.122", "Laptop");
    let phone = app.device(&user, "203.0.113.7", "Phone");
    let tablet = app.device(&user, "203.0.113.8", "Tablet");
    let stranger = app.login(&unique(), "10.0.0.9");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(app.validates(&laptop.token), "the laptop is used again");
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // Asking counts as activity too: the tablet comes first, then the laptop.
    let mine = app.get("/sessions/mine", &tablet.token).json();
    assert_eq!(mine["total"], 3);
    assert_eq!(
        ids(&mine["items"]),
        [tablet.id.clone(), laptop.id.clone(), phone.id.clone()]
    );
    let own: Vec<bool> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["own"].as_bool().unwrap())
        .collect();
    assert_eq!(own, [true, false, false]);
    assert_eq!(mine["items"][1]["user_agent"], "Laptop");
    assert!(!mine.to_string().contains(&stranger.id));
    assert_eq!(
        app.send("GET", "/sessions/mine", &[], b"").status,
        401,
        "a session holder only"
    );
}

#[test]
fn a_user_reads_and_ends_its_other_devices_and_nothing_else() {
    let app = spawn_app();
    let user = unique();
    let laptop = app.device(&user, "59.100.242.122", "Laptop");
    let phone = app.device(&user, "203.0.113.7", "Phone");
    let stranger = app.login(&unique(), "10.0.0.9");
    let absent = "00000000-0000-4000-8000-000000000000";

    let read = app.get(&format!("/sessions/{}", phone.id), &laptop.token);
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["own"], false);
    // Another user's session reads exactly as one that never was: nothing is told.
    for other in [stranger.id.as_str(), absent, "not-an-id"] {
        app.get(&format!("/sessions/{other}"), &laptop.token)
            .problem(404, "not-found");
        app.delete(&format!("/sessions/{other}"), &laptop.token)
            .problem(404, "not-found");
    }
    app.delete(&format!("/sessions/{}", laptop.id), &laptop.token)
        .problem(409, "own-session");
    assert!(
        app.validates(&stranger.token),
        "another user's session is untouched"
    );

    assert_eq!(
        app.delete(&format!("/sessions/{}", phone.id), &laptop.token)
            .status,
        204
    );
    assert!(
        !app.validates(&phone.token),
        "the other device is logged out"
    );
    assert!(app.validates(&laptop.token));
    // A device already signed out is gone: 404, so a page can say so.
    app.get(&format!("/sessions/{}", phone.id), &laptop.token)
        .problem(404, "not-found");
    app.delete(&format!("/sessions/{}", phone.id), &laptop.token)
        .problem(404, "not-found");
}

#[test]
fn log_out_my_other_devices_keeps_this_one() {
    let app = spawn_app();
    let user = unique();
    let here = app.device(&user, "59.100.242.122", "Laptop");
    let others: Vec<Login> = (0..3)
        .map(|i| app.device(&user, &format!("203.0.113.{i}"), "Phone"))
        .collect();
    let stranger = app.login(&unique(), "10.0.0.9");
    let response = app.delete("/sessions/mine", &here.token);
    assert_eq!(response.status, 200);
    let mut deleted: Vec<String> = response.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    let mut expected: Vec<String> = others.iter().map(|l| l.id.clone()).collect();
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(others.iter().all(|l| !app.validates(&l.token)));
    assert!(app.validates(&here.token) && app.validates(&stranger.token));
    assert_eq!(app.get("/sessions/mine", &here.token).json()["total"], 1);
}

#[test]
fn ending_another_device_is_audited_with_the_user_as_actor() {
    let app = spawn_app();
    let admin = app.admin();
    let user = unique();
    let laptop = app.device(&user, "59.100.242.122", "Laptop");
    let phone = app.device(&user, "203.0.113.7", "Phone");
    let tablet = app.device(&user, "203.0.113.8", "Tablet");
    app.delete(&format!("/sessions/{}", phone.id), &laptop.token);
    app.delete("/sessions/mine", &laptop.token);

    let events: Vec<Value> = app.get("/audit", &admin.token).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["user_id"] == user.as_str())
        .cloned()
        .collect();
    let ended: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["action"], "session-ended");
            assert_eq!(e["actor"]["session_id"], laptop.id.as_str());
            (
                e["method"].as_str().unwrap(),
                e["session"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ended,
        [("bulk", tablet.id.as_str()), ("single", phone.id.as_str())]
    );
}

#[test]
fn a_denied_user_resolves_it_with_replace() {
    let app = spawn_app();
    let user = unique();
    let first = app.login(&user, "59.100.242.122");
    let retry = json!({"user_id": user, "name": "Teresa Pringle", "ip_address": "203.0.113.7"});
    let denied = app.create(&retry).problem(409, "login-denied");
    assert_eq!(denied["sessions"][0]["id"], first.id.as_str());

    let mut confirmed = retry.clone();
    confirmed["concurrent_sessions"] = json!("replace");
    let replaced = app.create(&confirmed);
    assert_eq!(replaced.status, 201, "{}", replaced.body);
    let body = replaced.json();
    assert_eq!(body["ended"], json!([first.id]));
    assert!(!app.validates(&first.token));
    assert!(app.validates(body["token"].as_str().unwrap()));

    // A first login ends nothing, and says so.
    let fresh = app.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"}));
    assert_eq!(fresh.json()["ended"], json!([]));
}

#[test]
fn an_unknown_policy_is_refused_and_changes_nothing() {
    let app = spawn_app();
    for policy in ["sometimes", "", "Replace", "deny_other_ip"] {
        let body = json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1",
            "concurrent_sessions": policy});
        let problem = app.create(&body).problem(400, "invalid-request");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("concurrent_sessions"),
            "{problem}"
        );
    }
    let not_text = json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1",
        "concurrent_sessions": 1});
    app.create(&not_text).problem(400, "invalid-request");
    assert_eq!(app.indexes().rows, 0);
}

#[test]
fn the_least_recently_active_session_makes_room_beyond_the_limit() {
    let app = spawn_app_with(|s| s.max_sessions_per_user = 2);
    let user = unique();
    let old = app.device(&user, "10.0.0.1", "A");
    let newer = app.device(&user, "10.0.0.2", "B");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(app.validates(&old.token), "the first is used again");
    let third = app.create(
        &json!({"user_id": user, "name": "N", "ip_address": "10.0.0.3",
        "concurrent_sessions": "allow"}),
    );
    assert_eq!(third.json()["ended"], json!([newer.id]));
    assert!(!app.validates(&newer.token) && app.validates(&old.token));
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("sessiond_sessions_ended_total{reason=\"evicted\"} 1"),
        "{metrics}"
    );
}

fn seat_app(seats: &str) -> TestApp {
    let seats = sessiond::config::Seats::parse(seats).unwrap();
    spawn_app_with(move |s| s.organisation_seats = Some(seats))
}

fn member(app: &TestApp, organisation: &str, user: &str, ip: &str) -> crate::helpers::Response {
    app.create(&json!({"user_id": user, "name": "N", "ip_address": ip,
        "organisation": organisation, "timeout_seconds": 4}))
}

#[test]
fn seats_count_users_and_free_the_instant_the_last_session_ends_or_expires() {
    let app = seat_app("Acme=2");
    let (a, b, c) = (unique(), unique(), unique());
    let a1 = member(&app, "Acme", &a, "10.0.0.1").json();
    assert_eq!(member(&app, "Acme", &b, "10.0.0.2").status, 201);
    let refused = member(&app, "Acme", &c, "10.0.0.3").problem(409, "seat-limit");
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("Acme") && detail.contains('2'), "{detail}");
    assert_eq!(
        member(&app, "Acme", &a, "10.0.0.1").status,
        201,
        "a user already on is never refused"
    );
    assert_eq!(
        member(&app, "Globex", &c, "10.0.0.3").status,
        201,
        "other organisations have no limit"
    );
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    assert!(metrics.contains("sessiond_organisation_seats_used{organisation=\"Acme\"} 2"));
    assert!(metrics.contains("sessiond_organisation_seats_limit{organisation=\"Acme\"} 2"));

    // a logs out everywhere: the seat is free at once.
    let a_token = a1["token"].as_str().unwrap();
    assert_eq!(app.delete("/sessions/mine", a_token).status, 200);
    assert_eq!(app.delete("/sessions/current", a_token).status, 204);
    assert_eq!(member(&app, "Acme", &c, "10.0.0.3").status, 201);
    // Everyone's sessions expire (4 s): every seat is free again, without a reaper.
    wait_until(
        std::time::Duration::from_secs(15),
        "the sessions expire",
        || member(&app, "Acme", &unique(), "10.0.0.4").status == 201,
    );
}

#[test]
fn of_simultaneous_logins_for_the_last_seat_exactly_one_wins() {
    let app = std::sync::Arc::new(seat_app("Acme=3"));
    for _ in 0..2 {
        assert_eq!(member(&app, "Acme", &unique(), "10.0.0.1").status, 201);
    }
    let racer = app.clone();
    race(
        12,
        |i| {
            json!({"user_id": unique(), "name": "N", "ip_address": format!("10.1.0.{i}"),
            "organisation": "Acme"})
        },
        move |_, body| racer.create(body).status,
    );
}

#[test]
fn replacing_never_leaves_the_user_with_two_sessions_or_none() {
    let app = std::sync::Arc::new(spawn_app());
    let admin = app.admin();
    let user = unique();
    app.login(&user, "10.0.0.1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (app, stop, user, admin) =
            (app.clone(), stop.clone(), user.clone(), admin.token.clone());
        std::thread::spawn(move || {
            let mut looks = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let page = app.get(&format!("/sessions?user_id={user}"), &admin).json();
                let total = page["total"].as_u64().unwrap();
                // The Redis store lists from a replica that applies the script's end and
                // insert one after the other: it may show none for an instant, never two.
                if testing_redis() {
                    assert!(total <= 1, "{page}");
                } else {
                    assert_eq!(total, 1, "{page}");
                }
                looks += 1;
            }
            looks
        })
    };
    for i in 0..40 {
        let body = json!({"user_id": user, "name": "N", "ip_address": format!("10.0.1.{i}"),
            "concurrent_sessions": "replace"});
        let created = app.create(&body).json();
        assert!(app.validates(created["token"].as_str().unwrap()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
}
