//! A live session's token rotated, its user authenticated again, a step-up asked for, its
//! client address watched: OWASP ASVS 7.2.4 and 7.5, RFC 9470, NIST SP 800-63B-4 §5.3.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, unique, wait_until, TestApp, SERVICE_KEY};
use crate::sse::EventStream;

fn login(app: &TestApp, body: Value) -> (String, Value) {
    let response = app.create(&body);
    assert_eq!(response.status, 201, "{}", response.body);
    let json = response.json();
    (
        json["token"].as_str().unwrap().to_string(),
        json["session"].clone(),
    )
}

fn someone(app: &TestApp) -> (String, Value) {
    login(
        app,
        json!({"user_id": unique(), "name": "Rory Renew", "ip_address": "59.100.242.122",
            "timeout_seconds": 7200}),
    )
}

fn post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> crate::helpers::Response {
    app.send("POST", path, headers, body.as_bytes())
}

#[test]
fn a_rotated_token_replaces_the_old_one_at_once() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?type=session-rotated", None);
    let (old, session) = someone(&app);
    let rotated = app.rotate(&old);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let rotated = rotated.json();
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        rotated["session"]["id"], session["id"],
        "the same session goes on"
    );
    assert_eq!(rotated["session"]["created_at"], session["created_at"]);
    assert!(!app.validates(&old), "the old token stops at once");
    assert!(app.validates(new));
    app.rotate(&old).problem(401, "unauthorized");
    let (_, event) = stream.event();
    assert_eq!(
        event["data"],
        json!({"id": session["id"], "user_id": session["user_id"]})
    );
}

#[test]
fn a_reauthentication_renews_the_authentication_its_level_and_the_token() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?type=session-reauthenticated", None);
    let (old, session) = someone(&app);
    let path = format!(
        "/sessions/{}/reauthenticated",
        session["id"].as_str().unwrap()
    );
    let key = ("X-Service-Key", SERVICE_KEY);
    let json = ("Content-Type", "application/json");
    let answer = post(&app, &path, &[key, json], r#"{"assurance_level": 2}"#);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    let renewed = &answer["session"];
    assert_eq!(renewed["assurance_level"], 2);
    assert_eq!(
        renewed["timeout_seconds"], 3600,
        "level 2's idle limit applies from now"
    );
    assert!(renewed["authenticated_at"].as_str() >= session["authenticated_at"].as_str());
    let token = answer["token"].as_str().unwrap();
    assert!(!app.validates(&old) && app.validates(token));
    let (_, event) = stream.event();
    assert_eq!(event["data"]["assurance_level"], 2, "{event}");
    assert_eq!(event["data"]["id"], session["id"]);

    // No body keeps the level.
    let again = post(&app, &path, &[key], "");
    assert_eq!(
        again.json()["session"]["assurance_level"],
        2,
        "{}",
        again.body
    );

    // What is refused changes nothing.
    let token = again.json()["token"].as_str().unwrap().to_string();
    post(&app, &path, &[key, json], r#"{"assurance_level": 4}"#).problem(400, "invalid-request");
    post(&app, &path, &[key, json], r#"{"level": 2}"#).problem(400, "invalid-request");
    post(&app, &path, &[key, ("Content-Type", "text/plain")], "2")
        .problem(415, "unsupported-media-type");
    post(&app, &path, &[json], "{}").problem(401, "unauthorized");
    let bearer = format!("Bearer {token}");
    post(&app, &path, &[("Authorization", &bearer)], "").problem(401, "unauthorized");
    post(
        &app,
        "/sessions/00000000-0000-4000-8000-000000000000/reauthenticated",
        &[key],
        "",
    )
    .problem(404, "not-found");
    post(&app, "/sessions/not-an-id/reauthenticated", &[key], "").problem(404, "not-found");
    assert!(app.validates(&token));
}

#[test]
fn a_step_up_is_asked_for_when_the_authentication_is_too_old_or_too_weak() {
    let app = spawn_app();
    let (token, session) = someone(&app);
    let weak = app.get("/sessions/current?min_assurance_level=2", &token);
    let problem = weak.problem(401, "step-up-required");
    assert!(
        problem["detail"].as_str().unwrap().contains("level 2"),
        "{problem}"
    );
    let challenge = weak.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(app.validates(&token), "the session itself stays valid");
    assert_eq!(
        app.get("/sessions/current?max_age=3600", &token).status,
        200
    );
    wait_until(Duration::from_secs(5), "a second has passed", || {
        app.get("/sessions/current?max_age=0", &token).status == 401
    });
    let old = app.get("/sessions/current?max_age=0", &token);
    assert!(old
        .header("www-authenticate")
        .unwrap()
        .contains("max_age=0"));

    // Authenticated again, at level 2: both pass.
    let path = format!(
        "/sessions/{}/reauthenticated",
        session["id"].as_str().unwrap()
    );
    let answer = post(
        &app,
        &path,
        &[
            ("X-Service-Key", SERVICE_KEY),
            ("Content-Type", "application/json"),
        ],
        r#"{"assurance_level": 2}"#,
    );
    let token = answer.json()["token"].as_str().unwrap().to_string();
    let fresh = app.get("/sessions/current?max_age=60&min_assurance_level=2", &token);
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    for bad in [
        "max_age=-1",
        "max_age=x",
        "min_assurance_level=0",
        "min_assurance_level=4",
        "step=1",
    ] {
        app.get(&format!("/sessions/current?{bad}"), &token)
            .problem(400, "invalid-request");
    }
}

#[test]
fn a_reported_client_address_is_recorded_announced_or_ends_the_session() {
    use sessiond::config::IpChange;
    for policy in [IpChange::Allow, IpChange::Report, IpChange::End] {
        let app = spawn_app_with(move |s| s.ip_change = policy);
        let admin = app.admin();
        let stream = EventStream::open(
            &app,
            &admin.token,
            "?type=session-ip-changed&type=session-ended",
            None,
        );
        let (token, session) = someone(&app);
        let same = app.send(
            "GET",
            "/sessions/current",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Client-IP", "59.100.242.122"),
            ],
            b"",
        );
        assert_eq!(same.status, 200);
        let moved = app.send(
            "GET",
            "/sessions/current",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("X-Client-IP", "203.0.113.7"),
            ],
            b"",
        );
        match policy {
            IpChange::End => {
                moved.problem(401, "unauthorized");
                assert!(!app.validates(&token));
                let (_, ended) = stream.event();
                assert_eq!(ended["type"], "session-ended");
                assert_eq!(ended["data"]["reason"], "ip-changed");
            }
            _ => {
                assert_eq!(moved.status, 200, "{}", moved.body);
                assert_eq!(moved.json()["last_ip_address"], "203.0.113.7");
                assert_eq!(
                    moved.json()["ip_address"],
                    session["ip_address"],
                    "the login's stays"
                );
                let listed = app
                    .get(
                        &format!("/sessions/{}", session["id"].as_str().unwrap()),
                        &admin.token,
                    )
                    .json();
                assert_eq!(listed["last_ip_address"], "203.0.113.7");
                if policy == IpChange::Report {
                    let (_, event) = stream.event();
                    assert_eq!(event["type"], "session-ip-changed");
                    assert_eq!(event["data"]["from"], "59.100.242.122");
                    assert_eq!(event["data"]["to"], "203.0.113.7");
                } else {
                    assert!(stream.next_event(Duration::from_millis(300)).is_none());
                }
            }
        }
        if policy != IpChange::End {
            app.send(
                "GET",
                "/sessions/current",
                &[
                    ("Authorization", &format!("Bearer {token}")),
                    ("X-Client-IP", "not-an-address"),
                ],
                b"",
            )
            .problem(400, "invalid-request");
        }
    }
}

