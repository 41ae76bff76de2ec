//! Redis without a single point of failure: the topology of `examples/sentinel` (a master, two
//! replicas, three sentinels, two sessiond nodes with its settings) on loopback ports, and a
//! master killed under load.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{unique, wait_until};
use crate::process::Process;
use crate::redis_server::{free_port, RedisServer};

const MASTER_NAME: &str = "sessiond";

fn example(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/sentinel")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A master, two replicas and three sentinels, configured as the example is.
struct Sentinels {
    master: RedisServer,
    _replicas: Vec<RedisServer>,
    sentinels: Vec<(Child, u16)>,
    dir: PathBuf,
}

impl Sentinels {
    fn start() -> Option<Self> {
        let master = RedisServer::start()?;
        let replica = || {
            RedisServer::start_with(vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master.port.to_string(),
            ])
        };
        let replicas = vec![replica(), replica()];
        let dir = std::env::temp_dir().join(format!("sessiond-sentinels-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let sentinels = (0..3)
            .map(|n| {
                let port = free_port();
                // The example's file, with this test's ports.
                let conf = example("sentinel.conf")
                    .replace("port 26379", &format!("port {port}\nbind 127.0.0.1"))
                    .replace(
                        &format!("monitor {MASTER_NAME} redis-master 6379"),
                        &format!("monitor {MASTER_NAME} 127.0.0.1 {}", master.port),
                    );
                let path = dir.join(format!("sentinel-{n}.conf"));
                std::fs::write(&path, conf).unwrap();
                let child = Command::new("redis-server")
                    .arg(&path)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server runs as a sentinel");
                (child, port)
            })
            .collect();
        let ha = Sentinels {
            master,
            _replicas: replicas,
            sentinels,
            dir,
        };
        // Ready when every sentinel knows both replicas and both other sentinels: only then
        // can they agree on a failover.
        wait_until(
            Duration::from_secs(30),
            "the sentinels know each other",
            || {
                ha.sentinels.iter().all(|(_, port)| {
                    let count = |what: &str| {
                        sentinel_query(*port, &["SENTINEL", what, MASTER_NAME])
                            .map_or(0, |v: Vec<redis::Value>| v.len())
                    };
                    count("replicas") == 2 && count("sentinels") == 2
                })
            },
        );
        Some(ha)
    }

    /// The URL the example gives its nodes, with this test's sentinels.
    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The master's port as the first sentinel that answers names it.
    fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(_, port)| {
            sentinel_query::<(String, u16)>(
                *port,
                &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
            )
            .map(|(_, port)| port)
        })
    }

    /// The settings the example's nodes run with (its `SESSIOND_*` lines), pointed here.
    fn node_settings(&self) -> Vec<(String, String)> {
        let compose = example("compose.yaml");
        let mut settings: HashMap<String, String> = compose
            .lines()
            .filter_map(|line| line.trim().split_once(": "))
            .filter(|(name, value)| name.starts_with("SESSIOND_") && !value.contains("${"))
            .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
            .collect();
        let store = settings
            .get_mut("SESSIOND_STORE")
            .expect("the example names its store");
        assert!(store.starts_with("redis+sentinel://"), "{store}");
        assert!(store.ends_with(&format!("/{MASTER_NAME}")), "{store}");
        *store = self.url();
        settings.into_iter().collect()
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sentinel_query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(&mut conn).ok()
}

fn node(ha: &Sentinels, name: &str) -> Process {
    let mut settings = ha.node_settings();
    settings.push(("SESSIOND_SERVER_NAME".into(), name.into()));
    settings.push(("SESSIOND_ORGANISATION_SEATS".into(), "Seated=1".into()));
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Process::start(&settings).unwrap_or_else(|e| panic!("node {name} starts: {e}"))
}

/// What the load saw: every acknowledged login's token, the statuses of logins and of
/// validations on the other node, and when each node first logged a user in after the kill.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<String>,
    statuses: HashMap<u16, usize>,
    validations: HashMap<u16, usize>,
    recovered: [Option<Instant>; 2],
}

