//! Sessions survive restarts through snapshots in SESSIOND_DATA_DIR.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{unique, wait_until, without_clock_fields, Login};
use crate::process::Process;
use sessiond::persistence::snapshot::SnapshotFile;

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sessiond-data-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, interval: &str) -> Process {
    Process::start(&[
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ("SESSIOND_SNAPSHOT_INTERVAL", interval),
    ])
    .unwrap()
}

fn sessions(server: &Process, count: usize) -> (Login, Vec<Login>) {
    let admin = server.login_as(
        &json!({"user_id": "admin", "name": "Ada", "ip_address": "10.0.0.1", "roles": ["admin"]}),
    );
    let users = (0..count)
        .map(|i| {
            server.login_as(&json!({"user_id": unique(), "name": format!("User {i}"),
                "ip_address": format!("10.1.{}.{}", i / 250, i % 250), "timeout_seconds": 3600,
                "user_agent": "Mozilla/5.0", "roles": ["reader"]}))
        })
        .collect();
    (admin, users)
}

fn listing(server: &Process, admin: &Login) -> Vec<Value> {
    without_clock_fields(server.list_all(&admin.token, "sort=session_time&limit=1000"))
}

#[test]
fn a_graceful_restart_keeps_every_session() {
    let dir = data_dir();
    let server = start(&dir, "30");
    let (admin, users) = sessions(&server, 60);
    let before = listing(&server, &admin);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("saved 61 sessions"), "{log}");

    let server = start(&dir, "30");
    assert!(
        server.log().contains("restored 61 sessions"),
        "{}",
        server.log()
    );
    for user in users.iter().chain([&admin]) {
        assert!(
            server.validates(&user.token),
            "token of {} still validates",
            user.id
        );
    }
    assert_eq!(listing(&server, &admin), before, "every field intact");
}

#[test]
fn after_kill_9_everything_up_to_the_last_snapshot_is_back() {
    let dir = data_dir();
    let server = start(&dir, "1");
    let (admin, users) = sessions(&server, 20);
    let file = SnapshotFile::in_dir(&dir).unwrap();
    wait_until(
        Duration::from_secs(10),
        "a snapshot holds every session",
        || {
            file.load()
                .is_ok_and(|s| s.is_some_and(|s| s.sessions.len() == 21))
        },
    );
    server.kill();

    let server = start(&dir, "1");
    for user in users.iter().chain([&admin]) {
        assert!(server.validates(&user.token));
    }
}

#[test]
fn a_snapshot_that_cannot_be_read_stops_start_up_and_is_left_in_place() {
    let dir = data_dir();
    let server = start(&dir, "30");
    sessions(&server, 5);
    assert!(server.terminate().0.success());
    let path = dir.join("sessions.snapshot");
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    flipped[40] ^= 1;
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("corrupt", flipped),
        ("foreign", b"not a snapshot at all".to_vec()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let error = Process::start(&[("SESSIOND_DATA_DIR", dir.to_str().unwrap())])
            .err()
            .unwrap_or_else(|| panic!("a {what} snapshot was accepted"));
        assert!(
            error.contains("sessions.snapshot") && error.contains("left in place"),
            "{what}: {error}"
        );
        assert!(!error.contains("panicked"), "{error}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the {what} file is untouched"
        );
    }
}

#[test]
fn kill_9_under_load_keeps_every_acknowledged_login_snapshots_or_not() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = data_dir();
    let server = Arc::new(start(&dir, "1"));
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let loaders: Vec<_> = (0..3)
        .map(|w| {
            let (server, stop, created) = (server.clone(), stop.clone(), created.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Some(response) = server
                        .try_create(&json!({"user_id": format!("load-{w}-{i}"),
                        "name": "L", "ip_address": "10.0.0.1"}))
                    else {
                        break;
                    };
                    if response.status == 201 {
                        let token = response.json()["token"].as_str().unwrap().to_string();
                        created.lock().unwrap().push(token);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let file = SnapshotFile::in_dir(&dir).unwrap();
    wait_until(
        Duration::from_secs(20),
        "two snapshots were taken under load",
        || {
            file.load()
                .is_ok_and(|s| s.is_some_and(|s| s.sessions.len() > 200))
        },
    );
    // Killed while the logins keep coming.
    server.kill_now();
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        let _ = loader.join();
    }
    let last = file
        .load()
        .expect("the snapshot on disk is whole, never torn")
        .expect("a snapshot was written")
        .sessions;
    let in_snapshot: std::collections::HashSet<sessiond::domain::SessionId> =
        last.iter().map(|s| s.data.id).collect();

    let server = start(&dir, "1");
    let created = created.lock().unwrap();
    let mut kept = 0;
    for token in created.iter() {
        assert!(server.validates(token), "an acknowledged login is back");
        let id = sessiond::domain::PresentedToken::parse(token).unwrap().id;
        kept += usize::from(in_snapshot.contains(&id));
    }
    println!(
        "kill -9 under load: {} logins acknowledged, {kept} of them in the last snapshot, all back",
        created.len()
    );
}
