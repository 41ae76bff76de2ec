//! Crash safety: with SESSIOND_DATA_DIR every acknowledged change is journaled before its
//! response, so after `kill -9` at any moment every acknowledged session is back and no
//! acknowledged end is undone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{unique, wait_until, Client, Login};
use crate::model::Rng;
use crate::process::Process;

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sessiond-journal-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, env: &[(&str, &str)]) -> Process {
    let mut all = vec![
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ("SESSIOND_MAX_SESSIONS_PER_USER", "3"),
        // The mixed load asks for `allow` as well as `replace`.
        ("SESSIOND_LOGIN_OVERRIDES", "replace,allow"),
    ];
    all.extend_from_slice(env);
    Process::start(&all).unwrap()
}

/// What the clients were told, and what they cannot know (a request cut off by the crash).
#[derive(Default)]
struct Ledger {
    /// Acknowledged sessions, with their tokens and users.
    created: HashMap<String, (String, String)>,
    /// Sessions whose end was acknowledged.
    ended: HashSet<String>,
    /// Sessions a request cut off by the crash may have ended (or, with `every-second`, whose
    /// creation may be lost).
    uncertain: HashSet<String>,
    /// Users whose login was cut off: it may have made a session no client knows of.
    cut_off_logins: HashSet<String>,
}