#[test]
fn a_failover_loses_no_acknowledged_session_and_needs_no_restart() {
    let Some(mut ha) = Sentinels::start() else {
        return;
    };
    let nodes = Arc::new([node(&ha, "NODE-A"), node(&ha, "NODE-B")]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let killed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (nodes, seen, killed, stop) =
                (nodes.clone(), seen.clone(), killed.clone(), stop.clone());
            thread::spawn(move || {
                let (here, there) = (worker % 2, (worker + 1) % 2);
                while !stop.load(Ordering::SeqCst) {
                    let login = nodes[here].create(&json!({
                        "user_id": unique(), "name": "Failover", "ip_address": "10.0.0.1"
                    }));
                    let mut record = seen.lock().unwrap();
                    *record.statuses.entry(login.status).or_default() += 1;
                    if login.status != 201 {
                        continue;
                    }
                    let token = login.json()["token"].as_str().unwrap().to_string();
                    if killed.lock().unwrap().is_some() && record.recovered[here].is_none() {
                        record.recovered[here] = Some(Instant::now());
                    }
                    record.acknowledged.push(token.clone());
                    drop(record);
                    // At once valid on the other node, or 503 while it has no master.
                    let check = nodes[there].get("/sessions/current", &token).status;
                    *seen.lock().unwrap().validations.entry(check).or_default() += 1;
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(10), "logins flow", || {
        seen.lock().unwrap().acknowledged.len() >= 50
    });
    let old_master = ha.master.port;
    ha.master.stop();
    *killed.lock().unwrap() = Some(Instant::now());
    let started = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "Sentinel promotes a replica",
        || ha.master_port().is_some_and(|port| port != old_master),
    );
    let switched = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "both nodes log users in again",
        || seen.lock().unwrap().recovered.iter().all(Option::is_some),
    );
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("no request failed unexpectedly");
    }
    let seen = seen.lock().unwrap();
    for (node, recovered) in seen.recovered.iter().enumerate() {
        let after_switch = recovered.unwrap().saturating_duration_since(switched);
        eprintln!(
            "node {node}: serving again {:.1} s after the kill, {:.1} s after Sentinel's switch",
            recovered.unwrap().duration_since(started).as_secs_f64(),
            after_switch.as_secs_f64()
        );
        assert!(after_switch < Duration::from_secs(5), "{after_switch:?}");
    }
    eprintln!(
        "logins {:?}, validations {:?}",
        seen.statuses, seen.validations
    );
    assert!(
        seen.statuses.keys().all(|s| [201, 503].contains(s)),
        "logins: {:?}",
        seen.statuses
    );
    assert!(
        seen.validations.keys().all(|s| [200, 503].contains(s)),
        "validations: {:?}",
        seen.validations
    );
    // Every acknowledged login survived the failover, on both nodes.
    for token in &seen.acknowledged {
        for node in nodes.iter() {
            assert_eq!(
                node.get("/sessions/current", token).status,
                200,
                "an acknowledged session was lost"
            );
        }
    }
    // The rules still hold across the nodes on the new master.
    let user = unique();
    let first =
        nodes[0].create(&json!({"user_id": user, "name": "Policy", "ip_address": "10.0.0.1"}));
    assert_eq!(first.status, 201, "{}", first.body);
    nodes[1]
        .create(&json!({"user_id": user, "name": "Policy", "ip_address": "10.0.0.2"}))
        .problem(409, "login-denied");
    let seated = nodes[0].create(&json!({"user_id": unique(), "name": "Seat", "organisation": "Seated", "ip_address": "10.0.0.1"}));
    assert_eq!(seated.status, 201, "{}", seated.body);
    nodes[1]
        .create(&json!({"user_id": unique(), "name": "Seat", "organisation": "Seated", "ip_address": "10.0.0.1"}))
        .problem(409, "seat-limit");
    for node in nodes.iter() {
        assert_eq!(node.send("GET", "/readyz", &[], b"").status, 200);
        // An outage is told once as it starts and once as it ends (a loaded machine may add a
        // short one of its own), not once per 503.
        let log = node.log();
        let followed = log
            .find("as master \"sessiond\"; following it")
            .unwrap_or_else(|| panic!("{log}"));
        let (before, after) = log.split_at(followed);
        let (starts, ends) = (
            log.matches("Redis unreachable").count(),
            log.matches("Redis reachable again after").count(),
        );
        assert!(starts == ends, "{log}");
        assert!(
            (1..=3).contains(&before.matches("Redis unreachable").count()),
            "{log}"
        );
        // After the switch only calls already on their way to the old master may still fail:
        // each such outage is over at once.
        let brief = after.matches("Redis reachable again after 0.0 s").count()
            + after.matches("Redis reachable again after 0.1 s").count();
        assert!(after.matches("Redis unreachable").count() <= brief, "{log}");
    }
}

/// With `SESSIOND_REDIS_MIN_REPLICAS=1` and no replica to confirm, a login is not
/// acknowledged: `503`, said once in the log, and the node still validates and lists.
#[test]
fn without_a_replica_to_confirm_changes_answer_503() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = Process::start(&[
        ("SESSIOND_STORE", url.as_str()),
        ("SESSIOND_REDIS_MIN_REPLICAS", "1"),
    ])
    .unwrap();
    for _ in 0..3 {
        let login =
            server.create(&json!({"user_id": unique(), "name": "N", "ip_address": "10.0.0.1"}));
        login.problem(503, "unavailable");
    }
    assert_eq!(server.send("GET", "/readyz", &[], b"").status, 200);
    let log = server.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("0 of the 1 replicas SESSIOND_REDIS_MIN_REPLICAS asks for"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
}
