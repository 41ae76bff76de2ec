//! `sessiond sessions …` run as a real binary against a real server.

use assert_cmd::Command;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, unique, Login, TestApp, SERVICE_KEY};

fn cli(app: &TestApp, token: Option<&str>) -> Command {
    let mut command = Command::cargo_bin("sessiond").unwrap();
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIOND_") {
            command.env_remove(name);
        }
    }
    command.env("SESSIOND_URL", app.url(""));
    if let Some(token) = token {
        command.env("SESSIOND_TOKEN", token);
    }
    command.arg("sessions");
    command
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn people(app: &TestApp, org: &str, n: usize) -> Vec<Login> {
    (0..n)
        .map(|i| {
            app.login_as(&json!({"user_id": unique(), "name": format!("Person {i}"),
                "organisation": org, "ip_address": format!("10.7.0.{i}"), "server_name": "APP-2"}))
        })
        .collect()
}

#[test]
fn login_prints_only_the_token() {
    let app = spawn_app();
    let output = cli(&app, None)
        .args([
            "login",
            "--user",
            "tpringle",
            "--name",
            "Teresa Pringle",
            "--ip",
            "59.100.242.122",
        ])
        .args(["--role", "admin", "--org", "Acme", "--timeout", "600"])
        .env("SESSIOND_SERVICE_KEY", SERVICE_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output).trim().to_string();
    assert_eq!(
        token.len(),
        sessiond::domain::token::TOKEN_LEN,
        "only the token: {token:?}"
    );
    let me = app.get("/sessions/current", &token).json();
    assert_eq!(
        (
            me["organisation"].clone(),
            me["roles"].clone(),
            me["timeout_seconds"].clone()
        ),
        (json!("Acme"), json!(["admin"]), json!(600))
    );

    let refused = cli(&app, None)
        .args([
            "login",
            "--user",
            "tpringle",
            "--name",
            "T",
            "--ip",
            "203.0.113.9",
        ])
        .args(["--service-key", SERVICE_KEY])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("Login denied") && stderr(&refused).contains("59.100.242.122")
    );
    assert!(stdout(&refused).is_empty());

    let no_key = cli(&app, None)
        .args(["login", "--user", "u", "--name", "N", "--ip", "10.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(2));
    assert!(stderr(&no_key).contains("SESSIOND_SERVICE_KEY"));
    let wrong_key = cli(&app, None)
        .args([
            "login",
            "--user",
            "u",
            "--name",
            "N",
            "--ip",
            "10.0.0.1",
            "--service-key",
            "wrong",
        ])
        .output()
        .unwrap();
    assert_eq!(wrong_key.status.code(), Some(1));
}

#[test]
fn list_prints_the_session_management_table() {
    let app = spawn_app();
    let admin = app.admin();
    let org = unique();
    let them = people(&app, &org, 3);
    let output = cli(&app, Some(&admin.token)).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    for column in [
        "Name",
        "Organisation",
        "IP Address",
        "Server Name",
        "Timeout",
        "Session Time",
    ] {
        assert!(table.contains(column), "{table}");
    }
    assert!(table.contains("Ada Admin (you)"), "{table}");
    assert!(table.contains("30 minutes, 0 seconds"), "{table}");
    assert!(table.contains(&them[1].id) && table.contains("10.7.0.1"));
    assert!(table.contains("4 of 4 sessions"), "{table}");
    assert!(!table.contains(&them[0].token));
}

#[test]
fn list_filters_sorts_pages_and_prints_json_for_scripts() {
    let app = spawn_app();
    let admin = app.admin();
    let org = unique();
    people(&app, &org, 5);
    people(&app, &unique(), 2);
    let json_of = |args: &[&str]| -> Vec<Value> {
        let output = cli(&app, Some(&admin.token))
            .arg("list")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str::<Value>(&stdout(&output))
            .expect("stdout is one JSON array")
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(json_of(&["--org", &org]).len(), 5);
    assert_eq!(json_of(&["--org", &org, "--limit", "2"]).len(), 2);
    assert_eq!(json_of(&["--org", &org, "--limit", "2", "--all"]).len(), 5);
    assert_eq!(json_of(&["--server", "APP-2"]).len(), 7);
    assert_eq!(json_of(&["--search", "PERSON 1"]).len(), 2);
    let desc = json_of(&["--org", &org, "--sort", "ip_address", "--desc"]);
    assert_eq!(desc[0]["ip_address"], "10.7.0.4");
    let user = desc[0]["user_id"].as_str().unwrap().to_string();
    assert_eq!(json_of(&["--user", &user]).len(), 1);

    let bad_sort = cli(&app, Some(&admin.token))
        .args(["list", "--sort", "colour"])
        .output()
        .unwrap();
    assert_eq!(bad_sort.status.code(), Some(2));
}

#[test]
fn delete_asks_first_and_reports_what_happened() {
    let app = spawn_app();
    let admin = app.admin();
    let org = unique();
    let them = people(&app, &org, 3);

    let declined = cli(&app, Some(&admin.token))
        .args(["delete", &them[0].id])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert_eq!(declined.status.code(), Some(1));
    assert!(
        app.validates(&them[0].token),
        "nothing deleted when declined"
    );

    let confirmed = cli(&app, Some(&admin.token))
        .args(["delete", &them[0].id])
        .write_stdin("y\n")
        .output()
        .unwrap();
    assert!(confirmed.status.success(), "{}", stderr(&confirmed));
    assert!(stdout(&confirmed).contains(&format!("deleted    {}", them[0].id)));
    assert!(!app.validates(&them[0].token));

    let mixed = cli(&app, Some(&admin.token))
        .args([
            "delete",
            "--yes",
            &them[1].id,
            &admin.id,
            "00000000-0000-4000-8000-000000000000",
        ])
        .output()
        .unwrap();
    assert_eq!(
        mixed.status.code(),
        Some(1),
        "not everything asked for was done"
    );
    let out = stdout(&mixed);
    assert!(
        out.contains("refused") && out.contains("your own session"),
        "{out}"
    );
    assert!(
        out.contains("not found  00000000-0000-4000-8000-000000000000"),
        "{out}"
    );
    assert!(out.contains("Deleted 1, not found 1, refused 1."), "{out}");
    assert!(app.validates(&admin.token));
}

#[test]
fn delete_ends_every_session_of_a_user_or_an_organisation_but_mine() {
    let app = spawn_app();
    let org = unique();
    let admin = app.login_as(
        &json!({"user_id": unique(), "name": "Ada", "organisation": org,
        "ip_address": "10.0.0.1", "roles": ["org_admin"]}),
    );
    let user = unique();
    let a = app.login_as(
        &json!({"user_id": user, "name": "U", "organisation": org, "ip_address": "10.0.0.2"}),
    );
    let b = app.login_as(
        &json!({"user_id": user, "name": "U", "organisation": org, "ip_address": "10.0.0.2"}),
    );
    let other = people(&app, &org, 2);

    let by_user = cli(&app, Some(&admin.token))
        .args(["delete", "--user", &user, "--yes"])
        .output()
        .unwrap();
    assert!(by_user.status.success(), "{}", stderr(&by_user));
    assert!(stdout(&by_user).contains("Deleted 2, not found 0, refused 0."));
    assert!(!app.validates(&a.token) && !app.validates(&b.token));
    assert!(app.validates(&other[0].token));

    let by_org = cli(&app, Some(&admin.token))
        .args(["delete", "--org", &org, "--yes"])
        .output()
        .unwrap();
    assert!(
        stdout(&by_org).contains("Deleted 2, not found 0, refused 1."),
        "{}",
        stdout(&by_org)
    );
    assert!(other.iter().all(|o| !app.validates(&o.token)));
    assert!(
        app.validates(&admin.token),
        "the caller's own session survives"
    );
}

#[test]
fn whoami_and_the_errors_a_script_meets() {
    let app = spawn_app();
    let admin = app.admin();
    let me = cli(&app, Some(&admin.token))
        .arg("whoami")
        .output()
        .unwrap();
    assert!(me.status.success());
    assert!(stdout(&me).contains("Ada Admin") && stdout(&me).contains(&admin.id));
    let json = cli(&app, Some(&admin.token))
        .args(["whoami", "--json"])
        .output()
        .unwrap();
    let parsed: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(parsed["own"], true);

    let bad_token = cli(&app, Some("not-a-token")).arg("list").output().unwrap();
    assert_eq!(bad_token.status.code(), Some(1));
    assert!(stderr(&bad_token).contains("Authentication is required"));
    let no_token = cli(&app, None).arg("whoami").output().unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = cli(&app, Some(&admin.token))
        .args(["list", "--url", &format!("http://{closed}")])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach sessiond"));
    let usage = cli(&app, Some(&admin.token))
        .arg("delete")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let help = cli(&app, None).args(["list", "--help"]).output().unwrap();
    assert!(stdout(&help).contains("Exit status: 0"));
}

#[test]
fn secrets_come_from_a_file_or_standard_input_and_a_flag_is_warned_of() {
    let app = spawn_app();
    let admin = app.admin();
    let file = std::env::temp_dir().join(format!("sessiond-token-{}", unique()));
    std::fs::write(&file, format!("{}\n", admin.token)).unwrap();
    let from_file = cli(&app, None)
        .arg("--token-file")
        .arg(&file)
        .arg("whoami")
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert!(!stderr(&from_file).contains("warning"));

    let from_stdin = cli(&app, None)
        .args(["--token-file", "-", "whoami", "--json"])
        .write_stdin(admin.token.clone())
        .output()
        .unwrap();
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    let me: Value = serde_json::from_str(&stdout(&from_stdin)).unwrap();
    assert_eq!(me["id"], admin.id.as_str());

    // As a separate argument, and a token that may well begin with `-`.
    let flagged = cli(&app, None)
        .args(["whoami", "--token", &format!("-{}", "A".repeat(64))])
        .output()
        .unwrap();
    assert_eq!(
        flagged.status.code(),
        Some(1),
        "taken as the token: {}",
        stderr(&flagged)
    );
    let flagged = cli(&app, None)
        .args(["whoami", "--token", &admin.token])
        .output()
        .unwrap();
    assert!(flagged.status.success(), "{}", stderr(&flagged));
    let warning = stderr(&flagged);
    assert!(
        warning.contains("warning") && warning.contains("--token"),
        "{warning}"
    );
    assert!(
        !warning.contains(&admin.token),
        "the warning never repeats the secret"
    );

    let empty = cli(&app, None)
        .args(["--token-file", "-", "whoami"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(2));
}

#[test]
fn a_redirect_never_carries_the_credential_elsewhere() {
    // A server that answers every request with a redirect to another port, where a listener
    // records whether anything arrives.
    use std::io::{Read, Write};
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = elsewhere.local_addr().unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = redirector.local_addr().unwrap();
    let answer = std::thread::spawn(move || {
        let (mut stream, _) = redirector.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let response = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/sessions/current\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(response.as_bytes()).unwrap();
    });
    let output = Command::cargo_bin("sessiond")
        .unwrap()
        .env("SESSIOND_URL", format!("http://{address}"))
        .env("SESSIOND_TOKEN", "a-secret-token")
        .args(["sessions", "whoami"])
        .output()
        .unwrap();
    answer.join().unwrap();
    assert!(!output.status.success());
    assert!(
        elsewhere.accept().is_err(),
        "nothing followed the redirect to the other address"
    );
}

#[test]
fn a_user_lists_its_devices_and_logs_the_others_out() {
    let app = spawn_app();
    let user = unique();
    let laptop = app.device(&user, "59.100.242.122", "Laptop");
    let phone = app.device(&user, "203.0.113.7", "Phone");
    let mine = cli(&app, Some(&laptop.token)).arg("mine").output().unwrap();
    assert!(mine.status.success(), "{}", stderr(&mine));
    let table = stdout(&mine);
    assert!(table.contains("59.100.242.122 (this device)"), "{table}");
    assert!(
        table.contains("Phone") && table.contains("2 sessions of this user"),
        "{table}"
    );

    let ended = cli(&app, Some(&laptop.token))
        .arg("end-others")
        .output()
        .unwrap();
    assert!(ended.status.success(), "{}", stderr(&ended));
    assert!(stdout(&ended).contains("ended 1 other session"));
    assert!(!app.validates(&phone.token) && app.validates(&laptop.token));
    let json_out = cli(&app, Some(&laptop.token))
        .args(["mine", "--json"])
        .output()
        .unwrap();
    let items: Value = serde_json::from_str(&stdout(&json_out)).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
}

#[test]
fn every_login_flag_is_described_and_the_servers_key_variable_works() {
    let help = Command::cargo_bin("sessiond")
        .unwrap()
        .args(["sessions", "login", "--help"])
        .output()
        .unwrap();
    let text = stdout(&help);
    for flag in [
        "--user",
        "--name",
        "--ip",
        "--org",
        "--server",
        "--role",
        "--timeout",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} in:\n{text}"));
        assert!(
            line.trim().len() > flag.len() + 12,
            "{flag} has a description: {line}"
        );
    }
    // On the server's machine, the server's variable is enough to log a user in.
    let app = spawn_app();
    let output = cli(&app, None)
        .env(
            "SESSIOND_SERVICE_KEYS",
            format!("{SERVICE_KEY},another-key-0123456789abcdefghijkl"),
        )
        .args([
            "login",
            "--user",
            &unique(),
            "--name",
            "N",
            "--ip",
            "10.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn watch_prints_one_line_per_event_and_json_lines_for_scripts() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app();
    let admin = app.admin();
    let watch = |extra: &[&str]| {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sessiond"))
            .env("SESSIOND_URL", app.url(""))
            .env("SESSIOND_TOKEN", &admin.token)
            .args(["sessions", "watch"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        (child, lines)
    };
    let (mut plain, plain_lines) = watch(&[]);
    let (mut json_child, json_lines) = watch(&["--json", "--types", "session-ended"]);
    // A watcher has joined once it shows a login (or logout) made after it started.
    let joined =
        |lines: &std::sync::mpsc::Receiver<String>, end: bool| -> (Login, String, String) {
            for _ in 0..50 {
                let user = unique();
                let probe = app.login(&user, "10.4.4.4");
                if end {
                    assert_eq!(app.delete("/sessions/current", &probe.token).status, 204);
                }
                while let Ok(line) = lines.recv_timeout(std::time::Duration::from_millis(200)) {
                    if line.contains(&probe.id) {
                        return (probe, user, line);
                    }
                }
            }
            panic!("the watcher never showed an event");
        };
    let (probe, user, line) = joined(&plain_lines, false);
    assert!(
        line.contains("session-created") && line.contains(&user) && line.contains("10.4.4.4"),
        "{line}"
    );
    assert_eq!(app.delete("/sessions/current", &probe.token).status, 204);
    let ended = plain_lines
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(
        ended.contains("session-ended")
            && ended.contains("reason=logout")
            && ended.contains(&probe.id),
        "{ended}"
    );
    let (probe, _, line) = joined(&json_lines, true);
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "session-ended");
    assert_eq!(event["data"]["id"], probe.id.as_str());
    assert_eq!(event["data"]["reason"], "logout");
    for child in [&mut plain, &mut json_child] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn export_writes_every_session_in_scope_as_json_lines_or_csv() {
    let app = spawn_app();
    let org = format!("Export-{}", unique());
    let org_admin = app.login_as(&json!({"user_id": unique(), "name": "Pringle, \"Teresa\"",
        "organisation": org, "ip_address": "10.8.0.1", "roles": ["org_admin", "reader"]}));
    people(&app, &org, 3);
    app.login_as(&json!({"user_id": unique(), "name": "=HYPERLINK(\"x\")",
        "organisation": org, "ip_address": "10.8.0.9"}));
    people(&app, "Elsewhere", 2);

    let jsonl = cli(&app, Some(&org_admin.token))
        .arg("export")
        .output()
        .unwrap();
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    let lines: Vec<Value> = stdout(&jsonl)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "only the organisation's sessions");
    assert!(lines.iter().all(|s| s["organisation"] == org.as_str()));

    let csv = cli(&app, Some(&org_admin.token))
        .args(["export", "--format", "csv"])
        .output()
        .unwrap();
    assert!(csv.status.success(), "{}", stderr(&csv));
    let text = stdout(&csv);
    let mut rows = text.lines();
    assert!(rows
        .next()
        .unwrap()
        .starts_with("id,user_id,name,organisation,ip_address"));
    assert_eq!(rows.count(), 5);
    assert!(text.contains("\"Pringle, \"\"Teresa\"\"\""), "{text}");
    assert!(text.contains("org_admin;reader"), "{text}");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "a formula is defused: {text}"
    );
}

#[test]
fn revoke_user_ends_a_users_sessions_with_a_service_key_or_a_token() {
    let app = spawn_app();
    let user = format!("jo smith/{}", unique());
    let login = |ip: &str| {
        app.login_as(&json!({"user_id": user, "name": "Jo", "ip_address": ip,
            "concurrent_sessions": "allow"}))
    };
    let (kept, gone, later) = (login("10.13.0.1"), login("10.13.0.2"), login("10.13.0.3"));
    let output = cli(&app, None)
        .args(["revoke-user", &user, "--except", &kept.id])
        .env("SESSIOND_SERVICE_KEY", SERVICE_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(
        printed.contains(&gone.id) && printed.contains(&later.id),
        "{printed}"
    );
    assert!(printed.contains("ended 2 sessions of user"), "{printed}");
    assert!(app.validates(&kept.token) && !app.validates(&gone.token));

    let admin = app.admin();
    let output = cli(&app, Some(&admin.token))
        .args(["revoke-user", &user])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!app.validates(&kept.token));
    let output = cli(&app, None)
        .args(["revoke-user", &user])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "no credential is a usage error"
    );
}

#[test]
fn rotate_prints_only_the_new_token_and_the_old_one_stops() {
    let app = spawn_app();
    let old = app.login(&unique(), "10.13.1.1");
    let output = cli(&app, Some(&old.token)).arg("rotate").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let new = stdout(&output).trim().to_string();
    assert_eq!(new.len(), old.token.len());
    assert!(app.validates(&new) && !app.validates(&old.token));
    let again = cli(&app, Some(&old.token)).arg("rotate").output().unwrap();
    assert_eq!(again.status.code(), Some(1), "the old token is refused");
    assert!(stderr(&again).contains("rotated"), "{}", stderr(&again));
}
