//! The authorisation matrix: every endpoint × every kind of caller → the expected status, and
//! nothing changed where the caller was refused.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, unique, wait_until, TestApp, SERVICE_KEY};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Nobody,
    BadToken,
    ExpiredToken,
    PlainUser,
    OtherOrgAdmin,
    OrgAdmin,
    Admin,
    ServiceKey,
}

const CALLERS: [Caller; 8] = [
    Caller::Nobody,
    Caller::BadToken,
    Caller::ExpiredToken,
    Caller::PlainUser,
    Caller::OtherOrgAdmin,
    Caller::OrgAdmin,
    Caller::Admin,
    Caller::ServiceKey,
];

const ORG: &str = "Org-X";

/// The headers of a fresh caller of this kind (a new session each time, so that a logout in
/// one case cannot affect another).
fn headers(app: &TestApp, caller: Caller, expired: &str) -> Vec<(String, String)> {
    let bearer = |token: &str| vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let session = |org: &str, roles: serde_json::Value| {
        app.login_as(
            &json!({"user_id": unique(), "name": "Caller", "organisation": org,
            "ip_address": "10.0.0.1", "roles": roles}),
        )
        .token
    };
    match caller {
        Caller::Nobody => vec![],
        Caller::BadToken => bearer(&"x".repeat(43)),
        Caller::ExpiredToken => bearer(expired),
        Caller::PlainUser => bearer(&session(ORG, json!([]))),
        Caller::OtherOrgAdmin => bearer(&session("Org-Y", json!(["org_admin"]))),
        Caller::OrgAdmin => bearer(&session(ORG, json!(["org_admin"]))),
        Caller::Admin => bearer(&session("Org-Z", json!(["admin"]))),
        Caller::ServiceKey => vec![("X-Service-Key".to_string(), SERVICE_KEY.to_string())],
    }
}

/// What each endpoint must answer each caller, in the order of [`CALLERS`].
fn expected(endpoint: &str) -> [u16; 8] {
    match endpoint {
        "POST /sessions" => [401, 401, 401, 401, 401, 401, 401, 201],
        "GET /sessions/current" => [401, 401, 401, 200, 200, 200, 200, 401],
        "DELETE /sessions/current" => [401, 401, 401, 204, 204, 204, 204, 401],
        "GET /sessions" => [401, 401, 401, 403, 200, 200, 200, 401],
        "GET /sessions/{id}" => [401, 401, 401, 404, 404, 200, 200, 401],
        "DELETE /sessions/{id}" => [401, 401, 401, 404, 404, 204, 204, 401],
        "DELETE /sessions" => [401, 401, 401, 403, 200, 200, 200, 401],
        "GET /audit" => [401, 401, 401, 403, 200, 200, 200, 401],
        "GET /openapi.json" | "GET /healthz" | "GET /readyz" | "GET /metrics" => [200; 8],
        other => unreachable!("{other}"),
    }
}

#[test]
fn every_endpoint_answers_every_caller_as_the_contract_says() {
    let app = spawn_app();
    let expired = app.login_as(
        &json!({"user_id": unique(), "name": "Gone", "organisation": ORG,
        "ip_address": "10.0.0.2", "roles": ["admin"], "timeout_seconds": 1}),
    );
    let watcher = app.admin();
    wait_until(
        Duration::from_secs(5),
        "the expired caller's session is gone",
        || {
            app.get(&format!("/sessions/{}", expired.id), &watcher.token)
                .status
                == 404
        },
    );

    let endpoints = [
        "POST /sessions",
        "GET /sessions/current",
        "DELETE /sessions/current",
        "GET /sessions",
        "GET /sessions/{id}",
        "DELETE /sessions/{id}",
        "DELETE /sessions",
        "GET /audit",
        "GET /openapi.json",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    ];
    for endpoint in endpoints {
        for (caller, want) in CALLERS.iter().zip(expected(endpoint)) {
            // A fresh target in Org-X for every case.
            let target = app.login_as(&json!({"user_id": unique(), "name": "Target",
                "organisation": ORG, "ip_address": "10.0.0.3"}));
            let (method, path) = endpoint.split_once(' ').unwrap();
            let path = path.replace("{id}", &target.id);
            let mut headers = headers(&app, *caller, &expired.token);
            let body = match endpoint {
                "POST /sessions" => {
                    json!({"user_id": unique(), "name": "New", "ip_address": "10.0.0.4"})
                        .to_string()
                }
                "DELETE /sessions" => json!({"ids": [target.id]}).to_string(),
                _ => String::new(),
            };
            if !body.is_empty() {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            let header_refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let before = app.indexes().rows;
            let response = app.send(method, &path, &header_refs, body.as_bytes());
            assert_eq!(
                response.status, want,
                "{endpoint} as {caller:?}: {}",
                response.body
            );

            let target_ended = matches!(
                (endpoint, caller),
                (
                    "DELETE /sessions/{id}" | "DELETE /sessions",
                    Caller::OrgAdmin | Caller::Admin
                )
            );
            assert_eq!(
                app.validates(&target.token),
                !target_ended,
                "{endpoint} as {caller:?}"
            );
            if response.status >= 400 {
                assert_eq!(
                    app.indexes().rows,
                    before,
                    "a refused {endpoint} as {caller:?} changed nothing"
                );
            }
            if endpoint == "DELETE /sessions" && *caller == Caller::OtherOrgAdmin {
                assert_eq!(
                    response.json()["not_found"],
                    json!([target.id]),
                    "existence is not leaked"
                );
            }
        }
    }
}
