//! The binary: settings, the printed service key, the spec export and graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn sessiond() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIOND_") {
            command.env_remove(name);
        }
    }
    command
}

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
        ("SESSIOND_BIND", "nowhere"),
        ("SESSIOND_SERVER_NAME", ""),
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
    }
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
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(&format!("http://{address}/sessions"))
        .header("X-Service-Key", &key)
        .header("Content-Type", "application/json")
        .send(r#"{"user_id":"u","name":"N","ip_address":"10.0.0.1"}"#)
        .unwrap();
    assert_eq!(response.status(), 201);

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
