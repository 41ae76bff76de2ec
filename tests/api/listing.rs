//! The Session Management list: filters, sorts, totals and keyset cursors.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, unique, Login, TestApp};

/// Sessions in a fresh organisation, so a test can filter down to exactly them.
struct Fixture {
    organisation: String,
    logins: Vec<Login>,
}

fn fixture(app: &TestApp, people: &[(&str, &str, &str, u32)]) -> Fixture {
    let organisation = unique();
    let logins = people
        .iter()
        .map(|(name, ip, server, timeout)| {
            app.login_as(&json!({
                "user_id": format!("{}-{}", name.to_lowercase().replace(' ', "."), unique()),
                "name": name, "organisation": organisation, "ip_address": ip,
                "server_name": server, "timeout_seconds": timeout
            }))
        })
        .collect();
    Fixture {
        organisation,
        logins,
    }
}

const PEOPLE: &[(&str, &str, &str, u32)] = &[
    ("Teresa Pringle", "59.100.242.122", "LOCAL", 1800),
    ("adam Zed", "10.0.0.2", "NODE-B", 600),
    ("Bob Brown", "2001:db8::1", "NODE-A", 3600),
    ("Élodie Durand", "9.255.255.255", "NODE-A", 900),
    ("Bob Brown", "::1", "NODE-C", 1800),
];

fn id(s: &Value) -> String {
    s["id"].as_str().unwrap().to_string()
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn field<'a>(items: &'a [Value], key: &str) -> Vec<&'a Value> {
    items.iter().map(|s| &s[key]).collect()
}

#[test]
fn every_sort_orders_rows_and_breaks_ties_by_id() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, PEOPLE);
    let base = format!("organisation={}", f.organisation);
    let check = |sort: &str, key: fn(&Value) -> (String, u128, String)| {
        for order in ["asc", "desc"] {
            let items = app.list_all(
                &admin.token,
                &format!("{base}&sort={sort}&order={order}&limit=2"),
            );
            assert_eq!(items.len(), PEOPLE.len());
            let keys: Vec<_> = items.iter().map(key).collect();
            let mut expected = keys.clone();
            expected.sort();
            if order == "desc" {
                expected.reverse();
            }
            assert_eq!(keys, expected, "sort={sort}&order={order}");
        }
    };
    check("name", |s| (s["name"].as_str().unwrap().into(), 0, id(s)));
    check("organisation", |s| {
        (s["organisation"].as_str().unwrap().into(), 0, id(s))
    });
    check("server_name", |s| {
        (s["server_name"].as_str().unwrap().into(), 0, id(s))
    });
    check("timeout", |s| {
        (
            String::new(),
            s["timeout_seconds"].as_u64().unwrap() as u128,
            id(s),
        )
    });
    check("ip_address", |s| {
        let ip: IpAddr = s["ip_address"].as_str().unwrap().parse().unwrap();
        match ip {
            IpAddr::V4(v4) => ("4".into(), u128::from(u32::from(v4)), id(s)),
            IpAddr::V6(v6) => ("6".into(), u128::from(v6), id(s)),
        }
    });
    let by_name = app.list_all(&admin.token, &base);
    assert_eq!(
        names(&by_name),
        [
            "Bob Brown",
            "Bob Brown",
            "Teresa Pringle",
            "adam Zed",
            "Élodie Durand"
        ],
        "the default sort is by name, in code-point order"
    );
    let by_ip = app.list_all(&admin.token, &format!("{base}&sort=ip_address"));
    assert_eq!(
        field(&by_ip, "ip_address"),
        [
            "9.255.255.255",
            "10.0.0.2",
            "59.100.242.122",
            "::1",
            "2001:db8::1"
        ]
    );
}

#[test]
fn session_time_puts_the_longest_session_last_in_ascending_order() {
    let app = spawn_app();
    let admin = app.admin();
    // Creation times are kept to the millisecond; space the logins so none tie.
    let organisation = unique();
    let logins: Vec<Login> = (0..3)
        .map(|i| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            app.login_as(&json!({"user_id": unique(), "name": format!("P{i}"),
                "organisation": organisation, "ip_address": "10.0.0.1"}))
        })
        .collect();
    let f = Fixture {
        organisation,
        logins,
    };
    let items = app.list_all(
        &admin.token,
        &format!("organisation={}&sort=session_time", f.organisation),
    );
    let ids: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = f.logins.iter().rev().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, newest_first);
    let times: Vec<u64> = items
        .iter()
        .map(|s| s["session_time_seconds"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let desc = app.list_all(
        &admin.token,
        &format!(
            "organisation={}&sort=session_time&order=desc",
            f.organisation
        ),
    );
    assert_eq!(desc.first().unwrap()["id"], f.logins[0].id.as_str());
}

#[test]
fn last_active_follows_activity() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, &PEOPLE[..3]);
    // Activity is recorded once the activity interval (a second here) has passed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(app.validates(&f.logins[0].token));
    let items = app.list_all(
        &admin.token,
        &format!(
            "organisation={}&sort=last_active&order=desc",
            f.organisation
        ),
    );
    assert_eq!(items[0]["id"], f.logins[0].id.as_str());
}

