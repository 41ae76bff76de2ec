//! Webhooks, checked by a receiver that verifies every signature with the `standardwebhooks`
//! package: signed deliveries, retried through an outage until each event arrives.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::helpers::{spawn_app_with, unique, wait_until};

/// The Python with `standardwebhooks` that scripts/test installs, if there is one.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("SESSIOND_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/python")
        });
    let usable = Command::new(&path)
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(path);
    }
    let why = "the standardwebhooks package is not installed (scripts/test installs it into target/tools)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("*** SKIPPED: {why}");
    None
}

/// A receiver process and what it has been sent.
struct Receiver {
    child: Child,
    port: u16,
    deliveries: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver(python: &PathBuf, secret: &str, fail_first: usize) -> Receiver {
    let mut child = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py"))
        .env("WEBHOOK_SECRET", secret)
        .env("FAIL_FIRST", fail_first.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the receiver starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let port = first["port"].as_u64().unwrap() as u16;
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let sink = deliveries.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(&line).unwrap());
        }
    });
    Receiver {
        child,
        port,
        deliveries,
    }
}

pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[test]
fn every_event_is_delivered_signed_and_retried_through_an_outage() {
    let Some(python) = python() else { return };
    let secret = secret();
    // The first three deliveries meet an outage (500).
    let receiver = receiver(&python, &secret, 3);
    let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
    let app = spawn_app_with(|s| {
        s.webhook_url = Some(url.clone());
        s.webhook_secret = Some(sessiond::webhooks::WebhookSecret::parse(&secret).unwrap());
    });
    let logins: Vec<String> = (0..3)
        .map(|n| app.login(&unique(), &format!("10.9.0.{n}")).id)
        .collect();

    // The first retry comes within 10 s; allow for a second round.
    wait_until(
        Duration::from_secs(40),
        "every login's event is delivered",
        || {
            let sessions = delivered_sessions(&receiver);
            logins.iter().all(|id| sessions.contains(id))
        },
    );
    let all = receiver.deliveries.lock().unwrap().clone();
    assert!(
        all.iter().all(|d| d["verified"] == true),
        "every signature verifies: {all:#?}"
    );
    assert_eq!(all.iter().filter(|d| d["status"] == 500).count(), 3);
    for delivery in accepted(&receiver) {
        let (id, event) = (&delivery["id"], &delivery["event"]);
        assert_eq!(&event["id"], id, "webhook-id is the event id");
        assert_eq!(event["type"], "session-created");
    }
    let metrics = app.send("GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("sessiond_webhook_deliveries_total{result=\"failed\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sessiond_webhook_queue_depth"),
        "{metrics}"
    );
}

