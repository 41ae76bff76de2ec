//! What an operator meets running sessiond: the start-up line, warnings for settings that are
//! ignored or contradict each other, quiet probes, `HEAD`, and a data directory left as found.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::unique;
use crate::process::{sessiond, Process};

#[test]
fn start_up_says_the_version_and_the_settings_in_effect_without_secrets() {
    let server = Process::start(&[
        ("SESSIOND_STORE", "memory"),
        ("SESSIOND_ORGANISATION_SEATS", "Acme=5"),
    ])
    .unwrap();
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains(concat!("sessiond ", env!("CARGO_PKG_VERSION"), " running")))
        .unwrap_or_else(|| panic!("{log}"));
    for setting in [
        "idle_timeout=1800s",
        "concurrent_sessions=deny-other-ip",
        "organisation_seats=Acme=5",
        "service_keys=1 configured",
    ] {
        assert!(line.contains(setting), "{setting}: {line}");
    }
    assert!(!log.contains(crate::helpers::SERVICE_KEY), "{log}");
}

#[test]
fn a_mistyped_variable_and_contradicting_settings_are_warned_of() {
    let server = Process::start(&[
        ("SESSIOND_IDLE_TIMEOUTT", "60"),
        ("SESSIOND_IDLE_TIMEOUT", "3600"),
        ("SESSIOND_MAX_LIFETIME", "10"),
        ("SESSIOND_REDIS_MIN_REPLICAS", "1"),
    ])
    .unwrap();
    let log = server.log();
    assert!(
        log.contains("SESSIOND_REDIS_MIN_REPLICAS (1) is set but SESSIOND_STORE is memory"),
        "{log}"
    );
    assert!(
        log.contains("SESSIOND_IDLE_TIMEOUTT is set but no setting reads it"),
        "{log}"
    );
    assert!(
        log.contains("SESSIOND_MAX_LIFETIME (10 s) is shorter than SESSIOND_IDLE_TIMEOUT (3600 s)"),
        "{log}"
    );
    assert!(!log.contains("SESSIOND_IDLE_TIMEOUT is set but"), "{log}");
}

#[test]
fn probes_are_logged_quietly_and_head_is_answered_wherever_get_is() {
    let server = Process::start(&[]).unwrap();
    let login = server.login(&unique(), "10.0.0.1");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let head = server.send("HEAD", path, &[], b"");
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty(), "{path}");
        assert_eq!(server.send("GET", path, &[], b"").status, 200);
    }
    let bearer = format!("Bearer {}", login.token);
    let head = server.send(
        "HEAD",
        "/sessions/current",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        server.send("HEAD", "/sessions/current", &[], b"").status,
        401
    );
    let (_, log) = server.terminate();
    assert!(log.contains("HEAD /sessions/current 200"), "{log}");
    assert!(log.contains("client_ip=127.0.0.1"), "{log}");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            !log.contains(&format!("GET {probe} 200")),
            "{probe} at INFO:\n{log}"
        );
    }
}

