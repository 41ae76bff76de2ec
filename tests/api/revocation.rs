//! `DELETE /users/{user_id}/sessions`: every session of a user ends at once, as an account is
//! disabled or its password changed — by an app server, or an administrator within its scope.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, unique, Login, TestApp, SERVICE_KEY};
use crate::sse::EventStream;

fn devices(app: &TestApp, user: &str, organisations: &[&str]) -> Vec<Login> {
    organisations
        .iter()
        .enumerate()
        .map(|(n, organisation)| {
            app.login_as(
                &json!({"user_id": user, "name": "Rita Revoked", "organisation": organisation,
                "ip_address": format!("10.12.0.{n}"), "concurrent_sessions": "allow"}),
            )
        })
        .collect()
}

fn revoke(app: &TestApp, path: &str, credential: (&str, &str)) -> crate::helpers::Response {
    app.send("DELETE", path, &[credential], b"")
}

fn deleted(response: &crate::helpers::Response) -> Vec<String> {
    let mut ids: Vec<String> = response.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn ids(logins: &[&Login]) -> Vec<String> {
    let mut ids: Vec<String> = logins.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    ids
}

#[test]
fn an_app_server_ends_every_session_of_a_user_but_the_one_it_keeps() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?type=session-ended", None);
    let user = unique();
    let other = app.login(&unique(), "10.12.1.1");
    let sessions = devices(&app, &user, &["Acme", "Globex", "Acme"]);

    // The password was changed on the first device: the others end.
    let answer = revoke(
        &app,
        &format!("/users/{user}/sessions?except={}", sessions[0].id),
        ("X-Service-Key", SERVICE_KEY),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(deleted(&answer), ids(&[&sessions[1], &sessions[2]]));
    assert!(app.validates(&sessions[0].token));
    assert!(!app.validates(&sessions[1].token) && !app.validates(&sessions[2].token));
    assert!(app.validates(&other.token), "another user's session stays");
    for (_, event) in stream.events(2) {
        assert_eq!(event["data"]["reason"], "revoked", "{event}");
    }

    // Then the account is disabled: the last one ends; again, nothing is left to end.
    let answer = revoke(
        &app,
        &format!("/users/{user}/sessions"),
        ("X-Service-Key", SERVICE_KEY),
    );
    assert_eq!(deleted(&answer), ids(&[&sessions[0]]));
    let again = revoke(
        &app,
        &format!("/users/{user}/sessions"),
        ("X-Service-Key", SERVICE_KEY),
    );
    assert_eq!(again.status, 200);
    assert_eq!(deleted(&again), Vec::<String>::new());

    // The audit trail says how, and that no administrator's session did it.
    let audit = app.get("/audit", &admin.token).json();
    let revoked: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "revoke")
        .collect();
    assert_eq!(revoked.len(), 3, "{audit}");
    assert!(revoked.iter().all(|e| e["actor"].is_null()), "{audit}");
}

#[test]
fn an_org_admin_ends_only_what_it_administers() {
    let app = spawn_app();
    let user = unique();
    let sessions = devices(&app, &user, &["Acme", "Globex"]);
    let olga = app.login_as(
        &json!({"user_id": unique(), "name": "Olga", "organisation": "Acme",
        "ip_address": "10.12.2.1", "roles": ["org_admin"]}),
    );
    let bearer = format!("Bearer {}", olga.token);
    let answer = revoke(
        &app,
        &format!("/users/{user}/sessions"),
        ("Authorization", &bearer),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(deleted(&answer), ids(&[&sessions[0]]));
    assert!(
        app.validates(&sessions[1].token),
        "Globex's session is not Acme's to end"
    );

    let admin = app.admin();
    let bearer = format!("Bearer {}", admin.token);
    let answer = revoke(
        &app,
        &format!("/users/{user}/sessions"),
        ("Authorization", &bearer),
    );
    assert_eq!(deleted(&answer), ids(&[&sessions[1]]));
    let audit = app.get("/audit", &admin.token).json();
    assert_eq!(audit["items"][0]["actor"]["session_id"], admin.id.as_str());
}

#[test]
fn anyone_else_and_bad_input_are_refused_and_change_nothing() {
    let app = spawn_app();
    let user = unique();
    let sessions = devices(&app, &user, &["Acme"]);
    let path = format!("/users/{user}/sessions");
    let plain = format!("Bearer {}", sessions[0].token);
    revoke(&app, &path, ("Authorization", &plain)).problem(403, "forbidden");
    app.send("DELETE", &path, &[], b"")
        .problem(401, "unauthorized");
    revoke(
        &app,
        &path,
        ("X-Service-Key", "not-the-key-0123456789abcdefghijkl"),
    )
    .problem(401, "unauthorized");
    for bad in [
        format!("{path}?except=not-an-id"),
        format!("{path}?unknown=1"),
        "/users/a%0Ab/sessions".to_string(),
        "/users/a%E2%80%A8b/sessions".to_string(),
    ] {
        revoke(&app, &bad, ("X-Service-Key", SERVICE_KEY)).problem(400, "invalid-request");
    }
    assert!(app.validates(&sessions[0].token));
    // Nothing was there to end: no stream saw anything either.
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?type=session-ended", None);
    assert!(stream.next_event(Duration::from_millis(200)).is_none());
}
