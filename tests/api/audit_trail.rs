//! The audit trail survives: in a file of SESSIOND_DATA_DIR across restarts, and in Redis
//! for every node.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, unique};
use crate::process::Process;
use crate::redis_server::RedisServer;

fn audit_ids(server: &Process, token: &str, query: &str) -> Vec<Value> {
    server.get(&format!("/audit{query}"), token).json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_trail_is_served_after_a_restart_with_a_data_directory() {
    let dir = std::env::temp_dir().join(format!("sessiond-audit-{}", unique()));
    let start = || Process::start(&[("SESSIOND_DATA_DIR", dir.to_str().unwrap())]).unwrap();
    let server = start();
    let admin = server.admin();
    let user = server.login(&unique(), "10.0.1.1");
    assert_eq!(
        server
            .delete(&format!("/sessions/{}", user.id), &admin.token)
            .status,
        204
    );
    let before = audit_ids(&server, &admin.token, "");
    assert_eq!(before.len(), 1);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    let server = start();
    // The administrator's session came back from the snapshot; so did the trail.
    assert_eq!(audit_ids(&server, &admin.token, ""), before);
    let other = server.login(&unique(), "10.0.1.2");
    assert_eq!(
        server
            .delete(&format!("/sessions/{}", other.id), &admin.token)
            .status,
        204
    );
    let after = audit_ids(&server, &admin.token, "");
    assert_eq!(after.len(), 2);
    assert_eq!(after[1], before[0]);
    assert_ne!(after[0]["id"], before[0]["id"], "ids go on after a restart");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("audit.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the trail is readable by its owner only"
        );
    }
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(!text.contains(&user.token) && !text.contains(&admin.token));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn on_redis_every_node_answers_with_every_nodes_events_and_cursors_work_anywhere() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let prefix = format!("{}:", unique());
    let node = |name: &str| crate::cluster::node(&redis, name, &prefix);
    let (a, b) = (node("NODE-A"), node("NODE-B"));
    let admin = a.admin();
    let mut ended = Vec::new();
    for (n, server) in [&a, &b, &a].into_iter().enumerate() {
        let user = server.login(&unique(), &format!("10.0.2.{n}"));
        assert_eq!(
            server
                .delete(&format!("/sessions/{}", user.id), &admin.token)
                .status,
            204
        );
        ended.push(user.id);
    }
    let user = unique();
    b.login(&user, "10.0.3.1");
    assert_eq!(
        a.create(&json!({"user_id": user, "name": user, "ip_address": "10.0.3.2"}))
            .status,
        409
    );

    // The node that refused the login logged the event under the id every node serves.
    let denied = audit_ids(&b, &admin.token, "?limit=1");
    let logged = format!("\"id\":\"{}\"", denied[0]["id"].as_str().unwrap());
    assert!(a.log().contains(&logged), "{logged} in {}", a.log());
    for server in [&a, &b] {
        let items = audit_ids(server, &admin.token, "");
        let actions: Vec<&str> = items
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "login-denied",
                "session-ended",
                "session-ended",
                "session-ended"
            ]
        );
        let subjects: Vec<&str> = items[1..]
            .iter()
            .map(|e| e["session"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(subjects, [&ended[2], &ended[1], &ended[0]], "newest first");
    }
    // A cursor from one node pages on the other.
    let first = a.get("/audit?limit=2", &admin.token).json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = b
        .get(&format!("/audit?limit=2&cursor={cursor}"), &admin.token)
        .json();
    assert_eq!(second["items"][0]["session"]["id"], ended[1].as_str());
    assert_eq!(second["items"][1]["session"]["id"], ended[0].as_str());
    assert!(second["next_cursor"].is_null());
    // And it outlives both nodes.
    drop((a, b));
    let c = node("NODE-C");
    let c_admin = c.admin();
    assert_eq!(audit_ids(&c, &c_admin.token, "").len(), 4);
}

/// On Redis a page reads a bounded part of the trail: an organisation with no events in a long
/// trail gets an empty page and a cursor, not a read of everything; a cursor that cannot name
/// an entry is a `400`, not a `503`.
#[test]
fn pages_of_the_shared_trail_read_a_bounded_part_and_refuse_a_bad_cursor() {
    use base64::Engine;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = Process::start(&[("SESSIOND_STORE", url.as_str())]).unwrap();
    // 1,100 refused logins in one organisation: a trail longer than a page may read.
    let busy = format!("Busy-{}", unique());
    let user = unique();
    server.login_as(
        &json!({"user_id": user, "name": "U", "ip_address": "10.0.0.1", "organisation": busy}),
    );
    for _ in 0..1_100 {
        let refused = server.create(
            &json!({"user_id": user, "name": "U", "ip_address": "10.0.0.2", "organisation": busy}),
        );
        assert_eq!(refused.status, 409);
    }
    let quiet = format!("Quiet-{}", unique());
    let org_admin = server.login_as(&json!({"user_id": unique(), "name": "O",
        "ip_address": "10.0.0.3", "organisation": quiet, "roles": ["org_admin"]}));
    let page = server.get("/audit", &org_admin.token).json();
    assert_eq!(page["items"], json!([]));
    let next = page["next_cursor"].as_str().expect("a cursor to read on");
    let rest = server
        .get(&format!("/audit?cursor={next}"), &org_admin.token)
        .json();
    assert_eq!(rest["items"], json!([]));
    assert!(rest["next_cursor"].is_null(), "the trail ends: {rest}");

    let admin = server.admin();
    for position in ["0-0", "0", "12"] {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("a{position}"));
        server
            .get(&format!("/audit?cursor={cursor}"), &admin.token)
            .problem(400, "invalid-request");
    }
}

/// A login into one organisation denied because of the user's session in another: that
/// organisation's administrator sees the denial, not where the other session is.
#[test]
fn a_denied_logins_existing_sessions_elsewhere_are_not_shown_to_an_org_admin() {
    let app = spawn_app();
    let user = unique();
    app.login_as(
        &json!({"user_id": user, "name": "Wanda", "organisation": "Globex",
        "ip_address": "10.14.0.1"}),
    );
    app.create(
        &json!({"user_id": user, "name": "Wanda", "organisation": "Acme",
        "ip_address": "10.14.0.2"}),
    )
    .problem(409, "login-denied");
    let olga = app.login_as(
        &json!({"user_id": unique(), "name": "Olga", "organisation": "Acme",
        "ip_address": "10.14.0.3", "roles": ["org_admin"]}),
    );
    let admin = app.admin();
    let denial = |token: &str| {
        app.get("/audit", token).json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "login-denied" && e["session"]["user_id"] == user.as_str())
            .cloned()
            .expect("the denial is in the trail")
    };
    assert_eq!(denial(&olga.token)["existing_ip_addresses"], json!([]));
    assert_eq!(
        denial(&admin.token)["existing_ip_addresses"],
        json!(["10.14.0.1"])
    );
}