/// A `401` says why a token stopped working — to the holder of the real secret only.
#[test]
fn a_stopped_token_is_told_why_and_a_guess_is_told_nothing() {
    let app = spawn_app_with(|s| s.ip_change = sessiond::config::IpChange::End);
    let admin = app.admin();
    let reason = |token: &str| {
        let problem = app
            .get("/sessions/current", token)
            .problem(401, "unauthorized");
        problem.get("reason").cloned().unwrap_or(Value::Null)
    };

    let (token, _) = someone(&app);
    assert_eq!(app.delete("/sessions/current", &token).status, 204);
    assert_eq!(reason(&token), "logout");

    let (token, session) = someone(&app);
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/sessions/{id}"), &admin.token).status,
        204
    );
    assert_eq!(reason(&token), "admin");
    // The same session id with another secret: no reason.
    let guess = {
        let other =
            sessiond::domain::Token::generate(sessiond::domain::SessionId::parse(id).unwrap());
        other.expose()
    };
    assert_eq!(reason(&guess), Value::Null);

    let (token, session) = someone(&app);
    let user = session["user_id"].as_str().unwrap();
    app.send(
        "DELETE",
        &format!("/users/{user}/sessions"),
        &[("X-Service-Key", SERVICE_KEY)],
        b"",
    );
    assert_eq!(reason(&token), "revoked");

    let (token, _) = someone(&app);
    let rotated = app.rotate(&token);
    assert_eq!(reason(&token), "rotated");
    // The new token, ended by a replacing login: its own reason.
    let new = rotated.json()["token"].as_str().unwrap().to_string();
    login(
        &app,
        json!({"user_id": user_of(&rotated), "name": "R", "ip_address": "10.16.0.1",
        "concurrent_sessions": "replace"}),
    );
    assert_eq!(reason(&new), "replaced");

    let (token, _) = someone(&app);
    app.send(
        "GET",
        "/sessions/current",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("X-Client-IP", "203.0.113.77"),
        ],
        b"",
    );
    assert_eq!(reason(&token), "ip-changed");

    let short = login(
        &app,
        json!({"user_id": unique(), "name": "S", "ip_address": "10.16.0.2", "timeout_seconds": 1}),
    );
    // Watched without touching it (a validation would keep it alive).
    let path = format!("/sessions/{}", short.1["id"].as_str().unwrap());
    wait_until(Duration::from_secs(5), "the session times out", || {
        app.get(&path, &admin.token).status == 404
    });
    assert_eq!(reason(&short.0), "expired");
    assert_eq!(reason("not-a-token"), Value::Null);
}

fn user_of(renewed: &crate::helpers::Response) -> String {
    renewed.json()["session"]["user_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_reauthentication_body_over_the_limit_is_a_413() {
    let app = spawn_app_with(|s| s.max_body = 1_000);
    let (token, session) = someone(&app);
    let path = format!(
        "/sessions/{}/reauthenticated",
        session["id"].as_str().unwrap()
    );
    let body = format!("{{\"assurance_level\": 2{}}}", " ".repeat(5_000));
    post(
        &app,
        &path,
        &[
            ("X-Service-Key", SERVICE_KEY),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .problem(413, "payload-too-large");
    assert!(app.validates(&token), "nothing changed");
}
