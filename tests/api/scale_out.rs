//! Redis Cluster: sessiond nodes on a three-master cluster started on loopback ports. Every
//! rule holds across slots and nodes; slots move between masters under load.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{race, unique, wait_until, Login, Response};
use crate::process::Process;
use crate::redis_cluster::RedisCluster;
use crate::sse::EventStream;

fn node(cluster: &RedisCluster, name: &str, prefix: &str, extra: &[(&str, &str)]) -> Process {
    let mut env = vec![
        ("SESSIOND_STORE", cluster.url()),
        ("SESSIOND_SERVER_NAME", name.to_string()),
        ("SESSIOND_REDIS_PREFIX", prefix.to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Process::start(&env).unwrap_or_else(|e| panic!("node {name} starts: {e}"))
}

/// Asserts the response's status is one of `allowed`; a 503 is a problem like any other.
fn expect_one_of(response: &Response, allowed: &[u16]) {
    assert!(
        allowed.contains(&response.status),
        "{}: {}",
        response.status,
        response.body
    );
    if response.status == 503 {
        response.problem(503, "unavailable");
    }
}

fn admin(node: &Process) -> Login {
    node.login_as(&json!({"user_id": unique(), "name": "Ada Admin", "ip_address": "10.0.0.1", "roles": ["admin"]}))
}

#[test]
fn sessions_made_on_one_node_live_list_and_end_on_another_across_every_master() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = format!("{}:", unique());
    let (a, b) = (
        node(&cluster, "NODE-A", &prefix, &[]),
        node(&cluster, "NODE-B", &prefix, &[]),
    );
    let admin_b = admin(&b);
    // Enough users to land in every group, so on every master.
    let users: Vec<Login> = (0..200)
        .map(|i| a.login(&format!("user-{i}-{}", unique()), "10.1.0.1"))
        .collect();
    for user in &users {
        assert!(b.validates(&user.token));
    }
    let listed = b.list_all(&admin_b.token, "limit=100");
    assert_eq!(
        listed.len(),
        users.len() + 1,
        "every session, from every master"
    );
    // Bulk delete through B: ids from many slots, one call each.
    let ids: Vec<&str> = users.iter().take(100).map(|u| u.id.as_str()).collect();
    let deleted = b.delete_ids(&admin_b.token, &ids);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    for (i, user) in users.iter().enumerate() {
        assert_eq!(a.validates(&user.token), i >= 100, "user {i}");
    }
    assert_eq!(a.list_all(&admin(&a).token, "limit=100").len(), 100 + 2);
}

#[test]
fn of_simultaneous_logins_for_the_last_seat_through_two_nodes_on_a_cluster_exactly_one_wins() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = format!("seats-{}:", unique());
    let seats = [("SESSIOND_ORGANISATION_SEATS", "Acme=4")];
    let (a, b) = (
        node(&cluster, "NODE-A", &prefix, &seats),
        node(&cluster, "NODE-B", &prefix, &seats),
    );
    let first: Vec<Login> = [&a, &b, &a]
        .iter()
        .map(|node| {
            node.login_as(&json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1", "organisation": "Acme"}))
        })
        .collect();
    let nodes = Arc::new([a, b]);
    let racing = nodes.clone();
    race(
        10,
        |i| json!({"user_id": unique(), "name": "N", "ip_address": format!("10.2.0.{i}"), "organisation": "Acme"}),
        move |i, body| racing[i % 2].create(body).status,
    );
    // A seat given back by a logout is taken by the next new user, and only one.
    let (a, b) = (&nodes[0], &nodes[1]);
    assert_eq!(b.delete("/sessions/current", &first[0].token).status, 204);
    let next = || json!({"user_id": unique(), "name": "N", "ip_address": "10.3.0.1", "organisation": "Acme"});
    assert_eq!(a.create(&next()).status, 201);
    assert_eq!(b.create(&next()).status, 409);
}

/// Moves `slot` from the master serving it to the one at `to`, key by key, as
/// `redis-cli --cluster reshard` does.
fn migrate(cluster: &RedisCluster, slot: u16, from: u16, to: u16) {
    let (from_id, to_id) = (cluster.node_id(from), cluster.node_id(to));
    let setslot = |port: u16, state: &str, id: &str| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .query(&mut cluster.connection(port))
            .unwrap();
    };
    setslot(to, "IMPORTING", &from_id);
    setslot(from, "MIGRATING", &to_id);
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(10)
            .query(&mut cluster.connection(from))
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let _: () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys)
            .query(&mut cluster.connection(from))
            .unwrap();
        // Slowly, so that requests meet the slot half moved (ASK).
        thread::sleep(Duration::from_millis(20));
    }
    for port in cluster.ports.clone() {
        setslot(port, "NODE", &to_id);
    }
}

