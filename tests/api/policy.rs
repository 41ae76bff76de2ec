//! The concurrent-session policy.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{race_logins, spawn_app, spawn_app_with, unique, wait_until};
use sessiond::domain::ConcurrentSessions;

#[test]
fn a_second_ip_is_denied_until_an_administrator_ends_the_first_session() {
    let app = spawn_app();
    let admin = app.admin();
    let user = unique();
    let first = app.login(&user, "59.100.242.122");
    let same_ip = app.login(&user, "59.100.242.122");

    let denied = app.create(&json!({
        "user_id": user, "name": "Teresa Pringle", "ip_address": "203.0.113.9"
    }));
    let problem = denied.problem(409, "login-denied");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("59.100.242.122"));
    let mut reported: Vec<&str> = problem["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["ip_address"], "59.100.242.122");
            assert_eq!(s["server_name"], "LOCAL");
            s["id"].as_str().unwrap()
        })
        .collect();
    reported.sort();
    let mut expected = vec![first.id.as_str(), same_ip.id.as_str()];
    expected.sort();
    assert_eq!(reported, expected);
    assert!(!denied.body.contains(&first.token));

    let listed = app.list_all(&admin.token, &format!("user_id={user}"));
    assert_eq!(listed.len(), 2, "the denied login created nothing");

    let ended = app
        .delete_ids(&admin.token, &[&first.id, &same_ip.id])
        .json();
    assert_eq!(ended["deleted"].as_array().unwrap().len(), 2);
    app.login(&user, "203.0.113.9");
}

#[test]
fn an_expired_session_does_not_block_a_new_ip() {
    let app = spawn_app();
    let admin = app.admin();
    let user = unique();
    let old = app.login_as(&json!({
        "user_id": user, "name": "N", "ip_address": "10.0.0.1", "timeout_seconds": 1
    }));
    wait_until(Duration::from_secs(5), "the old session expires", || {
        app.get(&format!("/sessions/{}", old.id), &admin.token)
            .status
            == 404
    });
    app.login(&user, "10.0.0.2");
}

#[test]
fn other_users_and_the_same_address_written_differently_are_not_affected() {
    let app = spawn_app();
    let user = unique();
    app.login(&user, "2001:db8::1");
    app.login(&user, "2001:0db8:0:0::1");
    app.login(&unique(), "10.0.0.99");
}

#[test]
fn replace_ends_the_users_other_sessions() {
    let app = spawn_app_with(|s| s.concurrent_sessions = ConcurrentSessions::Replace);
    let user = unique();
    let first = app.login(&user, "10.0.0.1");
    let second = app.login(&user, "10.0.0.2");
    assert!(!app.validates(&first.token));
    assert!(app.validates(&second.token));
}

#[test]
fn allow_sets_no_limit() {
    let app = spawn_app_with(|s| s.concurrent_sessions = ConcurrentSessions::Allow);
    let user = unique();
    let first = app.login(&user, "10.0.0.1");
    let second = app.login(&user, "10.0.0.2");
    assert!(app.validates(&first.token));
    assert!(app.validates(&second.token));
}

#[test]
fn of_simultaneous_logins_from_different_ips_exactly_one_wins() {
    let app = Arc::new(spawn_app());
    for _round in 0..5 {
        let app = app.clone();
        race_logins(16, move |_, body| app.create(body).status);
    }
}

/// A login asks for another policy only as far as SESSIOND_LOGIN_OVERRIDES lets it: by default
/// `replace` (the answer to a `login-denied`), never `allow`, which would lift the server's
/// policy for good.
#[test]
fn a_login_may_ask_only_for_the_policies_the_server_allows() {
    let defaults = sessiond::config::Settings::defaults().login_overrides;
    let app = spawn_app_with(move |s| s.login_overrides = defaults);
    let user = unique();
    let login = |ip: &str, policy: &str| {
        app.create(
            &json!({"user_id": user, "name": "Otto Override", "ip_address": ip,
            "concurrent_sessions": policy}),
        )
    };
    let first = login("10.8.0.1", "replace");
    assert_eq!(first.status, 201);
    let refused = login("10.8.0.2", "allow").problem(400, "invalid-request");
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("SESSIOND_LOGIN_OVERRIDES") && detail.contains("replace"),
        "{detail}"
    );
    let token = first.json()["token"].as_str().unwrap().to_string();
    assert!(app.validates(&token), "a refused login changes nothing");
    assert_eq!(login("10.8.0.3", "replace").status, 201);
    assert!(!app.validates(&token), "replace still works");

    let none = spawn_app_with(|s| {
        s.login_overrides = sessiond::config::LoginOverrides::parse("none").unwrap()
    });
    none.create(
        &json!({"user_id": unique(), "name": "N", "ip_address": "10.8.0.4",
        "concurrent_sessions": "replace"}),
    )
    .problem(400, "invalid-request");
    for bad in ["sometimes", "replace,", ""] {
        assert!(
            sessiond::config::LoginOverrides::parse(bad).is_err(),
            "{bad:?}"
        );
    }
}
