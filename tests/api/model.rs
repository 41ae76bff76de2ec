//! Many concurrent clients against the real server, checked against a model of which sessions
//! must exist. Each worker owns its users, so its part of the model is exact; the parts add up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{spawn_app_with, unique};

const WORKERS: usize = 6;
const RUN_FOR: Duration = Duration::from_secs(3);

/// A small deterministic generator, so a failing interleaving of choices can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// What one worker did and believes.
#[derive(Default)]
struct Model {
    /// Live sessions: id → (token, user, ip).
    live: HashMap<String, (String, String, String)>,
    ended: Vec<String>,
    operations: usize,
}

#[test]
fn concurrent_clients_leave_exactly_the_sessions_the_model_predicts() {
    // No per-user limit: the model would have to guess which session a limit evicts.
    let app = Arc::new(spawn_app_with(|s| s.max_sessions_per_user = 0));
    let admin = app.admin();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (app, admin) = (app.clone(), admin.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
                let users: Vec<String> = (0..5).map(|_| unique()).collect();
                let mut model = Model::default();
                let started = Instant::now();
                while started.elapsed() < RUN_FOR {
                    model.operations += 1;
                    match rng.next(13) {
                        // Log in, with the policy on: the model says whether it must succeed.
                        0..=3 => {
                            let user = &users[rng.next(users.len())];
                            let ip = format!("10.{w}.0.{}", rng.next(3));
                            let other_ip =
                                model.live.values().any(|(_, u, i)| u == user && *i != ip);
                            let response = app
                                .create(&json!({"user_id": user, "name": user, "ip_address": ip}));
                            if other_ip {
                                assert_eq!(response.status, 409, "{}", response.body);
                            } else {
                                assert_eq!(response.status, 201, "{}", response.body);
                                let body = response.json();
                                let id = body["session"]["id"].as_str().unwrap().to_string();
                                let token = body["token"].as_str().unwrap().to_string();
                                model.live.insert(id, (token, user.clone(), ip));
                            }
                        }
                        // Validate one of ours.
                        4 | 5 => {
                            if let Some((_, (token, _, _))) = pick(&model.live, &mut rng) {
                                assert!(app.validates(&token));
                            }
                        }
                        // Log out.
                        6 => {
                            if let Some((id, (token, _, _))) = pick(&model.live, &mut rng) {
                                assert_eq!(app.delete("/sessions/current", &token).status, 204);
                                model.live.remove(&id);
                                model.ended.push(token);
                            }
                        }
                        // An administrator ends one.
                        7 => {
                            if let Some((id, (token, _, _))) = pick(&model.live, &mut rng) {
                                let response = app.delete(&format!("/sessions/{id}"), &admin.token);
                                assert_eq!(response.status, 204);
                                model.live.remove(&id);
                                model.ended.push(token);
                            }
                        }
                        // An administrator ends several at once (and one that is already gone).
                        8 => {
                            let chosen: Vec<String> =
                                model.live.keys().take(1 + rng.next(3)).cloned().collect();
                            let mut ids: Vec<&str> = chosen.iter().map(String::as_str).collect();
                            ids.push("00000000-0000-4000-8000-000000000000");
                            let result = app.delete_ids(&admin.token, &ids).json();
                            assert_eq!(result["deleted"].as_array().unwrap().len(), chosen.len());
                            for id in &chosen {
                                let (token, _, _) = model.live.remove(id).unwrap();
                                model.ended.push(token);
                            }
                        }
                        // A denied user insists with `replace`: the login ends exactly the user's
                        // other live sessions, and says which.
                        10 => {
                            let user = &users[rng.next(users.len())];
                            let ip = format!("10.{w}.1.{}", rng.next(3));
                            let body = json!({"user_id": user, "name": user, "ip_address": ip,
                                "concurrent_sessions": "replace"});
                            let created = app.create(&body);
                            assert_eq!(created.status, 201, "{}", created.body);
                            let body = created.json();
                            let ended: HashSet<String> = body["ended"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|id| id.as_str().unwrap().to_string())
                                .collect();
                            assert_eq!(ended, model.of_user(user), "user {user}");
                            model.end(&ended);
                            let id = body["session"]["id"].as_str().unwrap().to_string();
                            let token = body["token"].as_str().unwrap().to_string();
                            model.live.insert(id, (token, user.clone(), ip));
                        }
                        // A user logs its other devices out: exactly its other sessions end.
                        11 => {
                            if let Some((id, (token, user, _))) = pick(&model.live, &mut rng) {
                                let response = app.delete("/sessions/mine", &token);
                                assert_eq!(response.status, 200, "{}", response.body);
                                let deleted: HashSet<String> = response.json()["deleted"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .map(|id| id.as_str().unwrap().to_string())
                                    .collect();
                                let mut others = model.of_user(&user);
                                others.remove(&id);
                                assert_eq!(deleted, others, "user {user}");
                                model.end(&deleted);
                            }
                        }
                        // A user sees exactly its own sessions.
                        12 => {
                            if let Some((_, (token, user, _))) = pick(&model.live, &mut rng) {
                                let mine: HashSet<String> =
                                    app.get("/sessions/mine", &token).json()["items"]
                                        .as_array()
                                        .unwrap()
                                        .iter()
                                        .map(|s| s["id"].as_str().unwrap().to_string())
                                        .collect();
                                assert_eq!(mine, model.of_user(&user), "user {user}");
                            }
                        }
                        // List: a user's sessions are exactly the model's.
                        _ => {
                            let user = &users[rng.next(users.len())];
                            let listed: HashSet<String> = app
                                .list_all(&admin.token, &format!("user_id={user}&limit=2"))
                                .iter()
                                .map(|s| s["id"].as_str().unwrap().to_string())
                                .collect();
                            let expected: HashSet<String> = model
                                .live
                                .iter()
                                .filter(|(_, (_, u, _))| u == user)
                                .map(|(id, _)| id.clone())
                                .collect();
                            assert_eq!(listed, expected, "user {user}");
                        }
                    }
                }
                model
            })
        })
        .collect();
    let models: Vec<Model> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    // Every worker's live sessions, and the administrator's own.
    let expected_total = models.iter().map(|m| m.live.len()).sum::<usize>() + 1;
    let listed = app.list_all(&admin.token, "limit=7");
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let unique_ids: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique_ids.len(), ids.len(), "no session is listed twice");
    assert_eq!(ids.len(), expected_total);
    let total = app.get("/sessions?limit=1", &admin.token).json()["total"]
        .as_u64()
        .unwrap();
    assert_eq!(total as usize, expected_total);
    for model in &models {
        for (token, _, _) in model.live.values() {
            assert!(app.validates(token), "a live session validates");
        }
        for token in &model.ended {
            assert!(!app.validates(token), "an ended session is refused");
        }
    }
    let report = app.indexes();
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(
        (report.rows, report.by_id, report.by_user),
        (expected_total, expected_total, expected_total)
    );
    let operations: usize = models.iter().map(|m| m.operations).sum();
    println!(
        "model check: {operations} operations by {WORKERS} clients, {expected_total} sessions left"
    );
    assert!(operations > 100);
}

impl Model {
    /// The ids of `user`'s live sessions.
    fn of_user(&self, user: &str) -> HashSet<String> {
        self.live
            .iter()
            .filter(|(_, (_, u, _))| u == user)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Moves `ids` from live to ended.
    fn end(&mut self, ids: &HashSet<String>) {
        for id in ids {
            let (token, _, _) = self.live.remove(id).expect("a live session of the model");
            self.ended.push(token);
        }
    }
}

fn pick(
    live: &HashMap<String, (String, String, String)>,
    rng: &mut Rng,
) -> Option<(String, (String, String, String))> {
    if live.is_empty() {
        return None;
    }
    let n = rng.next(live.len());
    live.iter().nth(n).map(|(k, v)| (k.clone(), v.clone()))
}