#[test]
fn sessions_stay_valid_and_logins_go_on_while_a_slot_moves_between_masters() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = format!("{}:", unique());
    let a = Arc::new(node(&cluster, "NODE-A", &prefix, &[]));
    let users: Vec<Login> = (0..300)
        .map(|i| a.login(&format!("user-{i}-{}", unique()), "10.1.0.1"))
        .collect();
    let users = Arc::new(users);
    let moving = Arc::new(AtomicBool::new(true));
    let (validated, logged_in) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let validator = {
        let (a, users, moving, validated) =
            (a.clone(), users.clone(), moving.clone(), validated.clone());
        thread::spawn(move || {
            while moving.load(Ordering::SeqCst) {
                for user in users.iter() {
                    let response = a.get("/sessions/current", &user.token);
                    assert_eq!(
                        response.status, 200,
                        "a live session during the move: {}",
                        response.body
                    );
                    validated.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let logins = {
        let (a, moving, logged_in) = (a.clone(), moving.clone(), logged_in.clone());
        thread::spawn(move || {
            let mut made = Vec::new();
            while moving.load(Ordering::SeqCst) {
                let response =
                    a.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.2.0.1"}));
                // A script whose keys are split between two masters for an instant is retried;
                // never a 500.
                expect_one_of(&response, &[201, 503]);
                if response.status == 201 {
                    made.push(response.json()["token"].as_str().unwrap().to_string());
                    logged_in.fetch_add(1, Ordering::Relaxed);
                }
            }
            made
        })
    };
    wait_until(Duration::from_secs(10), "requests are under way", || {
        validated.load(Ordering::Relaxed) > 50 && logged_in.load(Ordering::Relaxed) > 5
    });
    // The slots of the first groups (each group's slot is in the middle of its 256): from the
    // first master to the second, while both threads run.
    let (first, second) = (cluster.ports[0], cluster.ports[1]);
    for group in 0..4u16 {
        migrate(&cluster, group * 256 + 128, first, second);
    }
    moving.store(false, Ordering::SeqCst);
    validator
        .join()
        .expect("every validation succeeded during the move");
    let made = logins.join().expect("no login failed with a 500");
    for user in users.iter() {
        assert!(a.validates(&user.token));
    }
    for token in &made {
        assert!(a.validates(token), "a login made during the move");
    }
    let admin = admin(&a);
    assert_eq!(
        a.list_all(&admin.token, "limit=100").len(),
        users.len() + made.len() + 1
    );
}

/// A login, or a login then its logout, as the service acknowledged it.
enum Acknowledged {
    On(String),
    Ended(String),
}

#[test]
fn when_a_master_dies_its_replica_takes_over_losing_nothing_acknowledged_and_only_its_slots_answer_503(
) {
    let Some(mut cluster) = RedisCluster::with_replicas() else {
        return;
    };
    let prefix = format!("{}:", unique());
    // Every change is confirmed by its master's replica before it is acknowledged.
    let a = Arc::new(node(
        &cluster,
        "NODE-A",
        &prefix,
        &[("SESSIOND_REDIS_MIN_REPLICAS", "1")],
    ));
    let status = |token: &str| a.get("/sessions/current", token).status;
    let users: Arc<Vec<Login>> = Arc::new(
        (0..200)
            .map(|i| a.login(&format!("user-{i}-{}", unique()), "10.1.0.1"))
            .collect(),
    );
    let admin = admin(&a);
    let events = EventStream::open(&a, &admin.token, "?types=session-ended", None);
    let (dead, replica) = (cluster.ports[0], cluster.ports[3]);
    let failing_over = Arc::new(AtomicBool::new(true));
    // Validations without a pause, each with the moment it was answered and its status.
    let validator = {
        let (a, users, failing_over) = (a.clone(), users.clone(), failing_over.clone());
        thread::spawn(move || {
            let mut answers = Vec::new();
            while failing_over.load(Ordering::SeqCst) {
                for user in users.iter() {
                    let response = a.get("/sessions/current", &user.token);
                    // Never 401 (a live session is not lost) nor 500.
                    expect_one_of(&response, &[200, 503]);
                    answers.push((Instant::now(), response.status));
                }
            }
            answers
        })
    };
    // Logins, every other one logged out again, right up to and through the kill.
    let made = Arc::new(AtomicUsize::new(0));
    let changes = {
        let (a, failing_over, made) = (a.clone(), failing_over.clone(), made.clone());
        thread::spawn(move || {
            let mut acknowledged = Vec::new();
            while failing_over.load(Ordering::SeqCst) {
                made.store(acknowledged.len(), Ordering::SeqCst);
                let response =
                    a.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.2.0.1"}));
                expect_one_of(&response, &[201, 503]);
                if response.status != 201 {
                    continue;
                }
                let token = response.json()["token"].as_str().unwrap().to_string();
                if acknowledged.len() % 2 == 0 {
                    acknowledged.push(Acknowledged::On(token));
                    continue;
                }
                let status = a.delete("/sessions/current", &token).status;
                assert!(matches!(status, 204 | 503), "a logout: {status}");
                acknowledged.push(match status {
                    204 => Acknowledged::Ended(token),
                    _ => Acknowledged::On(token),
                });
            }
            acknowledged
        })
    };
    wait_until(Duration::from_secs(10), "changes are under way", || {
        made.load(Ordering::SeqCst) >= 10
    });
    let killed = Instant::now();
    cluster.kill(dead);
    // The replica is elected once the master has been unreachable for the node timeout (1 s).
    wait_until(
        Duration::from_secs(30),
        "the replica serves the dead master's slots",
        || cluster.serves(replica, 128),
    );
    let promoted = Instant::now();
    failing_over.store(false, Ordering::SeqCst);
    let answers = validator.join().expect("no validation failed otherwise");
    let acknowledged = changes.join().expect("no login failed otherwise");
    let during = |status: u16| {
        answers
            .iter()
            .filter(|(at, s)| *s == status && *at > killed && *at < promoted)
            .count()
    };
    assert!(
        during(503) > 0,
        "the dead master's sessions were asked for while it had no successor"
    );
    assert!(
        during(200) > 0,
        "sessions on the other masters answered meanwhile"
    );
    assert!(answers.iter().all(|(at, s)| *s == 200 || *at > killed));
    // Nothing acknowledged was lost: every session made before and during is there, on every
    // master, and no logout is undone.
    wait_until(
        Duration::from_secs(20),
        "every session validates again",
        || users.iter().all(|user| status(&user.token) == 200),
    );
    for change in &acknowledged {
        match change {
            Acknowledged::On(token) => assert_eq!(status(token), 200, "an acknowledged login"),
            Acknowledged::Ended(token) => {
                assert_eq!(status(token), 401, "an acknowledged logout")
            }
        }
    }
    // The promoted master has no replica left to confirm a change: a login that changes a key
    // there answers 503 — its user's, or its organisation's seats (every login confirms its
    // seat in the organisation's slot); the others 201.
    let answers: Vec<u16> = (0..24)
        .map(|_| {
            a.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.3.0.1"}))
                .status
        })
        .collect();
    let seats_slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{prefix}o:Default"))
        .query(&mut cluster.connection(replica))
        .unwrap();
    let seats_without_replica = cluster.serves(replica, seats_slot);
    assert!(answers.contains(&503), "{answers:?}");
    assert_eq!(
        answers.contains(&201),
        !seats_without_replica,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| matches!(s, 201 | 503)),
        "{answers:?}"
    );
    let listed: std::collections::HashSet<String> = a
        .list_all(&admin.token, "limit=100")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        users.iter().all(|user| listed.contains(&user.id)),
        "every session, listed from every master, after the failover"
    );
    // The event stream opened before the kill goes on: a logout on a master with its replica
    // arrives in it.
    let logged_out = users[1..]
        .iter()
        .find(|user| a.delete("/sessions/current", &user.token).status == 204)
        .expect("a user on a master with its replica logs out");
    let arrived = std::iter::from_fn(|| events.next_event(Duration::from_secs(20)))
        .any(|(_, event)| event["data"]["id"] == logged_out.id.as_str());
    assert!(arrived, "the logout's event arrives after the failover");
    eprintln!(
        "failover after {:?}: {} validations answered 200 and {} answered 503 meanwhile; {} changes acknowledged around it; the node connected to the cluster afresh {} times",
        promoted - killed,
        during(200),
        during(503),
        acknowledged.len(),
        a.log().matches("connected to the cluster afresh").count()
    );
}

#[test]
fn a_login_whose_node_died_before_confirming_its_seat_still_holds_it() {
    let Some(cluster) = RedisCluster::shared() else {
        return;
    };
    let prefix = format!("lapsed-{}:", unique());
    let a = node(
        cluster,
        "NODE-A",
        &prefix,
        &[("SESSIOND_ORGANISATION_SEATS", "Acme=2")],
    );
    let acme = |user: &str| json!({"user_id": user, "name": user, "ip_address": "10.0.0.1", "organisation": "Acme"});
    let ann = a.login_as(&acme("ann"));
    // As if her node had died between making her session and confirming its seat: the
    // organisation's seats (a hash in their own slot) hold only her reservation, long lapsed.
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let mut redis = redis::cluster::ClusterClient::new(nodes)
        .and_then(|c| c.get_connection())
        .expect("the cluster answers");
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}o:Acme"))
        .arg("ann")
        .arg("p1")
        .query(&mut redis)
        .unwrap();
    assert_eq!(a.create(&acme("bob")).status, 201);
    // Full: Ann's slot is asked, her session vouches for her seat.
    a.create(&acme("cara")).problem(409, "seat-limit");
    assert_eq!(a.delete("/sessions/current", &ann.token).status, 204);
    assert_eq!(a.create(&acme("cara")).status, 201);
}

/// What a node acknowledges is in the cluster the moment it answers: killed (`SIGKILL`) right
/// after, another node finds every login, every logout and every seat as acknowledged.
#[test]
fn what_a_node_acknowledged_survives_its_kill_9() {
    let Some(cluster) = RedisCluster::shared() else {
        return;
    };
    let prefix = format!("killed-{}:", unique());
    let seats = [("SESSIOND_ORGANISATION_SEATS", "Acme=3")];
    let a = node(cluster, "NODE-A", &prefix, &seats);
    let acme = |user: &str| json!({"user_id": user, "name": user, "ip_address": "10.0.0.1", "organisation": "Acme"});
    let on: Vec<Login> = (0..40)
        .map(|i| a.login(&format!("on-{i}-{}", unique()), "10.1.0.1"))
        .collect();
    let ended: Vec<Login> = (0..20)
        .map(|i| a.login(&format!("off-{i}-{}", unique()), "10.1.0.1"))
        .collect();
    for login in &ended {
        assert_eq!(a.delete("/sessions/current", &login.token).status, 204);
    }
    let seated = [a.login_as(&acme("ann")), a.login_as(&acme("bob"))];
    a.kill();

    let b = node(cluster, "NODE-B", &prefix, &seats);
    assert!(on.iter().all(|login| b.validates(&login.token)));
    for login in &ended {
        b.get("/sessions/current", &login.token)
            .problem(401, "unauthorized");
    }
    assert!(seated.iter().all(|login| b.validates(&login.token)));
    // Ann's and Bob's seats were kept: one is left, for one new user.
    assert_eq!(b.create(&acme("cara")).status, 201);
    b.create(&acme("dan")).problem(409, "seat-limit");
}
