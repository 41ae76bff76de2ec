//! The Session Management page: served safely, and working in a real browser.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{
    accessibility_violations, click, eventually, open_as, run, screenshot, Chromedriver,
};
use crate::helpers::{spawn_app, unique, Login};

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let app = spawn_app();
    for (path, kind) in [
        ("/", "text/html"),
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/state.js", "text/javascript"),
        ("/console/api.js", "text/javascript"),
        ("/console/signin.js", "text/javascript"),
        ("/console/list.js", "text/javascript"),
        ("/console/glance.js", "text/javascript"),
        ("/console/live.js", "text/javascript"),
        ("/console/mine.js", "text/javascript"),
        ("/console/format.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let response = app.send("GET", path, &[], b"");
        assert_eq!(response.status, 200, "{path}");
        assert!(
            response.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("cache-control"), Some("no-cache"));
    }
    let html = app.send("GET", "/", &[], b"").body;
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    app.send("GET", "/console/missing.js", &[], b"")
        .problem(404, "not-found");
    app.send("POST", "/console", &[], b"")
        .problem(405, "method-not-allowed");
}

fn row_names_script() -> &'static str {
    "return [...document.querySelectorAll('#sessions tbody tr')].map(tr => tr.children[1].textContent)"
}

fn person(app: &crate::helpers::Client, organisation: &str, name: &str, ip: &str) -> Login {
    app.login_as(&json!({
        "user_id": unique(), "name": name, "organisation": organisation, "ip_address": ip,
        "server_name": "APP-01"
    }))
}

