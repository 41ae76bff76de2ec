//! Bad input of every kind: a clear problem, the right status, and nothing changed.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, unique, TestApp, SERVICE_KEY};

fn post_raw(app: &TestApp, content_type: &str, body: &[u8]) -> crate::helpers::Response {
    app.send(
        "POST",
        "/sessions",
        &[
            ("X-Service-Key", SERVICE_KEY),
            ("Content-Type", content_type),
        ],
        body,
    )
}

#[test]
fn malformed_login_bodies_are_refused_and_create_nothing() {
    let app = spawn_app();
    let good = json!({"user_id": "u", "name": "N", "ip_address": "10.0.0.1"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[key] = value;
        body.to_string()
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body.to_string()
    };
    let cases: Vec<String> = vec![
        "{".into(),
        "".into(),
        "null".into(),
        "[]".into(),
        "\"text\"".into(),
        "{\"user_id\": \"u\", \"name\": \"N\", \"ip_address\": \"10.0.0.1\",}".into(),
        without("user_id"),
        without("name"),
        without("ip_address"),
        with("organization", json!("typo")),
        with("user_id", json!(42)),
        with("user_id", json!("")),
        with("user_id", json!("u".repeat(257))),
        with("name", json!(null)),
        with("name", json!("line\nbreak")),
        with("organisation", json!("")),
        with("ip_address", json!("999.0.0.1")),
        with("ip_address", json!("10.0.0")),
        with("ip_address", json!("fe80::1%eth0")),
        with("ip_address", json!("")),
        with("ip_address", json!(167772161)),
        with("server_name", json!("")),
        with("roles", json!("admin")),
        with("roles", json!([1])),
        with("roles", json!(vec!["r"; 17])),
        with("roles", json!(["r".repeat(65)])),
        with("timeout_seconds", json!(0)),
        with("timeout_seconds", json!(604_801)),
        with("timeout_seconds", json!(-5)),
        with("timeout_seconds", json!(1.5)),
        with("timeout_seconds", json!(1e300)),
        with("timeout_seconds", json!("60")),
        with("user_agent", json!("a".repeat(513))),
        with("user_agent", json!(7)),
    ];
    for body in &cases {
        let response = post_raw(&app, "application/json", body.as_bytes());
        response.problem(400, "invalid-request");
    }
    assert_eq!(app.indexes().rows, 0, "nothing was created");
}

#[test]
fn a_body_that_is_not_json_is_unsupported() {
    let app = spawn_app();
    let body = json!({"user_id": "u", "name": "N", "ip_address": "10.0.0.1"}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        post_raw(&app, content_type, body.as_bytes()).problem(415, "unsupported-media-type");
    }
    let response = app.send(
        "POST",
        "/sessions",
        &[("X-Service-Key", SERVICE_KEY)],
        body.as_bytes(),
    );
    response.problem(415, "unsupported-media-type");
    assert_eq!(app.indexes().rows, 0);
}

#[test]
fn bodies_over_the_limit_are_too_large() {
    let app = spawn_app_with(|s| s.max_body = 1024);
    let admin = app.admin();
    let big = json!({"user_id": "u", "name": "N", "ip_address": "10.0.0.1", "user_agent": "a".repeat(2000)});
    post_raw(&app, "application/json", big.to_string().as_bytes())
        .problem(413, "payload-too-large");
    let ids: Vec<String> = (0..100)
        .map(|_| "00000000-0000-4000-8000-000000000000".into())
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.delete_ids(&admin.token, &refs)
        .problem(413, "payload-too-large");
    // Much larger than the limit: refused before it is read, and still answered.
    let huge = vec![b' '; 4 * 1024 * 1024];
    post_raw(&app, "application/json", &huge).problem(413, "payload-too-large");
    assert_eq!(app.indexes().rows, 1);
}

#[test]
fn bad_delete_bodies_are_refused_and_delete_nothing() {
    let app = spawn_app();
    let admin = app.admin();
    let user = app.login(&unique(), "10.0.0.2");
    let header = format!("Bearer {}", admin.token);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("id-{i}")).collect();
    for body in [
        json!({"ids": []}).to_string(),
        json!({"ids": too_many}).to_string(),
        json!({"ids": user.id}).to_string(),
        json!({"ids": [user.id, 5]}).to_string(),
        json!({"ids": [user.id], "force": true}).to_string(),
        json!({}).to_string(),
        json!([user.id]).to_string(),
        "{\"ids\": [".to_string(),
    ] {
        let response = app.send(
            "DELETE",
            "/sessions",
            &[
                ("Authorization", &header),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        response.problem(400, "invalid-request");
    }
    let response = app.send("DELETE", "/sessions", &[("Authorization", &header)], b"");
    assert!(matches!(response.status, 400 | 415), "{}", response.body);
    assert!(app.validates(&user.token), "nothing was deleted");
}

#[test]
fn bad_query_values_are_refused() {
    let app = spawn_app();
    let admin = app.admin();
    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "limit=",
        "limit=1&limit=2",
        "sort=bogus",
        "sort=",
        "order=sideways",
        "organization=Default",
        "ip_address=not-an-ip",
        "cursor=%00",
    ] {
        app.get(&format!("/sessions?{query}"), &admin.token)
            .problem(400, "invalid-request");
    }
    let long = "q".repeat(300);
    app.get(&format!("/sessions?q={long}"), &admin.token)
        .problem(400, "invalid-request");
}

#[test]
fn unknown_routes_and_wrong_methods_are_problems() {
    let app = spawn_app();
    for path in ["/nope", "/sessions/", "/sessions/a/b", "/openapi.yaml"] {
        app.send("GET", path, &[], b"").problem(404, "not-found");
    }
    for (method, path, allow) in [
        ("PUT", "/sessions", "GET, POST, DELETE"),
        ("PATCH", "/sessions/current", "GET, DELETE"),
        ("POST", "/sessions/current", "GET, DELETE"),
        (
            "POST",
            "/sessions/8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a",
            "GET, DELETE",
        ),
        ("DELETE", "/openapi.json", "GET"),
    ] {
        let response = app.send(method, path, &[], b"");
        response.problem(405, "method-not-allowed");
        let mut got: Vec<&str> = response.header("allow").unwrap().split(", ").collect();
        let mut want: Vec<&str> = allow.split(", ").collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[test]
fn credentials_are_checked_before_the_body() {
    let app = spawn_app();
    let response = app.send(
        "POST",
        "/sessions",
        &[("Content-Type", "application/json")],
        b"{",
    );
    response.problem(401, "unauthorized");
    let response = app.send(
        "DELETE",
        "/sessions",
        &[("Content-Type", "application/json")],
        b"{",
    );
    response.problem(401, "unauthorized");
}
