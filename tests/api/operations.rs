//! What operators rely on: health, metrics, the audit trail, CORS, headers and a clean log.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, unique, Login, TestApp, SERVICE_KEY};
use crate::process::Process;
use sessiond::config::{HeaderNames, Origins};

#[test]
fn health_and_readiness_answer_without_credentials() {
    let app = spawn_app();
    let health = app.send("GET", "/healthz", &[], b"");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let ready = app.send("GET", "/readyz", &[], b"");
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({"status": "ready"}))
    );
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_count_sessions_by_what_happened_to_them() {
    let app = spawn_app();
    let admin = app.admin();
    let org = unique();
    let login = |ip: &str| -> Login {
        app.login_as(
            &json!({"user_id": unique(), "name": "N", "organisation": org,
            "ip_address": ip, "server_name": "APP-9"}),
        )
    };
    let (a, b, c) = (login("10.0.0.1"), login("10.0.0.2"), login("10.0.0.3"));
    let user = unique();
    app.login(&user, "10.1.1.1");
    app.create(&json!({"user_id": user, "name": "N", "ip_address": "10.1.1.2"}))
        .problem(409, "login-denied");
    assert_eq!(app.delete("/sessions/current", &a.token).status, 204);
    assert_eq!(
        app.delete(&format!("/sessions/{}", b.id), &admin.token)
            .status,
        204
    );
    assert_eq!(app.delete_ids(&admin.token, &[&c.id]).status, 200);

    let response = app.send("GET", "/metrics", &[], b"");
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.body;
    assert_eq!(metric(&text, "sessiond_sessions_created_total"), 5.0);
    assert_eq!(metric(&text, "sessiond_logins_denied_total"), 1.0);
    assert_eq!(
        metric(&text, "sessiond_sessions_ended_total{reason=\"logout\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "sessiond_sessions_ended_total{reason=\"admin\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "sessiond_sessions_ended_total{reason=\"replaced\"}"),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            "sessiond_sessions_active{organisation=\"Default\",server_name=\"LOCAL\"}"
        ),
        2.0
    );
    assert!(
        !text.contains(&format!("organisation=\"{org}\"")),
        "ended sessions are not active"
    );
    assert_eq!(
        metric(&text, "sessiond_http_requests_total{method=\"DELETE\",route=\"/sessions/{id}\",status=\"204\"}"),
        1.0,
        "routes are labelled by pattern, never by raw path"
    );
    assert!(text.contains("sessiond_http_request_duration_seconds_bucket{method=\"POST\",route=\"/sessions\",status=\"201\""));
    assert!(!text.contains(&b.id));
}

fn org_admin(app: &TestApp, org: &str) -> Login {
    app.login_as(
        &json!({"user_id": unique(), "name": "Olga", "organisation": org,
        "ip_address": "10.9.9.9", "roles": ["org_admin"]}),
    )
}

#[test]
fn the_audit_trail_records_who_ended_which_session_and_denied_logins() {
    let app = spawn_app();
    let admin = app.admin();
    let (org_a, org_b) = (unique(), unique());
    let one = app.login_as(
        &json!({"user_id": unique(), "name": "One", "organisation": org_a,
        "ip_address": "10.0.0.1", "server_name": "APP-1"}),
    );
    let two = app.login_as(
        &json!({"user_id": unique(), "name": "Two", "organisation": org_b,
        "ip_address": "10.0.0.2"}),
    );
    let denied_user = unique();
    app.login_as(&json!({"user_id": denied_user, "name": "D", "organisation": org_a, "ip_address": "10.0.0.3"}));
    app.create(&json!({"user_id": denied_user, "name": "D", "organisation": org_a, "ip_address": "10.0.0.4"}))
        .problem(409, "login-denied");
    app.delete(&format!("/sessions/{}", one.id), &admin.token);
    app.delete_ids(&admin.token, &[&two.id]);

    let page = app.get("/audit", &admin.token);
    assert_eq!(page.status, 200, "{}", page.body);
    let items = page.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    let (bulk, single, denied) = (&items[0], &items[1], &items[2]);
    assert_eq!(bulk["action"], "session-ended");
    assert_eq!(bulk["method"], "bulk");
    assert_eq!(bulk["session"]["id"], two.id.as_str());
    assert_eq!(single["method"], "single");
    assert_eq!(single["actor"]["session_id"], admin.id.as_str());
    assert_eq!(single["actor"]["organisation"], "Default");
    assert_eq!(
        single["session"],
        json!({"id": one.id, "user_id": single["session"]["user_id"], "organisation": org_a,
            "ip_address": "10.0.0.1", "server_name": "APP-1"})
    );
    assert!(single["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(denied["action"], "login-denied");
    assert_eq!(denied["session"]["ip_address"], "10.0.0.4");
    assert_eq!(denied["existing_ip_addresses"], json!(["10.0.0.3"]));

    let olga = org_admin(&app, &org_a);
    let hers: Vec<Value> = app.get("/audit", &olga.token).json()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        hers.len(),
        2,
        "an org_admin sees its own organisation's events"
    );
    assert!(hers
        .iter()
        .all(|e| e["session"]["organisation"] == org_a.as_str()));

    let first = app.get("/audit?limit=2", &admin.token).json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/audit?limit=2&cursor={cursor}"), &admin.token)
        .json();
    assert_eq!(rest["items"][0]["action"], "login-denied");
    assert_eq!(rest["next_cursor"], json!(null));
    for bad in ["limit=0", "cursor=zzz", "since=1"] {
        app.get(&format!("/audit?{bad}"), &admin.token)
            .problem(400, "invalid-request");
    }
    let plain = app.login(&unique(), "10.5.5.5");
    app.get("/audit", &plain.token).problem(403, "forbidden");
    app.send("GET", "/audit", &[], b"")
        .problem(401, "unauthorized");
}

#[test]
fn the_audit_history_is_bounded() {
    let app = spawn_app_with(|s| s.audit_capacity = 3);
    let admin = app.admin();
    for _ in 0..5 {
        let user = app.login(&unique(), "10.0.0.1");
        app.delete(&format!("/sessions/{}", user.id), &admin.token);
    }
    let items = app.get("/audit", &admin.token).json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(items, 3);
}

#[test]
fn cors_allows_only_the_configured_origins() {
    let app = spawn_app_with(|s| {
        s.cors_origins = Some(Origins(vec!["https://app.example".into()]));
        s.cors_headers = Some(HeaderNames(vec!["x-tenant".into()]));
    });
    let preflight = |origin: &str| {
        app.send(
            "OPTIONS",
            "/sessions",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "DELETE"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
            b"",
        )
    };
    let allowed = preflight("https://app.example");
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = allowed.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("DELETE"));
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    preflight("https://evil.example").problem(400, "invalid-request");
    // A frontend resuming the event stream sends Last-Event-ID.
    let resume = app.send(
        "OPTIONS",
        "/events",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization, last-event-id",
            ),
        ],
        b"",
    );
    assert_eq!(resume.status, 200, "{}", resume.body);
    // Browser tracing (OpenTelemetry, Sentry) and cache-control headers pass the preflight,
    // and the preflight's answer is kept by no cache and sniffed by no browser.
    let traced = app.send(
        "OPTIONS",
        "/sessions/current",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization, traceparent, tracestate, baggage, sentry-trace, x-request-id, cache-control, x-requested-with, x-tenant",
            ),
        ],
        b"",
    );
    assert_eq!(traced.status, 200, "{}", traced.body);
    let allowed_headers = traced
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "traceparent",
        "baggage",
        "sentry-trace",
        "x-request-id",
        "cache-control",
    ] {
        assert!(allowed_headers.contains(name), "{name}: {allowed_headers}");
    }
    assert_eq!(traced.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(traced.header("cache-control"), Some("no-store"));
    // A header neither sessiond nor the operator allows is refused at the preflight.
    let odd = app.send(
        "OPTIONS",
        "/sessions/current",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-not-allowed"),
        ],
        b"",
    );
    assert_eq!(odd.status, 400, "{}", odd.body);

    let login = app.login(&unique(), "10.0.0.1");
    let simple = app.send(
        "GET",
        "/sessions/current",
        &[
            ("Origin", "https://app.example"),
            ("Authorization", &format!("Bearer {}", login.token)),
        ],
        b"",
    );
    assert_eq!(simple.status, 200);
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example")
    );

    let closed = spawn_app();
    let response = closed.send("GET", "/healthz", &[("Origin", "https://app.example")], b"");
    assert_eq!(
        response.header("access-control-allow-origin"),
        None,
        "no CORS unless configured"
    );
}