#[test]
fn an_administrator_signs_in_sorts_searches_and_deletes_in_a_real_browser() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    let organisation = unique();
    let admin = app.login_as(&json!({
        "user_id": unique(), "name": "Ada Admin", "organisation": organisation,
        "ip_address": "127.0.0.1", "roles": ["org_admin"]
    }));
    let teresa = person(&app, &organisation, "Teresa Pringle", "59.100.242.122");
    let bob = person(&app, &organisation, "Bob Brown", "10.0.0.2");
    let carol = person(&app, &organisation, "Carol Cruz", "10.0.0.3");
    let dave = person(&app, &organisation, "Dave Bobson", "10.0.0.4");
    let plain = person(&app, &organisation, "Pat Plain", "10.0.0.5");

    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;

        // A token that is not valid leads back to the prompt.
        client
            .goto(&app.url("/#token=not-a-valid-token"))
            .await
            .unwrap();
        eventually(
            &client,
            "the prompt explains",
            "return document.getElementById('signin-error').textContent",
            |v| v.as_str().is_some_and(|t| t.contains("not valid")),
        )
        .await;
        // A plain user's session sees its own sessions, not the administrators' view.
        open_as(&client, &app, &plain.token).await;
        eventually(
            &client,
            "My sessions is shown",
            "return !document.getElementById('mine').hidden && document.getElementById('views').offsetParent === null",
            |v| v == &json!(true),
        )
        .await;

        // Sign in through the fragment.
        client
            .goto(&app.url(&format!("/console#token={}", admin.token)))
            .await
            .unwrap();
        let names = eventually(&client, "the rows are shown", row_names_script(), |v| {
            v.as_array().is_some_and(|a| a.len() == 6)
        })
        .await;
        assert_eq!(
            names,
            json!([
                "Ada Admin (you)",
                "Bob Brown",
                "Carol Cruz",
                "Dave Bobson",
                "Pat Plain",
                "Teresa Pringle"
            ])
        );
        let url = client.current_url().await.unwrap();
        assert!(
            !url.as_str().contains(&admin.token),
            "the token left the address bar: {url}"
        );
        let total = client
            .find(Locator::Id("total"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(total, "6 sessions");

        // The caller's own row cannot be selected, not even by select-all.
        let own_disabled = run(
            &client,
            &format!(
                "return document.querySelector('tr[data-id=\"{}\"] input').disabled",
                admin.id
            ),
        )
        .await;
        assert_eq!(own_disabled, json!(true));
        click(&client, "#select-all").await;
        let checked: Value = run(
            &client,
            "return [...document.querySelectorAll('input.row-check')].map(b => b.checked)",
        )
        .await;
        assert_eq!(checked, json!([false, true, true, true, true, true]));
        click(&client, "#select-all").await;

        // The Timeout column reads as the original screen does.
        let timeout: Value = run(
            &client,
            &format!(
                "return document.querySelector('tr[data-id=\"{}\"]').children[5].textContent",
                teresa.id
            ),
        )
        .await;
        assert_eq!(timeout, json!("30 minutes, 0 seconds"));

        // Sort by name, descending: one click on the active column.
        click(&client, "th[data-sort='name'] button").await;
        eventually(
            &client,
            "rows sort by name descending",
            row_names_script(),
            |v| v.get(0).is_some_and(|n| n == "Teresa Pringle"),
        )
        .await;
        let sort = run(
            &client,
            "return document.querySelector(\"th[data-sort='name']\").getAttribute('aria-sort')",
        )
        .await;
        assert_eq!(sort, json!("descending"));

        // Search.
        client
            .find(Locator::Id("search"))
            .await
            .unwrap()
            .send_keys("BOB")
            .await
            .unwrap();
        eventually(
            &client,
            "the search narrows the rows",
            row_names_script(),
            |v| v == &json!(["Dave Bobson", "Bob Brown"]),
        )
        .await;
        client
            .find(Locator::Id("search"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        run(
            &client,
            "document.getElementById('search').dispatchEvent(new Event('input'))",
        )
        .await;
        eventually(&client, "every row is back", row_names_script(), |v| {
            v.as_array().is_some_and(|a| a.len() == 6)
        })
        .await;

        // Select two rows, delete, confirm.
        for login in [&bob, &carol] {
            click(
                &client,
                &format!("tr[data-id='{}'] input.row-check", login.id),
            )
            .await;
        }
        let delete = client.find(Locator::Id("delete")).await.unwrap();
        assert_eq!(delete.text().await.unwrap(), "Delete (2)");
        delete.click().await.unwrap();
        let dialog_open = run(&client, "return document.getElementById('confirm').open").await;
        assert_eq!(dialog_open, json!(true));
        screenshot(&client, "console-confirm.png").await;
        click(&client, "#confirm-delete").await;
        eventually(
            &client,
            "the outcome is shown",
            "return document.getElementById('status').textContent",
            |v| v == "Deleted 2 sessions.",
        )
        .await;
        eventually(
            &client,
            "the deleted rows are gone",
            row_names_script(),
            |v| {
                v == &json!([
                    "Teresa Pringle",
                    "Pat Plain",
                    "Dave Bobson",
                    "Ada Admin (you)"
                ])
            },
        )
        .await;
        screenshot(&client, "console.png").await;
        client.close().await.unwrap();
    });

    assert!(!app.validates(&bob.token));
    assert!(!app.validates(&carol.token));
    for still in [&teresa, &dave, &admin] {
        assert!(app.validates(&still.token));
    }
}

#[test]
fn the_api_reference_renders_every_operation_in_a_real_browser() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        client.goto(&app.url("/docs/")).await.unwrap();
        let spec: Value = serde_json::from_str(&sessiond::openapi::spec_json()).unwrap();
        let operations: usize = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .chain(spec["webhooks"].as_object().unwrap().values())
            .map(|item| item.as_object().unwrap().len())
            .sum();
        let count = eventually(
            &client,
            "every operation is listed",
            "return document.querySelectorAll('.opblock').length",
            |v| v.as_u64().is_some_and(|n| n as usize >= operations),
        )
        .await;
        assert_eq!(
            count,
            json!(operations),
            "Swagger UI works under its content security policy"
        );
        let schemes = run(
            &client,
            "return document.querySelector('.btn.authorize') !== null",
        )
        .await;
        assert_eq!(
            schemes,
            json!(true),
            "the Authorize button offers the security schemes"
        );
        screenshot(&client, "docs.png").await;
        client.close().await.unwrap();
    });
}