#[test]
fn filters_match_exactly_and_search_ignores_case() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, PEOPLE);
    let org = &f.organisation;
    let count = |query: &str| -> u64 {
        let response = app.get(
            &format!("/sessions?organisation={org}&{query}"),
            &admin.token,
        );
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        let page = response.json();
        assert_eq!(
            page["items"].as_array().unwrap().len() as u64,
            page["total"].as_u64().unwrap()
        );
        page["total"].as_u64().unwrap()
    };
    assert_eq!(count(""), 5);
    assert_eq!(count("server_name=NODE-A"), 2);
    assert_eq!(count("server_name=node-a"), 0, "exact match");
    assert_eq!(
        count("ip_address=2001:db8:0:0::1"),
        1,
        "addresses compare as addresses"
    );
    assert_eq!(count("q=BOB"), 2);
    assert_eq!(
        count("q=%C3%A9lodie"),
        1,
        "non-ASCII search ignores case too"
    );
    assert_eq!(count("q=242.12"), 1, "search covers the address");
    assert_eq!(count("q=teresa.pringle"), 1, "search covers the user id");
    assert_eq!(count("q=nobody"), 0);
    assert_eq!(count("q=bob&server_name=NODE-C"), 1);
    let user = f.logins[1].id.clone();
    let one = app.get(&format!("/sessions/{user}"), &admin.token).json();
    assert_eq!(
        count(&format!("user_id={}", one["user_id"].as_str().unwrap())),
        1
    );
    let everyone = app.get("/sessions?limit=1", &admin.token).json();
    assert_eq!(
        everyone["total"], 6,
        "the admin's own session and the fixture"
    );
}

#[test]
fn pages_cover_every_row_once_while_sessions_come_and_go() {
    let app = spawn_app();
    let admin = app.admin();
    let organisation = unique();
    let mut expected = HashSet::new();
    for i in 0..23 {
        let login = app.login_as(&json!({
            "user_id": unique(), "name": format!("User {:02}", i % 7),
            "organisation": organisation, "ip_address": format!("10.1.0.{i}")
        }));
        expected.insert(login.id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/sessions?organisation={organisation}&limit=4");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, &admin.token).json();
        pages += 1;
        for s in page["items"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_string());
        }
        // Newcomers between pages, sorting before and after the rows already seen.
        for name in ["AAA early", "zzz late"] {
            app.login_as(&json!({
                "user_id": unique(), "name": name,
                "organisation": organisation, "ip_address": "10.2.0.1"
            }));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique_seen: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique_seen.len(), seen.len(), "no row appears twice");
    assert!(
        expected.is_subset(&unique_seen),
        "every original row appears"
    );
    assert!(pages >= 6);
}

#[test]
fn next_cursor_is_null_exactly_when_nothing_follows() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, &PEOPLE[..4]);
    let path = |limit: u32| format!("/sessions?organisation={}&limit={limit}", f.organisation);
    let full = app.get(&path(4), &admin.token).json();
    assert_eq!(full["next_cursor"], json!(null));
    assert_eq!(full["total"], 4);
    let partial = app.get(&path(3), &admin.token).json();
    let cursor = partial["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{}&cursor={cursor}", path(10)), &admin.token)
        .json();
    assert_eq!(
        rest["items"].as_array().unwrap().len(),
        1,
        "limit may change between pages"
    );
    assert_eq!(rest["next_cursor"], json!(null));
    assert_eq!(rest["total"], 4, "total counts every page");
}

#[test]
fn a_cursor_only_fits_the_query_it_came_from() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, PEOPLE);
    let base = format!("/sessions?organisation={}&limit=2", f.organisation);
    let cursor = app.get(&base, &admin.token).json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    for other in [
        format!("{base}&sort=timeout"),
        format!("{base}&order=desc"),
        format!("{base}&q=bob"),
        "/sessions?limit=2".to_string(),
    ] {
        app.get(&format!("{other}&cursor={cursor}"), &admin.token)
            .problem(400, "invalid-request");
    }
    for garbled in ["x", "%21%21", "eyJ9", &cursor[1..]] {
        app.get(&format!("{base}&cursor={garbled}"), &admin.token)
            .problem(400, "invalid-request");
    }
}

#[test]
fn listing_does_not_touch_the_listed_sessions() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, &PEOPLE[..1]);
    let path = format!("/sessions/{}", f.logins[0].id);
    // Idle time is counted in whole seconds: let one pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for _ in 0..3 {
        app.get(
            &format!("/sessions?organisation={}", f.organisation),
            &admin.token,
        );
        let session = app.get(&path, &admin.token).json();
        assert!(session["idle_seconds"].as_u64().unwrap() >= 1, "{session}");
    }
    assert!(app.validates(&f.logins[0].token));
    assert_eq!(app.get(&path, &admin.token).json()["idle_seconds"], 0);
}

#[test]
fn no_token_appears_in_a_listing() {
    let app = spawn_app();
    let admin = app.admin();
    let f = fixture(&app, PEOPLE);
    let body = app.get("/sessions?limit=1000", &admin.token).body;
    for login in f.logins.iter().chain([&admin]) {
        assert!(!body.contains(&login.token));
    }
}
