//! Slow and abusive clients: sessiond keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::helpers::{spawn_app, unique};

fn connect(app: &crate::helpers::TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.address).expect("sessiond accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent.
fn read_to_close(mut stream: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_slow_loris_is_cut_off_while_others_are_served() {
    let app = spawn_app();
    let started = Instant::now();
    let mut loris = connect(&app);
    let dripping = thread::spawn(move || {
        // One header byte every 500 ms: never a complete request head.
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " {
            if loris.write_all(&[*byte]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(500));
        }
        read_to_close(loris)
    });
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(app.send("GET", "/healthz", &[], b"").status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "others are served at once"
        );
        thread::sleep(Duration::from_millis(300));
    }
    let answer = dripping.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the slow client was cut off by the request timeout"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
}

#[test]
fn a_body_that_never_finishes_times_out_and_changes_nothing() {
    let app = spawn_app();
    let mut stalled = connect(&app);
    let head = "POST /sessions HTTP/1.1\r\nHost: x\r\nX-Service-Key: test-service-key\r\n\
                Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"user_id\":";
    stalled.write_all(head.as_bytes()).unwrap();
    let login = app.login(&unique(), "10.0.0.1");
    assert!(app.validates(&login.token), "others are served meanwhile");
    let answer = read_to_close(stalled);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "the stalled request gets a 4xx or is closed: {answer:?}"
    );
    assert_eq!(
        app.indexes().rows,
        1,
        "the unfinished login created nothing"
    );
}

#[test]
fn oversized_headers_are_refused_by_the_http_layer() {
    let app = spawn_app();
    let mut stream = connect(&app);
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let huge = "a".repeat(64 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes());
    let answer = read_to_close(stream);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{:?}",
        &answer[..answer.len().min(80)]
    );
    // A flood of ordinary headers, 290 KiB of them.
    let many: String = (0..3000)
        .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(90)))
        .collect();
    let mut stream = connect(&app);
    let _ = stream.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{many}\r\n").as_bytes(),
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{:?}",
        &answer[..answer.len().min(80)]
    );
    assert_eq!(app.send("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn thousands_of_idle_connections_do_not_stop_service() {
    let app = spawn_app();
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| TcpStream::connect(app.address).ok())
        .collect();
    assert!(idle.len() >= 1900, "opened {} idle connections", idle.len());
    let t = Instant::now();
    let login = app.login(&unique(), "10.0.0.1");
    assert!(app.validates(&login.token));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "served in {:?}",
        t.elapsed()
    );
    drop(idle);
}

#[test]
fn a_head_with_too_many_headers_is_a_431_problem_on_any_operation() {
    let app = crate::helpers::spawn_app();
    let names: Vec<String> = (0..70).map(|i| format!("X-Extra-{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    for (method, path) in [
        ("GET", "/healthz"),
        ("POST", "/sessions"),
        ("GET", "/sessions"),
    ] {
        let problem = app
            .send(method, path, &headers, b"")
            .problem(431, "header-fields-too-large");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("at most 64 headers"),
            "{problem}"
        );
    }
}
