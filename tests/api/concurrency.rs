//! Many clients at once: the indexes stay consistent with the sessions.

use std::sync::Arc;
use std::thread;

use serde_json::json;

use crate::helpers::{spawn_app_with, unique};
use sessiond::domain::ConcurrentSessions;

#[test]
fn a_storm_of_logins_and_deletes_leaves_no_orphan_index_entries() {
    let app = Arc::new(spawn_app_with(|s| {
        s.concurrent_sessions = ConcurrentSessions::Replace
    }));
    let admin = app.admin();
    let users: Arc<Vec<String>> = Arc::new((0..8).map(|_| unique()).collect());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (app, users, admin) = (app.clone(), users.clone(), admin.clone());
            thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..60 {
                    let user = &users[(w + i) % users.len()];
                    let response = app.create(&json!({
                        "user_id": user, "name": user, "ip_address": format!("10.0.{w}.{i}")
                    }));
                    assert_eq!(response.status, 201, "{}", response.body);
                    let body = response.json();
                    let login = (
                        body["token"].as_str().unwrap().to_string(),
                        body["session"]["id"].as_str().unwrap().to_string(),
                    );
                    match i % 4 {
                        0 => assert!(matches!(
                            app.delete("/sessions/current", &login.0).status,
                            204 | 401
                        )),
                        1 => {
                            let response = app.delete_ids(&admin.token, &[&login.1]);
                            assert_eq!(response.status, 200);
                        }
                        2 => {
                            let response =
                                app.delete(&format!("/sessions/{}", login.1), &admin.token);
                            assert!(matches!(response.status, 204 | 404));
                        }
                        _ => mine.push(login),
                    }
                }
                mine
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let report = app.indexes();
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.rows, report.by_id);
    assert_eq!(report.rows, report.by_user);
    // Replace leaves at most one session per user, plus the admin's.
    assert!(report.rows <= users.len() + 1, "{report:?}");
    let listed = app.list_all(&admin.token, "limit=3");
    assert_eq!(listed.len(), report.rows);
}