#[test]
fn every_response_carries_nosniff_and_no_server_version() {
    let app = spawn_app();
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/nope"),
        ("POST", "/sessions"),
        ("GET", "/openapi.json"),
    ] {
        let response = app.send(method, path, &[], b"");
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
        assert_eq!(response.header("server"), None);
    }
}

#[test]
fn the_log_has_an_access_line_per_request_and_never_a_secret() {
    let server = Process::start(&[]).unwrap();
    let login = server.login_as(
        &json!({"user_id": "u1", "name": "N", "ip_address": "10.0.0.1", "roles": ["admin"]}),
    );
    let other = server.login("u2", "10.0.0.2");
    server.get("/sessions/current", &login.token);
    server.get(&format!("/sessions/{}", other.token), &login.token);
    server.get("/sessions?q=x", &login.token);
    server.delete_ids(&login.token, &[&other.id, &other.token]);
    server.get("/sessions/current", &format!("{}x", login.token));
    server.send(
        "GET",
        "/sessions/current",
        &[("Authorization", "Basic dXNlcjpzZWNyZXQ=")],
        b"",
    );
    let (status, log) = server.terminate();
    assert!(status.success());
    for secret in [
        login.token.as_str(),
        other.token.as_str(),
        SERVICE_KEY,
        "dXNlcjpzZWNyZXQ=",
        "Bearer",
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
    assert!(log.contains("GET /sessions/current 200"), "{log}");
    assert!(log.contains(&format!("session={}", login.id)), "{log}");
    assert!(log.contains("GET /sessions/{id} 404"), "{log}");
    assert!(log.contains("audit"), "the bulk delete is audited: {log}");
}

#[test]
fn the_demos_denied_login_is_audited_and_counted_like_a_real_one() {
    let app = crate::helpers::spawn_app_with(|s| s.demo = true);
    let admin = app.admin();
    let audit = app.get("/audit", &admin.token).json();
    let denied: Vec<&serde_json::Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login-denied")
        .collect();
    assert_eq!(denied.len(), 1, "{audit}");
    assert_eq!(denied[0]["session"]["user_id"], "mwebb");
    assert_eq!(
        denied[0]["existing_ip_addresses"],
        serde_json::json!(["203.0.113.45"])
    );
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("sessiond_logins_denied_total 1"),
        "{metrics}"
    );
}

