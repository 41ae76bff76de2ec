//! The binary: settings, the printed service key, the spec export, the health check and
//! graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::Client;
use crate::process::{sessiond, Process};

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (variable, value) in [
        ("SESSIOND_IDLE_TIMEOUT", "abc"),
        ("SESSIOND_IDLE_TIMEOUT", "0"),
        ("SESSIOND_MAX_LIFETIME", "-1"),
        ("SESSIOND_MAX_BODY", "1MB"),
        ("SESSIOND_CONCURRENT_SESSIONS", "sometimes"),
        ("SESSIOND_SERVICE_KEYS", ""),
        ("SESSIOND_SERVICE_KEYS", "a,,b"),
        ("SESSIOND_SERVICE_KEYS", "a-key-of-31-characters-no-more-"),
        ("SESSIOND_BIND", "nowhere"),
        ("SESSIOND_SERVER_NAME", ""),
        ("SESSIOND_SNAPSHOT_INTERVAL", "0"),
        ("SESSIOND_AUDIT_CAPACITY", "lots"),
        ("SESSIOND_CORS_ORIGINS", "app.example.com"),
        ("SESSIOND_DEMO", "perhaps"),
        ("SESSIOND_ORGANISATION_SEATS", "Acme="),
        ("SESSIOND_ORGANISATION_SEATS", "=5"),
        ("SESSIOND_ORGANISATION_SEATS", "Acme=-1"),
        ("SESSIOND_ORGANISATION_SEATS", "Acme=5,Acme=6"),
        ("SESSIOND_MAX_SESSIONS_PER_USER", "-1"),
        ("SESSIOND_WEBHOOK_URL", "ftp://hooks.example.com/"),
        ("SESSIOND_WEBHOOK_URL", "hooks.example.com"),
        ("SESSIOND_WEBHOOK_SECRET", "whsec_c2hvcnQgc2VjcmV0"),
        (
            "SESSIOND_WEBHOOK_SECRET",
            "a-plain-secret-without-its-prefix",
        ),
        // One without the other.
        ("SESSIOND_WEBHOOK_URL", "https://hooks.example.com/sessiond"),
    ] {
        let output = sessiond().env(variable, value).output().unwrap();
        assert!(
            !output.status.success(),
            "{variable}={value:?} was accepted"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{variable}={value:?}: {stderr}"
        );
        assert!(stderr.contains(variable), "{variable}={value:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if variable.ends_with("_SECRET") || variable.ends_with("_KEYS") {
            assert!(
                value.is_empty() || !stderr.contains(value),
                "a secret repeated: {stderr}"
            );
        }
    }
}

#[test]
fn a_taken_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = sessiond()
        .env("SESSIOND_BIND", &address)
        .env("SESSIOND_SERVICE_KEYS", crate::helpers::SERVICE_KEY)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SESSIOND_BIND") && stderr.contains(&address),
        "{stderr}"
    );
}

#[test]
fn the_openapi_subcommand_prints_the_spec() {
    let output = sessiond().arg("openapi").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        sessiond::openapi::spec_json()
    );
}

#[test]
fn the_healthcheck_subcommand_probes_healthz() {
    let server = Process::start(&[]).unwrap();
    let healthy = sessiond()
        .args(["healthcheck", "--url", &server.url("")])
        .output()
        .unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    // One meaning of the base URL everywhere: the variable `sessions` reads works here too.
    let by_url = sessiond()
        .arg("healthcheck")
        .env("SESSIOND_URL", server.url("/"))
        .output()
        .unwrap();
    assert!(by_url.status.success(), "{by_url:?}");
    let by_bind = sessiond()
        .arg("healthcheck")
        .env("SESSIOND_BIND", server.address.to_string())
        .output()
        .unwrap();
    assert!(by_bind.status.success(), "{by_bind:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unhealthy = sessiond()
        .args(["healthcheck", "--url", &format!("http://{closed}")])
        .output()
        .unwrap();
    assert_eq!(unhealthy.status.code(), Some(1));
    let not_ok = sessiond()
        .args(["healthcheck", "--url", &server.url("/nope")])
        .output()
        .unwrap();
    assert_eq!(not_ok.status.code(), Some(1));
}

#[test]
fn without_keys_a_server_reachable_beyond_loopback_refuses_to_start() {
    let output = sessiond()
        .env("SESSIOND_BIND", "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("SESSIOND_SERVICE_KEYS"), "{stderr}");
    assert!(
        !stderr.contains("X-Service-Key:"),
        "no key was made: {stderr}"
    );
}

#[test]
fn without_keys_one_is_generated_printed_once_and_the_server_stops_on_sigterm() {
    let mut child = sessiond()
        .env("SESSIOND_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut key = None;
    let mut address = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("X-Service-Key: ") {
            key = Some(k.to_string());
        }
        if let Some((_, a)) = line.split_once("listening on http://") {
            address = Some(a.trim().to_string());
            break;
        }
    }
    let (key, address) = (
        key.expect("the key is printed"),
        address.expect("the address is printed"),
    );
    assert!(key.len() >= 43);
    let client = Client::new(address.parse().unwrap());
    let response = client.send(
        "POST",
        "/sessions",
        &[
            ("X-Service-Key", &key),
            ("Content-Type", "application/json"),
        ],
        br#"{"user_id":"u","name":"N","ip_address":"10.0.0.1"}"#,
    );
    assert_eq!(response.status, 201);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits cleanly: {exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().all(|l| !l.contains(&key)),
        "the key is printed only once"
    );
}
