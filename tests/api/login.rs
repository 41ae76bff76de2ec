//! Logging in, validating and logging out.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, unique, SERVICE_KEY};
use sessiond::config::ServiceKeys;

#[test]
fn login_returns_the_session_and_a_token_once() {
    let app = spawn_app();
    let user = unique();
    let response = app.create(&json!({
        "user_id": user, "name": "Teresa Pringle", "ip_address": "59.100.242.122",
        "user_agent": "Mozilla/5.0", "roles": ["reader"]
    }));
    assert_eq!(response.status, 201, "{}", response.body);
    let body = response.json();
    let session = &body["session"];
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/sessions/{id}").as_str())
    );
    assert_eq!(session["user_id"], user.as_str());
    assert_eq!(session["name"], "Teresa Pringle");
    assert_eq!(session["organisation"], "Default");
    assert_eq!(session["ip_address"], "59.100.242.122");
    assert_eq!(session["server_name"], "LOCAL");
    assert_eq!(session["roles"], json!(["reader"]));
    assert_eq!(session["user_agent"], "Mozilla/5.0");
    assert_eq!(session["timeout_seconds"], 1800);
    assert_eq!(session["session_time_seconds"], 0);
    assert_eq!(session["idle_seconds"], 0);
    assert_eq!(session["own"], false);
    for field in ["created_at", "last_active_at", "expires_at"] {
        let text = session[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z'),
            "{field}: {text}"
        );
    }
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), sessiond::domain::token::TOKEN_LEN);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    // The token carries its session's id as a selector, beside a 256-bit secret.
    let presented = sessiond::domain::PresentedToken::parse(token).unwrap();
    assert_eq!(presented.id.to_string(), id);
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[22..])
        .unwrap();
    assert_eq!(secret.len(), 32);
    // Knowing the id grants nothing: the same selector with another secret is refused.
    let forged = sessiond::domain::Token::generate(presented.id).expose();
    assert_eq!(app.get("/sessions/current", &forged).status, 401);
    assert!(app.validates(token));
}

#[test]
fn an_optional_field_sent_as_null_takes_its_default() {
    let app = spawn_app();
    let response = app.create(&json!({
        "user_id": unique(), "name": "N", "ip_address": "::1", "organisation": null,
        "server_name": null, "roles": null, "timeout_seconds": null, "user_agent": null
    }));
    assert_eq!(response.status, 201, "{}", response.body);
    let session = &response.json()["session"];
    assert_eq!(session["organisation"], "Default");
    assert_eq!(session["server_name"], "LOCAL");
    assert_eq!(session["ip_address"], "::1");
    assert_eq!(session["user_agent"], json!(null));
}

#[test]
fn the_server_name_default_comes_from_settings() {
    let app = spawn_app_with(|s| {
        s.server_name = "NODE-7".into();
        s.idle_timeout = 600;
    });
    let response = app.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.1.1.1"}));
    let session = &response.json()["session"];
    assert_eq!(session["server_name"], "NODE-7");
    assert_eq!(session["timeout_seconds"], 600);
}

#[test]
fn validation_returns_the_callers_own_session() {
    let app = spawn_app();
    let login = app.login(&unique(), "10.0.0.5");
    let response = app.get("/sessions/current", &login.token);
    assert_eq!(response.status, 200, "{}", response.body);
    let session = response.json();
    assert_eq!(session["id"], login.id.as_str());
    assert_eq!(session["own"], true);
    assert!(
        !response.body.contains(&login.token),
        "no token but in the creating response"
    );
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app();
    let login = app.login(&unique(), "10.0.0.5");
    let header = format!("bearer {}", login.token);
    let response = app.send(
        "GET",
        "/sessions/current",
        &[("Authorization", &header)],
        b"",
    );
    assert_eq!(response.status, 200);
}

#[test]
fn logout_ends_the_session() {
    let app = spawn_app();
    let login = app.login(&unique(), "10.0.0.5");
    let response = app.delete("/sessions/current", &login.token);
    assert_eq!(response.status, 204, "{}", response.body);
    assert!(response.body.is_empty());
    let after = app.get("/sessions/current", &login.token);
    after.problem(401, "unauthorized");
    assert_eq!(
        after.header("www-authenticate"),
        Some("Bearer realm=\"sessiond\", error=\"invalid_token\"")
    );
    app.delete("/sessions/current", &login.token)
        .problem(401, "unauthorized");
}

#[test]
fn unknown_and_malformed_tokens_are_refused() {
    let app = spawn_app();
    let login = app.login(&unique(), "10.0.0.5");
    let mut wrong = login.token.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    for token in [wrong.as_str(), "", "x", &"a".repeat(5000), &login.id] {
        let response = app.get("/sessions/current", token);
        response.problem(401, "unauthorized");
        assert!(response
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")));
    }
    for header in [
        "Basic dXNlcjpwYXNz".to_string(),
        login.token.clone(),
        format!("Token {}", login.token),
    ] {
        let response = app.send(
            "GET",
            "/sessions/current",
            &[("Authorization", &header)],
            b"",
        );
        response.problem(401, "unauthorized");
    }
    let response = app.send("GET", "/sessions/current", &[], b"");
    response.problem(401, "unauthorized");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"sessiond\"")
    );
    assert!(app.validates(&login.token), "refusals touched nothing");
}

#[test]
fn the_service_key_is_required_and_checked() {
    let app = spawn_app();
    let body = json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"}).to_string();
    for key in [None, Some("wrong"), Some(""), Some(&SERVICE_KEY[1..])] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(key) = key {
            headers.push(("X-Service-Key", key));
        }
        let response = app.send("POST", "/sessions", &headers, body.as_bytes());
        response.problem(401, "unauthorized");
    }
    assert_eq!(app.indexes().rows, 0, "nothing was created");
}

#[test]
fn any_configured_service_key_is_accepted_so_keys_can_rotate() {
    let (old, new) = (format!("old-{SERVICE_KEY}"), format!("new-{SERVICE_KEY}"));
    let app = spawn_app_with(|s| {
        s.service_keys = Some(ServiceKeys::parse(&format!("{old},{new}")).unwrap())
    });
    for key in [&old, &new] {
        let response = app.send(
            "POST",
            "/sessions",
            &[("X-Service-Key", key), ("Content-Type", "application/json")],
            json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(response.status, 201, "{key}: {}", response.body);
    }
}

#[test]
fn a_bearer_token_cannot_create_sessions_and_a_service_key_cannot_validate() {
    let app = spawn_app();
    let login = app.login(&unique(), "10.0.0.5");
    let response = app.send(
        "POST",
        "/sessions",
        &[
            ("Authorization", &format!("Bearer {}", login.token)),
            ("Content-Type", "application/json"),
        ],
        json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"})
            .to_string()
            .as_bytes(),
    );
    response.problem(401, "unauthorized");
    let response = app.send(
        "GET",
        "/sessions/current",
        &[("X-Service-Key", SERVICE_KEY)],
        b"",
    );
    response.problem(401, "unauthorized");
}
