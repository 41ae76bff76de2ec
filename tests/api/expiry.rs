//! Idle timeouts, the absolute lifetime, and how an expired session disappears everywhere.

use std::thread::sleep;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, unique, wait_until};
use sessiond::domain::Millis;

#[test]
fn an_idle_session_expires_and_is_gone_everywhere_at_once() {
    let app = spawn_app();
    let admin = app.admin();
    let organisation = unique();
    let user = app.login_as(&json!({
        "user_id": unique(), "name": "Short", "organisation": organisation,
        "ip_address": "10.0.0.1", "timeout_seconds": 1
    }));
    // Watched through an administrator, since validating would itself keep it alive.
    wait_until(Duration::from_secs(5), "the session expires", || {
        app.get(&format!("/sessions/{}", user.id), &admin.token)
            .status
            == 404
    });
    assert!(!app.validates(&user.token));
    // Immediately, before any reaping.
    let list = app.get(
        &format!("/sessions?organisation={organisation}"),
        &admin.token,
    );
    assert_eq!(list.json()["total"], 0);
    app.get(&format!("/sessions/{}", user.id), &admin.token)
        .problem(404, "not-found");
    app.delete(&format!("/sessions/{}", user.id), &admin.token)
        .problem(404, "not-found");
    let bulk = app.delete_ids(&admin.token, &[&user.id]).json();
    assert_eq!(bulk["not_found"], json!([user.id]));
}

#[test]
fn activity_slides_the_idle_timeout() {
    let app = spawn_app();
    let user = app.login_as(&json!({
        "user_id": unique(), "name": "Busy", "ip_address": "10.0.0.1", "timeout_seconds": 2
    }));
    let first = app.get("/sessions/current", &user.token).json();
    // Four touches a second apart outlive the two-second timeout only if each one slides it.
    for _ in 0..4 {
        sleep(Duration::from_millis(1000));
        assert!(app.validates(&user.token), "the session was kept alive");
    }
    let last = app.get("/sessions/current", &user.token).json();
    assert!(last["expires_at"].as_str() > first["expires_at"].as_str());
    assert_eq!(last["idle_seconds"], 0);
    assert!(last["session_time_seconds"].as_u64().unwrap() >= 4);
}

#[test]
fn the_max_lifetime_ends_even_an_active_session() {
    let app = spawn_app_with(|s| s.max_lifetime = 2);
    let user = app.login(&unique(), "10.0.0.1");
    let session = app.get("/sessions/current", &user.token).json();
    let created =
        chrono::DateTime::parse_from_rfc3339(session["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 2, "min(idle, lifetime)");
    wait_until(Duration::from_secs(6), "the lifetime ends", || {
        !app.validates(&user.token)
    });
}

#[test]
fn reaping_frees_expired_sessions_and_their_index_entries() {
    let app = spawn_app();
    let keep = app.login(&unique(), "10.0.0.1");
    for _ in 0..5 {
        app.login_as(&json!({
            "user_id": unique(), "name": "Short", "ip_address": "10.0.0.2", "timeout_seconds": 1
        }));
    }
    assert_eq!(app.indexes().rows, 6);
    let later = Millis::now().plus_seconds(2);
    // In memory the reaper frees them at once; in Redis their keys expire by TTL, and the
    // reaper then sweeps the user index.
    let mut reaped = 0;
    wait_until(
        Duration::from_secs(5),
        "the expired sessions are gone",
        || {
            reaped += actix_web::rt::System::new()
                .block_on(app.store.reap(later))
                .unwrap();
            app.indexes().rows == 1
        },
    );
    assert_eq!(reaped, 5);
    let report = app.indexes();
    assert_eq!(
        (report.rows, report.by_id, report.by_user, report.orphans),
        (1, 1, 1, 0)
    );
    assert!(app.validates(&keep.token));
}