#[test]
fn the_reference_is_served_with_a_content_security_policy() {
    let app = spawn_app();
    let page = app.send("GET", "/docs/", &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("script-src 'self' 'unsafe"), "{csp}");
}

/// Waits for a `confirm()` dialog and returns its text.
async fn dialog_text(client: &fantoccini::Client) -> String {
    for _ in 0..200 {
        if let Ok(text) = client.get_alert_text().await {
            return text;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no dialog appeared");
}

#[test]
fn signing_out_ends_the_session_and_a_link_never_switches_identity_unasked() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    let organisation = unique();
    let ada = app.login_as(&json!({
        "user_id": unique(), "name": "Ada Admin", "organisation": organisation,
        "ip_address": "127.0.0.1", "roles": ["org_admin"]
    }));
    let olga = app.login_as(&json!({
        "user_id": unique(), "name": "Olga Other", "organisation": organisation,
        "ip_address": "127.0.0.2", "roles": ["org_admin"]
    }));
    let whoami = "return document.getElementById('whoami').textContent";
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        open_as(&client, &app, &ada.token).await;
        eventually(&client, "Ada is signed in", whoami, |v| {
            v.as_str().is_some_and(|t| t.contains("Ada Admin"))
        })
        .await;

        // A link with another session's token arrives in the open tab: the console asks.
        run(&client, &format!("location.hash = 'token={}'", olga.token)).await;
        let question = dialog_text(&client).await;
        assert!(question.contains("Ada Admin"), "{question}");
        client.dismiss_alert().await.unwrap();
        let still = run(&client, whoami).await;
        assert!(still.as_str().unwrap().contains("Ada Admin"), "{still}");
        assert!(
            !client
                .current_url()
                .await
                .unwrap()
                .as_str()
                .contains(&olga.token),
            "the declined token left the address bar too"
        );

        // Signing out ends the session on the server, not only in the tab.
        click(&client, "#sign-out").await;
        eventually(
            &client,
            "the sign-in prompt is back",
            "return !document.getElementById('signin').hidden",
            |v| v == &json!(true),
        )
        .await;
        client.close().await.unwrap();
    });
    assert!(!app.validates(&ada.token), "the session ended on sign-out");
    assert!(app.validates(&olga.token));
}

#[test]
fn a_user_ends_its_other_sessions_in_my_sessions_in_a_real_browser() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    let user = unique();
    let laptop = app.device(&user, "59.100.242.122", "Laptop");
    let phone = app.device(&user, "203.0.113.7", "Phone");
    let tablet = app.device(&user, "203.0.113.8", "Tablet");
    let rows = "return [...document.querySelectorAll('#mine-sessions tbody tr')].map(tr => tr.textContent)";
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        open_as(&client, &app, &laptop.token).await;
        let shown = eventually(&client, "the user's sessions are shown", rows, |v| {
            v.as_array().is_some_and(|a| a.len() == 3)
        })
        .await;
        let here: Vec<&Value> = shown
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t.as_str().unwrap().contains("this device"))
            .collect();
        assert_eq!(here.len(), 1);
        assert!(here[0].as_str().unwrap().contains("59.100.242.122"));
        screenshot(&client, "my-sessions.png").await;

        // End the phone alone, then every other.
        click(
            &client,
            &format!("tr[data-id=\"{}\"] button.end-one", phone.id),
        )
        .await;
        eventually(&client, "the phone is gone", rows, |v| {
            v.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
        assert!(!app.validates(&phone.token) && app.validates(&tablet.token));
        click(&client, "#end-others").await;
        eventually(&client, "only this device is left", rows, |v| {
            v.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
        client.close().await.unwrap();
    });
    assert!(!app.validates(&tablet.token));
    assert!(app.validates(&laptop.token));
}

#[test]
fn an_administrator_has_my_sessions_as_a_second_view() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    let admin = app.admin();
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        open_as(&client, &app, &admin.token).await;
        eventually(
            &client,
            "Session Management comes first",
            "return !document.getElementById('console').hidden && !document.getElementById('views').hidden",
            |v| v == &json!(true),
        )
        .await;
        click(&client, "#view-mine").await;
        let mine = eventually(
            &client,
            "My sessions lists the administrator's own",
            "return [...document.querySelectorAll('#mine-sessions tbody tr')].map(tr => tr.dataset.id)",
            |v| v.as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
        assert_eq!(mine, json!([admin.id]));
        client.close().await.unwrap();
    });
}