#[test]
fn an_existing_data_directory_keeps_its_mode_and_a_file_there_is_named() {
    let dir = std::env::temp_dir().join(format!("sessiond-shared-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let server = Process::start(&[("SESSIOND_DATA_DIR", dir.to_str().unwrap())]).unwrap();
    server.login(&unique(), "10.0.0.1");
    assert!(server.terminate().0.success());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the operator's mode is left alone");
    let snapshot = std::fs::metadata(dir.join("sessions.snapshot")).unwrap();
    assert_eq!(snapshot.permissions().mode() & 0o777, 0o600);

    let file = dir.join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let error = Process::start(&[("SESSIOND_DATA_DIR", file.to_str().unwrap())])
        .err()
        .expect("a file is no data directory");
    assert!(error.contains("exists and is not a directory"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_secret_is_not_repeated_and_the_message_stays_whole() {
    let output = sessiond()
        .env("SESSIOND_SERVICE_KEYS", "short")
        .env("SESSIOND_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("shorter than"), "{text}");
    assert!(!text.contains("'short'"), "{text}");
    let output = sessiond()
        .env("SESSIOND_STORE", "rediss://ops:hunter2-password@")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(!text.contains("hunter2"), "{text}");
    let help = sessiond()
        .arg("--help")
        .env(
            "SESSIOND_STORE",
            "rediss://ops:hunter2-password@localhost:1/0",
        )
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("hunter2"));
}

#[test]
fn metrics_tell_the_build_the_store_and_the_data_directory() {
    let dir = std::env::temp_dir().join(format!("sessiond-metrics-{}", unique()));
    let server = Process::start(&[
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ("SESSIOND_SNAPSHOT_INTERVAL", "1"),
        ("SESSIOND_ORGANISATION_SEATS", "Acme=5"),
    ])
    .unwrap();
    server.login(&unique(), "10.0.0.1");
    let scrape = || server.send("GET", "/metrics", &[], b"").body;
    let text = scrape();
    promtool_check(&text);
    for line in [
        concat!(
            "sessiond_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1"
        ),
        "sessiond_store_up 1",
        "sessiond_persistence_failures_total{what=\"journal\"} 0",
        "sessiond_persistence_failures_total{what=\"snapshot\"} 0",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        "a snapshot's age is shown",
        || {
            scrape().lines().any(|l| {
                l.strip_prefix("sessiond_snapshot_age_seconds ")
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|age| (0.0..5.0).contains(&age))
            })
        },
    );
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_redis_metrics_still_answer_and_say_the_store_is_down() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = Process::start(&[("SESSIOND_STORE", url.as_str())]).unwrap();
    let scrape = || server.send("GET", "/metrics", &[], b"");
    assert!(scrape().body.contains("sessiond_store_up 1"));
    drop(redis);
    let down = scrape();
    assert_eq!(down.status, 200);
    assert!(down.body.contains("sessiond_store_up 0"), "{}", down.body);
}

#[test]
fn every_request_has_an_id_echoed_logged_and_named_in_problems() {
    let server = Process::start(&[]).unwrap();
    let given = server.send(
        "GET",
        "/sessions/current",
        &[
            ("X-Request-Id", "support-ticket-42"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        b"",
    );
    assert_eq!(given.header("x-request-id"), Some("support-ticket-42"));
    let problem = given.problem(401, "unauthorized");
    assert_eq!(problem["request_id"], "support-ticket-42");
    // An unusable one is replaced by one made here.
    let made = server.send(
        "GET",
        "/healthz",
        &[("X-Request-Id", "has spaces in it")],
        b"",
    );
    let id = made.header("x-request-id").unwrap().to_string();
    assert!(!id.is_empty() && !id.contains(' '), "{id}");
    // A problem from beyond the handlers (an unknown method) names its request too.
    let odd = server.send("PATCH", "/sessions", &[], b"");
    assert!(odd.json()["request_id"].is_string(), "{}", odd.body);
    let (_, log) = server.terminate();
    assert!(
        log.contains("request_id=support-ticket-42 trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "{log}"
    );
}

#[test]
fn a_data_directory_does_not_stop_the_redis_store() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("sessiond-redis-dir-{}", unique()));
    let server = Process::start(&[
        ("SESSIOND_STORE", url.as_str()),
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
    ])
    .unwrap();
    let login = server.login(&unique(), "10.0.0.1");
    assert!(server.validates(&login.token));
    assert!(
        server
            .log()
            .contains("keeps only this node's queued webhook deliveries"),
        "{}",
        server.log()
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_named_in_each() {
    let server = Process::start(&[("SESSIOND_LOG_FORMAT", "json")]).unwrap();
    let answer = server.send(
        "GET",
        "/sessions/current",
        &[
            ("X-Request-Id", "support-ticket-43"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        b"",
    );
    assert_eq!(answer.status, 401);
    let (_, log) = server.terminate();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key}: {line}");
        }
    }
    let access = lines
        .iter()
        .find(|l| l["request_id"] == "support-ticket-43")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(access["target"], "access");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/sessions/current");
    assert_eq!(access["status"], 401);
    assert_eq!(access["client_ip"], "127.0.0.1");
    assert_eq!(access["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(access["duration_ms"].as_f64().is_some(), "{access}");
    assert!(lines
        .iter()
        .any(|l| l["message"].as_str().unwrap().contains(" running: bind=")));
}

#[test]
fn a_data_directory_that_cannot_be_written_stops_start_up_in_one_line() {
    // Not writable even by root: sysfs refuses new files.
    let error = Process::start(&[("SESSIOND_DATA_DIR", "/sys")])
        .err()
        .expect("/sys is no data directory");
    let said: Vec<&str> = error
        .lines()
        .filter(|l| l.contains("SESSIOND_DATA_DIR"))
        .collect();
    assert_eq!(said.len(), 1, "{error}");
    assert!(said[0].contains("/sys is not writable"), "{error}");
}

#[test]
fn a_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    let Some(mut redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = Process::start(&[("SESSIOND_STORE", url.as_str())]).unwrap();
    let login = server.login(&unique(), "10.0.0.1");
    redis.stop();
    for _ in 0..20 {
        let answer = server.get("/sessions/current", &login.token);
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(server.send("GET", "/readyz", &[], b"").status, 503);
    }
    // Long enough for the change feed and the event reader to retry a few times.
    crate::helpers::wait_until(
        std::time::Duration::from_secs(10),
        "the outage is logged",
        || server.log().contains("Redis unreachable"),
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    redis.restart();
    crate::helpers::wait_until(
        std::time::Duration::from_secs(15),
        "sessiond serves again",
        || server.send("GET", "/readyz", &[], b"").status == 200,
    );
    crate::helpers::wait_until(
        std::time::Duration::from_secs(5),
        "the outage's end is logged",
        || server.log().contains("Redis reachable again after"),
    );
    let (_, log) = server.terminate();
    let count = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("Redis unreachable"), 1, "{log}");
    assert_eq!(count("Redis reachable again after"), 1, "{log}");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains("Redis unreachable") && !l.contains("Redis reachable again"))
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
}

/// `promtool check metrics` (Prometheus' own linter) finds no problem in `text`.
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        let why = "promtool is not installed (scripts/test installs the Debian package prometheus)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the metrics lint cannot be skipped in CI: {why}");
        }
        eprintln!("\n*** SKIPPED promtool check metrics: {why} ***\n");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "{said}\n{text}"
    );
}

/// A container runtime kills 10 s after SIGTERM: everything that could hold a stop up is
/// there at once (an event stream, a keep-alive connection, a request whose head never ends,
/// webhook deliveries retrying against a closed port, a data directory to snapshot).
#[test]
fn a_stop_signal_ends_the_process_within_ten_seconds_whatever_is_open() {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("sessiond-stop-{}", unique()));
    let closed = crate::redis_server::free_port();
    let hook = format!("http://127.0.0.1:{closed}/hook");
    let secret = crate::webhooks::secret();
    let server = Process::start(&[
        ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ("SESSIOND_WEBHOOK_URL", hook.as_str()),
        ("SESSIOND_WEBHOOK_SECRET", secret.as_str()),
    ])
    .unwrap();
    for _ in 0..20 {
        server.login(&unique(), "10.0.0.1");
    }
    let admin = server.admin();
    let address = server
        .client
        .url("")
        .trim_start_matches("http://")
        .to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        admin.token
    )
    .unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    slow.write_all(b"POST /sessions HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let idle = std::net::TcpStream::connect(&address).unwrap();
    let started = std::time::Instant::now();
    let (status, log) = server.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{log}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}\n{log}");
    assert!(log.contains("saved 21 sessions"), "{log}");
    drop((stream, slow, idle));
    std::fs::remove_dir_all(&dir).unwrap();
}
