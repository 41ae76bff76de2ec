//! What a session says of its authentication and device: `authenticated_at`,
//! `assurance_level` (with the NIST SP 800-63B-4 limits of levels 2 and 3), `device` read from
//! the user agent, and `last_ip_address`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, unique, wait_until};
use crate::sse::EventStream;

const CHROME_ON_A_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

#[test]
fn a_session_shows_its_device_authentication_and_address() {
    let app = spawn_app();
    let admin = app.admin();
    let stream = EventStream::open(&app, &admin.token, "?type=session-created", None);
    let created = app.create(
        &json!({"user_id": unique(), "name": "Dev Ice", "ip_address": "59.100.242.122",
        "user_agent": CHROME_ON_A_MAC, "assurance_level": 2, "timeout_seconds": 7200}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let session = created.json()["session"].clone();
    assert_eq!(
        session["device"],
        json!({"browser": "Chrome 131", "os": "macOS", "kind": "desktop"})
    );
    assert_eq!(session["assurance_level"], 2);
    assert_eq!(session["authenticated_at"], session["created_at"]);
    assert_eq!(session["last_ip_address"], "59.100.242.122");
    assert_eq!(
        session["timeout_seconds"], 3600,
        "level 2 idles out within an hour"
    );

    // The same everywhere it is shown.
    let token = created.json()["token"].as_str().unwrap().to_string();
    let current = app.get("/sessions/current", &token).json();
    let listed = app
        .get(
            &format!("/sessions/{}", session["id"].as_str().unwrap()),
            &admin.token,
        )
        .json();
    let (_, event) = stream.event();
    for shown in [&current, &listed, &event["data"]] {
        for field in [
            "device",
            "assurance_level",
            "authenticated_at",
            "last_ip_address",
        ] {
            assert_eq!(shown[field], session[field], "{field} in {shown}");
        }
    }

    // Level 1 without a user agent: no device, the timeout asked for.
    let plain = app.create(
        &json!({"user_id": unique(), "name": "P", "ip_address": "10.15.0.1",
        "timeout_seconds": 7200}),
    );
    let plain = plain.json()["session"].clone();
    assert_eq!(plain["device"], Value::Null);
    assert_eq!(plain["assurance_level"], 1);
    assert_eq!(plain["timeout_seconds"], 7200);
    let aal3 = app.create(
        &json!({"user_id": unique(), "name": "P", "ip_address": "10.15.0.2",
        "assurance_level": 3}),
    );
    assert_eq!(aal3.json()["session"]["timeout_seconds"], 900);

    for bad in [json!(0), json!(4), json!("2"), json!(2.5), json!(-1)] {
        app.create(
            &json!({"user_id": unique(), "name": "P", "ip_address": "10.15.0.3",
            "assurance_level": bad}),
        )
        .problem(400, "invalid-request");
    }
}

/// A level-2 session ends when its authentication is too old, however active it is.
#[test]
fn a_higher_level_session_ends_when_its_authentication_is_too_old() {
    let app = spawn_app_with(|s| {
        s.assurance_timeouts = sessiond::domain::AssuranceTimeouts::parse("2=1/2").unwrap()
    });
    let login = |level: u8| {
        app.create(
            &json!({"user_id": unique(), "name": "A", "ip_address": "10.15.1.1",
            "assurance_level": level}),
        )
        .json()
    };
    let (two, one) = (login(2), login(1));
    let two_token = two["token"].as_str().unwrap().to_string();
    let one_token = one["token"].as_str().unwrap().to_string();
    let time = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(two["session"][field].as_str().unwrap()).unwrap()
    };
    let lifetime = time("expires_at") - time("authenticated_at");
    assert!(lifetime <= chrono::TimeDelta::seconds(2), "{two}");
    // Kept active all along: it still ends two seconds after its authentication.
    wait_until(Duration::from_secs(10), "the level-2 session ends", || {
        let alive = app.validates(&two_token);
        assert!(app.validates(&one_token), "level 1 has no such limit");
        !alive
    });
}