/// The console opened by a new administrator, and the glance's organisation rows as text once
/// there are `rows` of them.
async fn glance(
    driver: &Chromedriver,
    app: &crate::helpers::TestApp,
    rows: usize,
) -> (fantoccini::Client, Value) {
    let admin = app.admin();
    let client = driver.browser(1280, 900).await;
    open_as(&client, app, &admin.token).await;
    let organisations = eventually(
        &client,
        "the organisations are charted",
        "return [...document.querySelectorAll('#glance-organisations li')].map(li => li.textContent)",
        |v| v.as_array().is_some_and(|a| a.len() == rows),
    )
    .await;
    (client, organisations)
}

#[test]
fn the_glance_draws_the_largest_and_sums_the_rest() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    for n in 0..10 {
        // Org-0 is the largest (two sessions); nine more of one session each.
        for _ in 0..(1 + usize::from(n == 0)) {
            person(&app, &format!("Org-{n}"), "Many Orgs", "10.0.0.1");
        }
    }
    actix_web::rt::System::new().block_on(async {
        // Eight bars (the summary is asked for no more), then the rest in one line: of the
        // eleven organisations (the administrator's Default too), three more of one session.
        let (client, organisations) = glance(&driver, &app, 9).await;
        assert!(
            organisations[0].as_str().unwrap().starts_with("Org-0"),
            "{organisations}"
        );
        assert_eq!(
            organisations[8],
            json!("+ 3 more organisations · 3 sessions"),
            "{organisations}"
        );
        client.close().await.unwrap();
    });
}

#[test]
fn the_console_shows_the_sessions_at_a_glance() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let seats = sessiond::config::Seats::parse("Acme=3").unwrap();
    let app = crate::helpers::spawn_app_with(move |s| s.organisation_seats = Some(seats));
    for (user, organisation, server) in [
        ("ann", "Acme", "APP-01"),
        ("bob", "Acme", "APP-02"),
        ("cy", "Globex", "APP-01"),
    ] {
        app.login_as(
            &json!({"user_id": user, "name": user, "ip_address": "10.0.0.1",
            "organisation": organisation, "server_name": server}),
        );
    }
    actix_web::rt::System::new().block_on(async {
        let (client, organisations) = glance(&driver, &app, 3).await;
        let first = organisations[0].as_str().unwrap();
        assert!(
            first.starts_with("Acme") && first.contains("2 users") && first.contains("2 of 3 seats"),
            "{organisations}"
        );
        let total = run(&client, "return document.getElementById('glance-total').textContent").await;
        assert_eq!(total, json!("4 sessions"));
        let widths = run(
            &client,
            "return [...document.querySelectorAll('#glance-organisations .bar-fill')].map(b => b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width)",
        )
        .await;
        let widths: Vec<f64> = widths.as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).collect();
        assert!(widths[0] > widths[1] * 1.5, "bars drawn to scale: {widths:?}");
        screenshot(&client, "at-a-glance.png").await;
        client.close().await.unwrap();
    });
}