impl Ledger {
    fn live_of(&self, user: &str) -> Vec<String> {
        self.created
            .iter()
            .filter(|(id, (_, u))| u == user && !self.ended.contains(*id))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn certainly_live(&self) -> impl Iterator<Item = (&String, &String)> {
        self.created
            .iter()
            .filter(|(id, _)| !self.ended.contains(*id) && !self.uncertain.contains(*id))
            .map(|(id, (token, _))| (id, token))
    }
}

/// One client's mixed load over its own users until the server is gone: logins (allow and
/// replace, beyond the per-user limit of 3), logouts, administrator deletes and bulk deletes.
fn load(
    client: Client,
    admin: String,
    users: Vec<String>,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
    done: Arc<AtomicUsize>,
) {
    let mut dice = Rng(seed);
    loop {
        let user = &users[dice.next(users.len())];
        let live = ledger.lock().unwrap().live_of(user);
        let token_of = |id: &String| ledger.lock().unwrap().created[id].0.clone();
        let roll = dice.next(10);
        let cut_off = |ids: &[String]| ledger.lock().unwrap().uncertain.extend(ids.iter().cloned());
        if roll < 5 || live.is_empty() {
            let policy = ["allow", "replace"][dice.next(2)];
            let body = json!({"user_id": user, "name": format!("Student {user}"), "ip_address": "10.0.0.7",
                "concurrent_sessions": policy, "timeout_seconds": 3600});
            let Some(response) = client.try_create(&body) else {
                // Whatever this login ended may be ended; the session it made may exist.
                ledger.lock().unwrap().cut_off_logins.insert(user.clone());
                return cut_off(&live);
            };
            assert_eq!(response.status, 201, "{}", response.body);
            let json = response.json();
            let mut ledger = ledger.lock().unwrap();
            let id = json["session"]["id"].as_str().unwrap().to_string();
            let token = json["token"].as_str().unwrap().to_string();
            ledger.created.insert(id, (token, user.clone()));
            for ended in json["ended"].as_array().unwrap() {
                ledger.ended.insert(ended.as_str().unwrap().to_string());
            }
        } else {
            let id = live[dice.next(live.len())].clone();
            let (method, path, token, body) = match roll {
                5 | 6 => (
                    "DELETE",
                    "/sessions/current".to_string(),
                    token_of(&id),
                    Value::Null,
                ),
                7 | 8 => (
                    "DELETE",
                    format!("/sessions/{id}"),
                    admin.clone(),
                    Value::Null,
                ),
                _ => (
                    "DELETE",
                    "/sessions".to_string(),
                    admin.clone(),
                    json!({"ids": live}),
                ),
            };
            let bearer = format!("Bearer {token}");
            let mut headers = vec![("Authorization", bearer.as_str())];
            if !body.is_null() {
                headers.push(("Content-Type", "application/json"));
            }
            let bytes = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            let Some(response) = client.try_send(method, &path, &headers, &bytes) else {
                return cut_off(&live);
            };
            let mut ledger = ledger.lock().unwrap();
            match response.status {
                204 => {
                    ledger.ended.insert(id);
                }
                200 => {
                    for deleted in response.json()["deleted"].as_array().unwrap() {
                        ledger.ended.insert(deleted.as_str().unwrap().to_string());
                    }
                }
                status => panic!("{method} {path}: {status} {}", response.body),
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Checks the restarted server against the ledger, then settles what was uncertain.
fn check(server: &Process, admin: &Login, ledger: &mut Ledger, round: usize) {
    for (id, token) in ledger.certainly_live() {
        assert!(
            server.validates(token),
            "round {round}: acknowledged session {id} is lost"
        );
    }
    for id in &ledger.ended {
        let token = &ledger.created[id].0;
        assert!(
            !server.validates(token),
            "round {round}: ended session {id} came back"
        );
    }
    // The indexes agree with the sessions: every listed session is one of ours, every live
    // one is listed, and each user's filter finds exactly that user's.
    let listed: HashSet<String> = server
        .list_all(&admin.token, "limit=1000")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    for (id, _) in ledger.certainly_live() {
        assert!(
            listed.contains(id),
            "round {round}: {id} validates but is not listed"
        );
    }
    let listing = server.list_all(&admin.token, "limit=1000");
    let mut unknown = Vec::new();
    for session in &listing {
        let id = session["id"].as_str().unwrap();
        if id == admin.id || ledger.created.contains_key(id) && !ledger.ended.contains(id) {
            continue;
        }
        let user = session["user_id"].as_str().unwrap();
        assert!(
            !ledger.created.contains_key(id) && ledger.cut_off_logins.contains(user),
            "round {round}: {id} is listed but was never acknowledged live"
        );
        unknown.push(id);
    }
    // Sessions made by logins the crash cut off: ended, so that every session is known.
    if !unknown.is_empty() {
        let response = server.delete_ids(&admin.token, &unknown);
        assert_eq!(response.status, 200, "{}", response.body);
    }
    ledger.cut_off_logins.clear();
    let uncertain: Vec<String> = ledger.uncertain.drain().collect();
    for id in uncertain {
        if !listed.contains(&id) {
            ledger.ended.insert(id);
        }
    }
    let users: HashSet<&String> = ledger.created.values().map(|(_, u)| u).collect();
    for user in users {
        let of_user: HashSet<String> = server
            .list_all(&admin.token, &format!("user_id={user}"))
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        let expected: HashSet<String> = ledger.live_of(user).into_iter().collect();
        assert_eq!(of_user, expected, "round {round}: the sessions of {user}");
    }
}

#[test]
fn kill_9_during_mixed_load_loses_nothing_acknowledged_and_undoes_no_end() {
    let dir = data_dir();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut dice = Rng(0x9e37_79b9_7f4a_7c15);
    let admin = {
        let server = start(&dir, &[]);
        let admin = server.login_as(&json!({"user_id": "root", "name": "Ada",
            "ip_address": "10.0.0.1", "roles": ["admin"], "timeout_seconds": 3600}));
        server.kill();
        admin
    };
    let modes = [
        ("always", "1"),
        ("always", "30"),
        ("always", "1"),
        ("every-second", "1"),
        ("always", "30"),
        ("every-second", "30"),
    ];
    for (round, (fsync, interval)) in modes.into_iter().enumerate() {
        let server = start(
            &dir,
            &[
                ("SESSIOND_FSYNC", fsync),
                ("SESSIOND_SNAPSHOT_INTERVAL", interval),
            ],
        );
        let address = server.client.address;
        check(&server, &admin, &mut ledger.lock().unwrap(), round);
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let users = (0..5)
                    .map(|u| format!("r{round}-w{w}-u{u}-{}", unique()))
                    .collect();
                let (client, ledger, done) = (Client::new(address), ledger.clone(), done.clone());
                let (admin, seed) = (admin.token.clone(), dice.next(usize::MAX) as u64 | 1);
                thread::spawn(move || load(client, admin, users, seed, ledger, done))
            })
            .collect();
        // Killed at a random point of the load, while every client has requests in flight.
        let kill_after = 100 + dice.next(400);
        wait_until(Duration::from_secs(30), "the load is under way", || {
            done.load(Ordering::Relaxed) >= kill_after
        });
        server.kill_now();
        for worker in workers {
            worker.join().expect("a client thread");
        }
        if fsync == "every-second" {
            // A crash may lose the last second of logins (never an end).
            let mut ledger = ledger.lock().unwrap();
            let created: Vec<String> = ledger.created.keys().cloned().collect();
            ledger.uncertain.extend(created);
        }
        drop(server);
    }
    let server = start(&dir, &[]);
    check(&server, &admin, &mut ledger.lock().unwrap(), modes.len());
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.ended.len() > 100 && ledger.created.len() > 300,
        "the load did enough"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn activity_is_journaled_so_a_crash_does_not_end_active_sessions() {
    let dir = data_dir();
    let server = start(&dir, &[("SESSIOND_ACTIVITY_INTERVAL", "1")]);
    let user = server.login_as(&json!({"user_id": unique(), "name": "Busy",
        "ip_address": "10.0.0.2", "timeout_seconds": 3}));
    // Active for longer than the idle timeout: only its activity keeps it alive.
    for _ in 0..10 {
        assert!(server.validates(&user.token));
        thread::sleep(Duration::from_millis(400));
    }
    // The activity journaled by the last round (every second) covers the last validation.
    thread::sleep(Duration::from_millis(1_300));
    server.kill();
    let server = start(&dir, &[]);
    assert!(server.validates(&user.token), "{}", server.log());
}

fn segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("journal.")
        })
        .collect();
    segments.sort();
    segments.pop().expect("a journal segment")
}

/// A server killed after `n` logins, and their tokens; no snapshot holds them.
fn journaled_logins(dir: &Path, n: usize) -> Vec<Login> {
    let server = start(dir, &[("SESSIOND_SNAPSHOT_INTERVAL", "3600")]);
    let logins = (0..n)
        .map(|_| server.login(&unique(), "10.0.0.3"))
        .collect();
    server.kill();
    logins
}

#[test]
fn a_torn_last_write_is_cut_with_one_warning_and_the_rest_is_back() {
    let dir = data_dir();
    let logins = journaled_logins(&dir, 5);
    let path = segment(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    // Half a record: a header promising more than was written.
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    std::fs::write(&path, &bytes).unwrap();
    let server = start(&dir, &[]);
    let log = server.log();
    let warning = format!("cut off 10 bytes at offset {whole}");
    assert_eq!(log.matches(&warning).count(), 1, "{log}");
    for login in &logins {
        assert!(server.validates(&login.token));
    }
}

#[test]
fn a_corrupt_record_in_the_middle_stops_start_up_naming_file_and_offset() {
    let dir = data_dir();
    journaled_logins(&dir, 5);
    let path = segment(&dir);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    // A byte inside the first record's payload: four whole records follow it.
    bad[20] ^= 0x20;
    std::fs::write(&path, &bad).unwrap();
    let error = Process::start(&[("SESSIOND_DATA_DIR", dir.to_str().unwrap())])
        .err()
        .expect("a damaged journal stops start-up");
    assert!(
        error.contains(path.to_str().unwrap()) && error.contains("offset 0"),
        "{error}"
    );
    assert!(!error.contains("panicked"), "{error}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bad,
        "the file is left as it was"
    );
}

/// A rotation is acknowledged only once journaled: after `kill -9` the old token stays dead,
/// and the new one comes back with its reauthentication and reported address.
#[test]
fn a_rotated_token_and_a_reauthentication_survive_kill_9() {
    let dir = data_dir();
    let server = start(&dir, &[("SESSIOND_SNAPSHOT_INTERVAL", "3600")]);
    let user = server.login(&unique(), "10.0.0.9");
    let rotated = server.rotate(&user.token);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let path = format!("/sessions/{}/reauthenticated", user.id);
    let renewed = server.send(
        "POST",
        &path,
        &[
            ("X-Service-Key", crate::helpers::SERVICE_KEY),
            ("Content-Type", "application/json"),
        ],
        br#"{"assurance_level": 3}"#,
    );
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let token = renewed.json()["token"].as_str().unwrap().to_string();
    let moved = server.send(
        "GET",
        "/sessions/current",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("X-Client-IP", "203.0.113.9"),
        ],
        b"",
    );
    assert_eq!(moved.status, 200);
    server.kill();

    let server = start(&dir, &[]);
    assert!(!server.validates(&user.token), "{}", server.log());
    let rotated_token = rotated.json()["token"].as_str().unwrap().to_string();
    assert!(!server.validates(&rotated_token));
    let back = server.get("/sessions/current", &token).json();
    assert_eq!(back["assurance_level"], 3, "{back}");
    assert_eq!(back["timeout_seconds"], 900);
    assert_eq!(back["last_ip_address"], "203.0.113.9");
    assert_eq!(
        back["authenticated_at"],
        renewed.json()["session"]["authenticated_at"]
    );
}

/// Why a token stopped survives a crash for what the journal holds since the last snapshot.
#[test]
fn a_401_still_says_why_after_kill_9() {
    let dir = data_dir();
    let server = start(&dir, &[("SESSIOND_SNAPSHOT_INTERVAL", "3600")]);
    let (gone, rotated) = (
        server.login(&unique(), "10.0.0.10"),
        server.login(&unique(), "10.0.0.11"),
    );
    assert_eq!(server.delete("/sessions/current", &gone.token).status, 204);
    let renewed = server.rotate(&rotated.token);
    assert_eq!(renewed.status, 200);
    server.kill();
    let server = start(&dir, &[]);
    let reason = |token: &str| {
        server
            .get("/sessions/current", token)
            .problem(401, "unauthorized")["reason"]
            .clone()
    };
    assert_eq!(reason(&gone.token), "logout", "{}", server.log());
    assert_eq!(reason(&rotated.token), "rotated");
    let new = renewed.json()["token"].as_str().unwrap().to_string();
    assert!(server.validates(&new));
}