#[test]
fn the_summary_counts_sessions_users_and_seats_within_the_callers_scope() {
    let seats = sessiond::config::Seats::parse("Acme=10").unwrap();
    let app = crate::helpers::spawn_app_with(move |s| s.organisation_seats = Some(seats));
    let acme = |user: &str, server: &str, ip: &str| {
        app.login_as(
            &serde_json::json!({"user_id": user, "name": "N", "ip_address": ip,
            "organisation": "Acme", "server_name": server, "concurrent_sessions": "allow"}),
        )
    };
    acme("ann", "APP-01", "10.0.0.1");
    acme("ann", "APP-02", "10.0.0.2");
    acme("bob", "APP-01", "10.0.0.3");
    let org_admin = app.login_as(&serde_json::json!({"user_id": "olga", "name": "Olga",
        "ip_address": "10.0.0.4", "organisation": "Globex", "roles": ["org_admin"]}));
    let admin = app.admin();

    let all = app.get("/sessions/summary", &admin.token).json();
    assert_eq!(all["total"], 5, "{all}");
    assert_eq!(all["users"], 4, "{all}");
    assert_eq!(
        all["by_organisation"][0],
        serde_json::json!({"organisation": "Acme", "sessions": 3, "users": 2, "seats": 10})
    );
    let globex = all["by_organisation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organisation"] == "Globex")
        .unwrap();
    assert_eq!(globex["seats"], serde_json::Value::Null);
    assert_eq!(
        all["by_server"][0],
        serde_json::json!({"server_name": "APP-01", "sessions": 2})
    );

    let mine = app.get("/sessions/summary", &org_admin.token).json();
    assert_eq!(
        mine["total"], 1,
        "an org_admin counts its own organisation: {mine}"
    );
    assert_eq!(mine["by_organisation"].as_array().unwrap().len(), 1);
    let plain = app.login(&unique(), "10.0.0.9");
    app.get("/sessions/summary", &plain.token)
        .problem(403, "forbidden");

    // The largest only, the rest summed: Acme (3) is listed; Globex and Default (the
    // admin's) are summed. (The counts are those of the same cached census as above.)
    assert_eq!(
        all["other"],
        serde_json::json!({"by_organisation": {"organisations": 0, "sessions": 0},
            "by_server": {"servers": 0, "sessions": 0}})
    );
    let top = app
        .get("/sessions/summary?limit=1&_=1", &admin.token)
        .json();
    assert_eq!(top["total"], 5, "{top}");
    assert_eq!(top["by_organisation"].as_array().unwrap().len(), 1, "{top}");
    assert_eq!(top["by_organisation"][0]["organisation"], "Acme");
    assert_eq!(
        top["other"]["by_organisation"],
        serde_json::json!({"organisations": 2, "sessions": 2})
    );
    assert_eq!(top["by_server"].as_array().unwrap().len(), 1, "{top}");
    assert_eq!(top["by_server"][0], all["by_server"][0]);
    let servers = all["by_server"].as_array().unwrap();
    assert_eq!(
        top["other"]["by_server"],
        serde_json::json!({"servers": servers.len() - 1,
            "sessions": 5 - servers[0]["sessions"].as_u64().unwrap()})
    );
    // An administrator's deletion is counted at once (the console refreshes the summary after
    // it), not after the few seconds the counts are otherwise kept.
    let acme = app.list_all(&admin.token, "organisation=Acme");
    let one = acme[0]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/sessions/{one}"), &admin.token).status,
        204
    );
    let after = app.get("/sessions/summary", &admin.token).json();
    assert_eq!(after["by_organisation"][0]["sessions"], 2, "{after}");
    let two = acme[1]["id"].as_str().unwrap();
    app.delete_ids(&admin.token, &[two]);
    let after = app.get("/sessions/summary", &admin.token).json();
    assert_eq!(after["total"], 4, "{after}");
    for bad in ["limit=0", "limit=1001", "limit=x", "colour=red"] {
        app.get(&format!("/sessions/summary?{bad}"), &admin.token)
            .problem(400, "invalid-request");
    }
}

#[test]
fn a_user_on_in_two_organisations_is_one_user_in_the_summary() {
    let app = spawn_app();
    let admin = app.admin();
    let user = unique();
    for (organisation, ip) in [("Acme", "10.0.0.1"), ("Globex", "10.0.0.1")] {
        app.login_as(
            &serde_json::json!({"user_id": user, "name": "Ann", "ip_address": ip,
            "organisation": organisation}),
        );
    }
    let summary = app.get("/sessions/summary", &admin.token).json();
    assert_eq!(summary["total"], 3, "{summary}");
    assert_eq!(summary["users"], 2, "the admin and Ann: {summary}");
    let by_organisation: u64 = summary["by_organisation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["users"].as_u64().unwrap())
        .sum();
    assert_eq!(
        by_organisation, 3,
        "each organisation counts Ann: {summary}"
    );
}