#[test]
fn the_console_follows_logins_and_deletions_live_without_a_click() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let app = spawn_app();
    let admin = app.admin();
    let organisation = format!("Live-{}", crate::helpers::unique());
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        open_as(&client, &app, &admin.token).await;
        eventually(
            &client,
            "the indicator says the list is live",
            "return document.getElementById('live').textContent",
            |v| v == &json!("Live"),
        )
        .await;
        let ids =
            "return [...document.querySelectorAll('#sessions tbody tr')].map(tr => tr.dataset.id)";
        let newcomer = person(&app, &organisation, "Nina Newcomer", "10.6.6.6");
        eventually(&client, "a login made through the API appears", ids, |v| {
            v.as_array()
                .is_some_and(|rows| rows.iter().any(|id| id == &json!(newcomer.id)))
        })
        .await;
        // Ended elsewhere: by its user logging out.
        assert_eq!(app.delete("/sessions/current", &newcomer.token).status, 204);
        eventually(&client, "the ended session disappears", ids, |v| {
            v.as_array()
                .is_some_and(|rows| !rows.iter().any(|id| id == &json!(newcomer.id)))
        })
        .await;
        screenshot(&client, "live.png").await;

        // A busy site: 20 logins a second that never pause. The list keeps up while they go
        // on (a reload that waited for a quiet moment would never come).
        let total = "return Number(document.getElementById('total').textContent.split(' ')[0])";
        let before = client
            .execute(total, vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let steady = {
            let (running, address) = (running.clone(), app.url(""));
            let organisation = organisation.clone();
            std::thread::spawn(move || {
                let client = crate::helpers::Client::new(
                    address.trim_start_matches("http://").parse().unwrap(),
                );
                for n in 0..200 {
                    if !running.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    person(
                        &client,
                        &organisation,
                        "Busy Bee",
                        &format!("10.9.{}.{}", n / 200, n % 200),
                    );
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                running.store(false, std::sync::atomic::Ordering::SeqCst);
            })
        };
        eventually(
            &client,
            "the count follows a steady stream of logins",
            total,
            |v| v.as_u64().is_some_and(|n| n >= before + 20),
        )
        .await;
        assert!(
            running.load(std::sync::atomic::Ordering::SeqCst),
            "the list caught up only once the logins stopped"
        );
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        steady.join().unwrap();
        client.close().await.unwrap();
    });
}