#[test]
fn queued_deliveries_survive_kill_9_and_arrive_created_before_ended() {
    let Some(python) = python() else { return };
    let secret = secret();
    let dir = std::env::temp_dir().join(format!("sessiond-webhooks-{}", unique()));
    let dead = format!(
        "http://127.0.0.1:{}/hooks",
        crate::redis_server::free_port()
    );
    let start = |url: &str| {
        crate::process::Process::start(&[
            ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
            ("SESSIOND_WEBHOOK_URL", url),
            ("SESSIOND_WEBHOOK_SECRET", &secret),
        ])
        .unwrap()
    };
    // Nobody listens yet: every delivery waits to be retried. Each session is created and
    // ended, so its two events must arrive in that order.
    let server = start(&dead);
    let logins: Vec<String> = (0..3)
        .map(|n| {
            let login = server.login(&unique(), &format!("10.9.1.{n}"));
            assert_eq!(server.delete("/sessions/current", &login.token).status, 204);
            login.id
        })
        .collect();
    // Acknowledged, then a crash: no chance to save anything.
    server.kill();

    // The receiver fails the first attempts again: retries keep the order too.
    let receiver = receiver(&python, &secret, 2);
    let server = start(&format!("http://127.0.0.1:{}/hooks", receiver.port));
    assert!(
        server.log().contains("resuming 6 webhook deliveries"),
        "{}",
        server.log()
    );
    wait_until(Duration::from_secs(40), "every event arrives", || {
        accepted(&receiver).len() >= 6
    });
    for id in &logins {
        let kinds: Vec<String> = accepted(&receiver)
            .iter()
            .filter(|d| d["event"]["data"]["id"] == id.as_str())
            .map(|d| d["event"]["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["session-created", "session-ended"], "session {id}");
    }
    assert!(receiver
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .all(|d| d["verified"] == true));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stop_is_prompt_whatever_the_receiver_does() {
    // A receiver that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", silent.local_addr().unwrap());
    let dir = std::env::temp_dir().join(format!("sessiond-webhooks-{}", unique()));
    let server = crate::process::Process::start(&[
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ("SESSIOND_WEBHOOK_URL", &url),
        ("SESSIOND_WEBHOOK_SECRET", &secret()),
    ])
    .unwrap();
    for n in 0..8 {
        server.login(&unique(), &format!("10.9.2.{n}"));
    }
    let started = std::time::Instant::now();
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        started.elapsed()
    );
    drop(silent);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis, a receiver that fails its first `fail_first` deliveries, and two nodes on that
/// Redis sending it webhooks.
fn webhook_cluster(
    fail_first: usize,
) -> Option<(
    crate::redis_server::RedisServer,
    Receiver,
    crate::process::Process,
    crate::process::Process,
)> {
    let python = python()?;
    let redis = crate::redis_server::RedisServer::start()?;
    let secret = secret();
    let receiver = receiver(&python, &secret, fail_first);
    let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
    let prefix = format!("{}:", unique());
    let node = |name: &str| {
        crate::process::Process::start(&[
            ("SESSIOND_STORE", redis.url().as_str()),
            ("SESSIOND_SERVER_NAME", name),
            ("SESSIOND_REDIS_PREFIX", prefix.as_str()),
            ("SESSIOND_WEBHOOK_URL", url.as_str()),
            ("SESSIOND_WEBHOOK_SECRET", secret.as_str()),
        ])
        .unwrap()
    };
    let (a, b) = (node("NODE-A"), node("NODE-B"));
    Some((redis, receiver, a, b))
}

/// The sessions whose events the receiver took (answered 2xx).
fn delivered_sessions(receiver: &Receiver) -> HashSet<String> {
    accepted(receiver)
        .iter()
        .filter_map(|d| d["event"]["data"]["id"].as_str().map(String::from))
        .collect()
}

/// The deliveries the receiver took (answered 2xx).
fn accepted(receiver: &Receiver) -> Vec<Value> {
    receiver
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == 204)
        .cloned()
        .collect()
}

#[test]
fn two_nodes_on_redis_deliver_each_event_once_between_them() {
    let Some((_redis, receiver, a, b)) = webhook_cluster(2) else {
        return;
    };
    let mut logins = Vec::new();
    for n in 0..4 {
        logins.push(a.login(&unique(), &format!("10.9.2.{n}")).id);
        logins.push(b.login(&unique(), &format!("10.9.3.{n}")).id);
    }
    wait_until(
        Duration::from_secs(40),
        "every login's event arrives",
        || {
            let sessions = delivered_sessions(&receiver);
            logins.iter().all(|id| sessions.contains(id))
        },
    );
    // Each node sees every event; the claims in Redis let one of them deliver it.
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for delivery in accepted(&receiver) {
        *per_id
            .entry(delivery["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(per_id.values().all(|&n| n == 1), "{per_id:?}");
    assert_eq!(per_id.len(), logins.len());
}

#[test]
fn a_node_that_stops_hands_its_deliveries_to_the_other_at_once() {
    // The first attempt fails; the node that made it holds the delivery for its retry.
    let Some((_redis, receiver, a, b)) = webhook_cluster(1) else {
        return;
    };
    let login = a.login(&unique(), "10.9.4.1");
    let failed = |node: &crate::process::Process| {
        node.send("GET", "/metrics", &[], b"")
            .body
            .contains("sessiond_webhook_deliveries_total{result=\"failed\"} 1")
    };
    wait_until(
        Duration::from_secs(10),
        "one node's first attempt fails",
        || failed(&a) || failed(&b),
    );
    let (holder, other) = if failed(&a) { (a, b) } else { (b, a) };
    let (status, log) = holder.terminate();
    assert!(status.success(), "{log}");
    // Without the release the other node would wait out the holder's 60 s lease.
    wait_until(
        Duration::from_secs(20),
        "the other node delivers it",
        || {
            accepted(&receiver)
                .iter()
                .any(|d| d["event"]["data"]["id"] == login.id.as_str())
        },
    );
    drop(other);
}

/// A delivery's claim on Redis carries its progress and holds through its backoff: another
/// node neither takes it over while its holder waits to retry, nor starts its backoff again
/// when it does take over; and while Redis is unreachable nobody delivers.
#[test]
fn a_claim_holds_through_the_backoff_and_hands_over_its_progress() {
    use sessiond::webhooks::{Claim, Claims, Progress, RedisClaims};
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let prefix = format!("claims-{}:", unique());
    let runtime = actix_web::rt::System::new();
    let link = || {
        let target = sessiond::store::RedisTarget::parse(&redis.url()).unwrap();
        runtime
            .block_on(sessiond::store::RedisLink::connect(target, false))
            .unwrap()
    };
    let a = RedisClaims::new(link(), &prefix, "a".into());
    let b = RedisClaims::new(link(), &prefix, "b".into());
    let lease = Duration::from_millis(200);
    assert_eq!(a.claim("e1", lease), Claim::Mine(Progress::default()));
    assert_eq!(b.claim("e1", lease), Claim::Others);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let progress = Progress {
        attempts: 7,
        first_attempt_ms: now - 1_000_000,
        due_ms: now + 600_000,
    };
    a.progress("e1", progress, lease);
    // Far beyond the lease of an attempt, but within the backoff: still a's.
    std::thread::sleep(lease * 2);
    assert_eq!(b.claim("e1", lease), Claim::Others);
    // a stops and gives it up: b goes on from attempt 7, not from the first.
    a.release("e1");
    assert_eq!(b.claim("e1", lease), Claim::Mine(progress));
    b.settle("e1");
    assert_eq!(a.claim("e1", lease), Claim::Done);
    drop(redis);
    assert_eq!(
        a.claim("e2", lease),
        Claim::Unknown,
        "no claim, no delivery"
    );
}
