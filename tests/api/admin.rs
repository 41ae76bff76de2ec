//! Administrators reading and ending sessions, within their scope.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, unique, Login, TestApp};

fn org_admin(app: &TestApp, organisation: &str) -> Login {
    app.login_as(&json!({
        "user_id": unique(), "name": "Olga Orgadmin", "organisation": organisation,
        "ip_address": "10.9.9.9", "roles": ["org_admin"]
    }))
}

fn member(app: &TestApp, organisation: &str) -> Login {
    app.login_as(&json!({
        "user_id": unique(), "name": "Mia Member", "organisation": organisation,
        "ip_address": "10.8.8.8"
    }))
}

#[test]
fn admin_operations_need_a_token_and_an_admin_role() {
    let app = spawn_app();
    let plain = app.login(&unique(), "10.0.0.1");
    let target = app.login(&unique(), "10.0.0.2");
    let paths = [
        ("GET", "/sessions".to_string()),
        ("GET", format!("/sessions/{}", target.id)),
        ("DELETE", format!("/sessions/{}", target.id)),
    ];
    for (method, path) in &paths {
        let anonymous = app.send(method, path, &[], b"");
        anonymous.problem(401, "unauthorized");
        assert!(anonymous.header("www-authenticate").is_some());
        let header = format!("Bearer {}", plain.token);
        // The list is for administrators (403); another user's session is, to a plain user,
        // as if it did not exist (404).
        let (status, code) = match path.as_str() {
            "/sessions" => (403, "forbidden"),
            _ => (404, "not-found"),
        };
        app.send(method, path, &[("Authorization", &header)], b"")
            .problem(status, code);
    }
    app.delete_ids(&plain.token, &[&target.id])
        .problem(403, "forbidden");
    assert!(app.validates(&target.token), "nothing was deleted");
}

#[test]
fn admin_reads_any_session_and_sees_which_is_its_own() {
    let app = spawn_app();
    let admin = app.admin();
    let other = member(&app, &unique());
    let response = app.get(&format!("/sessions/{}", other.id), &admin.token);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["id"], other.id.as_str());
    assert_eq!(response.json()["own"], false);
    let own = app.get(&format!("/sessions/{}", admin.id), &admin.token);
    assert_eq!(own.json()["own"], true);
    assert!(!response.body.contains(&other.token));
}

#[test]
fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app();
    let admin = app.admin();
    for id in [
        "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a",
        "not-an-id",
        "8C1F0C5E-7D3A-4B9E-9A41-2F6C1D0E5B7A",
        "%20",
    ] {
        app.get(&format!("/sessions/{id}"), &admin.token)
            .problem(404, "not-found");
        app.delete(&format!("/sessions/{id}"), &admin.token)
            .problem(404, "not-found");
    }
}

#[test]
fn admin_ends_a_session_but_not_its_own() {
    let app = spawn_app();
    let admin = app.admin();
    let user = app.login(&unique(), "10.0.0.7");
    app.delete(&format!("/sessions/{}", admin.id), &admin.token)
        .problem(409, "own-session");
    assert!(app.validates(&admin.token));
    let response = app.delete(&format!("/sessions/{}", user.id), &admin.token);
    assert_eq!(response.status, 204, "{}", response.body);
    assert!(!app.validates(&user.token));
    app.delete(&format!("/sessions/{}", user.id), &admin.token)
        .problem(404, "not-found");
    app.get(&format!("/sessions/{}", user.id), &admin.token)
        .problem(404, "not-found");
}

#[test]
fn org_admin_sees_and_ends_only_its_own_organisation() {
    let app = spawn_app();
    let (mine, theirs) = (unique(), unique());
    let olga = org_admin(&app, &mine);
    let colleague = member(&app, &mine);
    let stranger = member(&app, &theirs);

    let listed = app.list_all(&olga.token, "");
    let ids: HashSet<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        HashSet::from([olga.id.as_str(), colleague.id.as_str()])
    );
    let filtered = app.get(&format!("/sessions?organisation={theirs}"), &olga.token);
    assert_eq!(
        filtered.json()["total"],
        0,
        "filters cannot widen the scope"
    );

    app.get(&format!("/sessions/{}", stranger.id), &olga.token)
        .problem(404, "not-found");
    app.delete(&format!("/sessions/{}", stranger.id), &olga.token)
        .problem(404, "not-found");
    let bulk = app.delete_ids(&olga.token, &[&stranger.id, &colleague.id]);
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(
        bulk.json(),
        json!({"deleted": [colleague.id], "not_found": [stranger.id], "refused": []})
    );
    assert!(app.validates(&stranger.token));
    assert!(!app.validates(&colleague.token));
}

#[test]
fn bulk_delete_accounts_for_every_id_exactly_once() {
    let app = spawn_app();
    let admin = app.admin();
    let a = app.login(&unique(), "10.0.0.11");
    let b = app.login(&unique(), "10.0.0.12");
    let keep = app.login(&unique(), "10.0.0.13");
    let missing = "00000000-0000-4000-8000-000000000000";
    let response = app.delete_ids(
        &admin.token,
        &[
            &a.id, missing, &admin.id, &b.id, &a.id, "garbage", &admin.id,
        ],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["deleted"], json!([a.id, b.id]));
    assert_eq!(body["not_found"], json!([missing, "garbage"]));
    assert_eq!(
        body["refused"],
        json!([{"id": admin.id, "reason": "own-session"}])
    );
    assert!(!app.validates(&a.token));
    assert!(!app.validates(&b.token));
    assert!(app.validates(&keep.token));
    assert!(
        app.validates(&admin.token),
        "the caller's own session survives"
    );

    let again = app.delete_ids(&admin.token, &[&a.id]).json();
    assert_eq!(again["not_found"], json!([a.id]));
}

#[test]
fn bulk_delete_takes_ten_thousand_ids() {
    let app = spawn_app();
    let admin = app.admin();
    let user = app.login(&unique(), "10.0.0.11");
    let mut ids: Vec<String> = (0..9_999)
        .map(|i| format!("00000000-0000-4000-8000-{i:012x}"))
        .collect();
    ids.push(user.id.clone());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let body: Value = app.delete_ids(&admin.token, &refs).json();
    assert_eq!(body["deleted"], json!([user.id]));
    assert_eq!(body["not_found"].as_array().unwrap().len(), 9_999);
}