#[test]
fn while_the_event_stream_is_down_the_console_says_so_polls_and_comes_back_live() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("sessiond-console-{}", unique()));
    let bind = format!("127.0.0.1:{}", crate::redis_server::free_port());
    // Sessions survive the restart (a snapshot), so the console's token still works after it.
    let start = || {
        crate::process::Process::start(&[
            ("SESSIOND_BIND", bind.as_str()),
            ("SESSIOND_DATA_DIR", dir.to_str().unwrap()),
        ])
        .unwrap()
    };
    let server = start();
    let admin = server.admin();
    actix_web::rt::System::new().block_on(async {
        let client = driver.browser(1280, 900).await;
        open_as(&client, &server, &admin.token).await;
        let badge = "return document.getElementById('live').textContent";
        eventually(&client, "the list is live", badge, |v| v == &json!("Live")).await;
        let (status, log) = server.terminate();
        assert!(status.success(), "{log}");
        eventually(&client, "the console says the stream is down", badge, |v| {
            v.as_str().is_some_and(|t| t.starts_with("Offline"))
        })
        .await;
        let server = start();
        eventually(&client, "the console is live again", badge, |v| {
            v == &json!("Live")
        })
        .await;
        let newcomer = person(&server, "Default", "Rita Returning", "10.7.7.7");
        eventually(
            &client,
            "a login after the reconnection appears",
            "return [...document.querySelectorAll('#sessions tbody tr')].map(tr => tr.dataset.id)",
            |v| {
                v.as_array()
                    .is_some_and(|rows| rows.iter().any(|id| id == &json!(newcomer.id)))
            },
        )
        .await;
        client.close().await.unwrap();
        drop(server);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Both views, on a desktop and on a phone: no violation of WCAG 2.1 AA or axe-core's best
/// practices; and on a phone the sessions read as cards, the header stays one line and the
/// charts keep their bars.
#[test]
fn both_views_pass_axe_on_a_desktop_and_on_a_phone() {
    let Some(driver) = Chromedriver::start() else {
        return;
    };
    let seats = sessiond::config::Seats::parse("Acme=2").unwrap();
    let app = crate::helpers::spawn_app_with(move |s| s.organisation_seats = Some(seats));
    let ada = json!({"user_id": unique(), "name": "Ada Admin", "ip_address": "10.0.0.1",
        "roles": ["admin"], "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"});
    let admin = app.login_as(&ada);
    let laptop = app.login_as(&ada);
    // Its app server has since seen the laptop at another address.
    app.send(
        "GET",
        "/sessions/current",
        &[
            ("Authorization", &format!("Bearer {}", laptop.token)),
            ("X-Client-IP", "203.0.113.5"),
        ],
        b"",
    );
    person(&app, "Acme", "Teresa Pringle", "59.100.242.122");
    person(
        &app,
        "Acme",
        "A rather long name that a phone must wrap somewhere",
        "203.0.113.7",
    );
    person(
        &app,
        "Globex Corporation International",
        "Bob",
        "2001:db8::1",
    );
    let rows = "return document.querySelectorAll('#sessions tbody tr').length";
    let mine = "return document.querySelectorAll('#mine-sessions tbody tr').length";
    actix_web::rt::System::new().block_on(async {
        for width in [1280, 390] {
            let client = match width {
                390 => driver.phone().await,
                _ => driver.browser(width, 900).await,
            };
            open_as(&client, &app, &admin.token).await;
            eventually(&client, "the sessions are listed", rows, |v| v == &json!(5)).await;
            eventually(
                &client,
                "the glance is drawn",
                "return document.querySelectorAll('#glance-organisations .bar-fill').length",
                |v| v == &json!(3),
            )
            .await;
            let Some(violations) = accessibility_violations(&client).await else {
                client.close().await.unwrap();
                return;
            };
            assert_eq!(violations, Vec::<Value>::new(), "Session Management at {width} px");
            if width < 700 {
                let layout = run(
                    &client,
                    "const cards = [...document.querySelectorAll('#sessions tbody tr')];
                     const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().width > 380).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().width));
                     return {
                       wide,
                       width: window.innerWidth,
                       page_fits: document.documentElement.scrollWidth <= window.innerWidth,
                       header_height: document.querySelector('#sessions thead tr').getBoundingClientRect().height,
                       cards: cards.every(tr => getComputedStyle(tr).display === 'block'
                           && tr.getBoundingClientRect().width <= window.innerWidth),
                       labelled: cards.every(tr => tr.querySelectorAll('td[data-label]').length === 6),
                       bars: [...document.querySelectorAll('.bar-track')].map(t => t.getBoundingClientRect().width),
                       fills: [...document.querySelectorAll('.bar-fill')].map(f => f.getBoundingClientRect().width),
                     };",
                )
                .await;
                assert_eq!(layout["width"], 390, "{layout}");
                assert_eq!(layout["page_fits"], true, "{layout}");
                assert_eq!(layout["cards"], true, "{layout}");
                assert_eq!(layout["labelled"], true, "{layout}");
                assert!(layout["header_height"].as_f64().unwrap() < 56.0, "one line: {layout}");
                let widths = |key: &str| -> Vec<f64> {
                    layout[key].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).collect()
                };
                assert!(widths("bars").iter().all(|w| *w > 200.0), "{layout}");
                assert!(widths("fills").iter().all(|w| *w > 4.0), "{layout}");
                screenshot(&client, "console-phone.png").await;
            }
            click(&client, "#view-mine").await;
            eventually(&client, "My sessions lists both", mine, |v| v == &json!(2)).await;
            let lines = run(
                &client,
                "return [...document.querySelectorAll('#mine-sessions tbody tr td:first-child')].map(td => td.textContent)",
            )
            .await;
            let lines: Vec<&str> = lines.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
            let here = lines.iter().find(|l| l.ends_with("this device")).expect("this device");
            assert!(
                here.starts_with("Chrome 131 on macOS · 10.0.0.1 · active "),
                "{lines:?}"
            );
            assert!(
                lines.iter().any(|l| l.contains("10.0.0.1 (last seen from 203.0.113.5)")),
                "{lines:?}"
            );
            let violations = accessibility_violations(&client).await.unwrap();
            assert_eq!(violations, Vec::<Value>::new(), "My sessions at {width} px");
            if width < 700 {
                let fits = run(&client, "return document.documentElement.scrollWidth <= window.innerWidth").await;
                assert_eq!(fits, true);
                screenshot(&client, "my-sessions-phone.png").await;
            }
            client.close().await.unwrap();
        }
    });
}
