//! What the security review found, each one tried as an attacker or a careful operator would.

use serde_json::json;

use crate::helpers::{spawn_app, unique, TestApp};

fn random_method(i: usize) -> String {
    // A token of 2,000 letters, different each time: valid on the wire, known to no one.
    (0..2000)
        .map(|k| char::from(b'A' + ((i * 31 + k * 7) % 26) as u8))
        .collect()
}

#[test]
fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app();
    let before = app.send("GET", "/metrics", &[], b"").body.len();
    for i in 0..300 {
        // Raw, since HTTP client libraries refuse to send such methods at all.
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(app.address).unwrap();
        let request = format!(
            "{} /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            random_method(i)
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    assert!(
        metrics.len() < before + 20_000,
        "/metrics grew from {before} to {} bytes",
        metrics.len()
    );
    assert!(!metrics.contains("AAAAAAAA") && metrics.contains("method=\"OTHER\""));
}

#[test]
fn organisations_from_logins_do_not_grow_the_metrics_without_bound() {
    let app = spawn_app();
    for i in 0..150 {
        app.login_as(
            &json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1",
            "organisation": format!("Org {i}")}),
        );
    }
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("sessiond_sessions_active{"))
        .count();
    assert_eq!(
        series,
        sessiond::metrics::MAX_CENSUS_SERIES + 1,
        "{metrics}"
    );
    assert!(metrics.contains("organisation=\"(other)\""));
}

#[test]
fn responses_with_tokens_or_personal_data_are_never_cached() {
    let app = spawn_app();
    let admin = app.admin();
    let created = app.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"}));
    let id = created.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {}", admin.token);
    for (method, path) in [
        ("GET", "/sessions/current".to_string()),
        ("GET", "/sessions".to_string()),
        ("GET", format!("/sessions/{id}")),
        ("GET", "/audit".to_string()),
        ("GET", "/sessions/nope".to_string()),
    ] {
        let response = app.send(method, &path, &[("Authorization", &bearer)], b"");
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{method} {path}"
        );
    }
    assert_eq!(created.header("cache-control"), Some("no-store"));
}

fn org_admin_and_a_global_admin(app: &TestApp) -> (String, String) {
    let org = format!("Org-{}", unique());
    let org_admin = app.login_as(&json!({"user_id": unique(), "name": "Olga Org",
        "ip_address": "10.0.0.1", "organisation": org, "roles": ["org_admin"]}));
    let global = app.login_as(&json!({"user_id": unique(), "name": "Ada Admin",
        "ip_address": "10.0.0.2", "organisation": org, "roles": ["admin"]}));
    (org_admin.token, global.id)
}

#[test]
fn an_org_admin_cannot_see_or_end_a_global_admins_session_in_its_organisation() {
    let app = spawn_app();
    let (org_admin, admin_id) = org_admin_and_a_global_admin(&app);
    let listed: Vec<String> = app
        .list_all(&org_admin, "")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!listed.contains(&admin_id), "listed: {listed:?}");
    app.get(&format!("/sessions/{admin_id}"), &org_admin)
        .problem(404, "not-found");
    app.delete(&format!("/sessions/{admin_id}"), &org_admin)
        .problem(404, "not-found");
    let bulk = app.delete_ids(&org_admin, &[&admin_id]).json();
    assert_eq!(bulk["not_found"], json!([admin_id]));
    // The global admin's session is untouched.
    let everyone = app.admin();
    assert_eq!(
        app.get(&format!("/sessions/{admin_id}"), &everyone.token)
            .status,
        200
    );
}

#[test]
fn an_org_admin_summary_does_not_count_admin_sessions_or_their_users() {
    let app = spawn_app();
    let (org_admin, admin_id) = org_admin_and_a_global_admin(&app);
    let everyone = app.admin();
    let org = app
        .get(&format!("/sessions/{admin_id}"), &everyone.token)
        .json()["organisation"]
        .clone();
    let counts = |token: &str| {
        let summary = app.get("/sessions/summary", token).json();
        let row = summary["by_organisation"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["organisation"] == org)
            .cloned()
            .unwrap_or_else(|| panic!("{org} in {summary}"));
        (row["sessions"].clone(), row["users"].clone())
    };
    assert_eq!(counts(&everyone.token), (json!(2), json!(2)));
    assert_eq!(
        counts(&org_admin),
        (json!(1), json!(1)),
        "the org_admin's list has only its own session there"
    );
    let summary = app.get("/sessions/summary", &org_admin).json();
    assert_eq!(
        (summary["total"].clone(), summary["users"].clone()),
        (json!(1), json!(1))
    );
}

#[test]
fn an_org_admin_does_not_see_audit_events_of_admin_sessions() {
    let app = spawn_app();
    let (_, admin_id) = org_admin_and_a_global_admin(&app);
    let everyone = app.admin();
    assert_eq!(
        app.delete(&format!("/sessions/{admin_id}"), &everyone.token)
            .status,
        204
    );
    let events = app.get("/audit", &everyone.token).json();
    let org = events["items"][0]["session"]["organisation"]
        .as_str()
        .unwrap()
        .to_string();
    let org_admin = app.login_as(&json!({"user_id": unique(), "name": "Olga Org",
        "ip_address": "10.0.0.3", "organisation": org, "roles": ["org_admin"]}));
    let seen = app.get("/audit", &org_admin.token).json();
    assert!(
        seen["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["session"]["id"] != admin_id.as_str()),
        "{seen}"
    );
}

#[test]
fn names_that_reorder_or_hide_text_are_refused() {
    let app = spawn_app();
    for (field, value) in [
        ("name", "Ada \u{202E}nimdA"),
        ("user_id", "ada\u{200B}"),
        ("organisation", "\u{2066}Acme"),
        ("server_name", "APP\u{FEFF}"),
        ("user_agent", "Mozilla\u{200F}"),
        // Line separators: a forged line for tools that split audit.jsonl on Unicode breaks.
        ("name", "Ada\u{2028}{\"action\":\"forged\"}"),
        ("user_agent", "Mozilla\u{2029}"),
    ] {
        let mut body = json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"});
        body[field] = json!(value);
        let problem = app.create(&body).problem(400, "invalid-request");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    let roles = json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1",
        "roles": ["admin\u{202E}"]});
    app.create(&roles).problem(400, "invalid-request");
    assert_eq!(app.indexes().rows, 0, "nothing was created");
    // Joiners that real names need stay allowed.
    let persian = json!({"user_id": unique(), "name": "می\u{200C}خواهم", "ip_address": "10.0.0.1"});
    assert_eq!(app.create(&persian).status, 201);
}
