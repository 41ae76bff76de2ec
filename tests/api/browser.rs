//! Driving Debian's Chromium through chromedriver (WebDriver).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::wait_until;

/// A chromedriver process, killed on drop.
pub struct Chromedriver {
    process: Child,
    port: u16,
    profile: PathBuf,
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Chromedriver {
    /// Starts chromedriver, or returns `None` after saying loudly why the browser tests cannot
    /// run here. Under CI a missing browser fails the test instead.
    pub fn start() -> Option<Self> {
        let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let browser = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        if driver.is_none() || browser.is_none() {
            let why =
                "chromium and chromedriver are not installed (scripts/test installs the Debian \
                       packages chromium and chromium-driver)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("browser tests cannot be skipped in CI: {why}");
            }
            eprintln!("\n*** SKIPPED browser test: {why} ***\n");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let process = Command::new(driver.unwrap())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        wait_until(Duration::from_secs(20), "chromedriver answers", || {
            agent
                .get(&format!("http://127.0.0.1:{port}/status"))
                .call()
                .is_ok()
        });
        let profile =
            std::env::temp_dir().join(format!("sessiond-chromium-{}", crate::helpers::unique()));
        Some(Chromedriver {
            process,
            port,
            profile,
        })
    }

    /// A new headless browser session.
    pub async fn browser(&self, width: u32, height: u32) -> Client {
        self.session(width, height, None).await
    }

    /// A new headless browser session that is a phone's: a viewport 390 CSS pixels wide (a
    /// window cannot be made that narrow), at three device pixels each, with touch.
    pub async fn phone(&self) -> Client {
        let phone = json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": true}});
        self.session(390, 844, Some(phone)).await
    }

    async fn session(&self, width: u32, height: u32, emulation: Option<Value>) -> Client {
        let mut options = json!({
            "binary": find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).unwrap(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-default-apps",
                format!("--user-data-dir={}", self.profile.display()),
                format!("--window-size={width},{height}"),
            ]
        });
        if let Some(emulation) = emulation {
            options["mobileEmulation"] = emulation;
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session starts")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        // A test that failed mid-way never closed its browser: end what runs on its profile.
        let _ = Command::new("pkill")
            .args([
                "-f",
                &format!("user-data-dir={}( |$)", self.profile.display()),
            ])
            .status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Runs `script` in the page until it returns something `done` accepts, and returns that.
pub async fn eventually(
    client: &Client,
    what: &str,
    script: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = client
            .execute(script, vec![])
            .await
            .expect("the script runs");
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; last saw {value}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens the console signed in with `token`, as a `#token=` link does.
pub async fn open_as(client: &Client, app: &crate::helpers::Client, token: &str) {
    client
        .goto(&app.url(&format!("/#token={token}")))
        .await
        .expect("the console opens");
}

/// Runs `script` in the page and returns what it returns.
pub async fn run(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .expect("the script runs")
}

/// Clicks the element `css` selects.
pub async fn click(client: &Client, css: &str) {
    let element = client
        .find(Locator::Css(css))
        .await
        .expect("the element exists");
    element.click().await.expect("the element takes the click");
}

/// Saves a screenshot under `target/` for a person to review.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("a screenshot");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    std::fs::write(&path, png).expect("the screenshot is written");
    path
}

/// axe-core's violations of WCAG 2.1 A/AA and its best practices on the page as it is now
/// (each as its rule, impact and first offending elements), or `None` after saying loudly why
/// axe-core cannot be had here. Under CI a missing axe-core fails the test instead.
pub async fn accessibility_violations(client: &Client) -> Option<Vec<Value>> {
    let path = std::env::var("SESSIOND_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/tools/node/node_modules/axe-core/axe.min.js")
        });
    let Ok(axe) = std::fs::read_to_string(&path) else {
        let why = format!(
            "axe-core is not at {} (scripts/test installs it; or set SESSIOND_AXE)",
            path.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("accessibility checks cannot be skipped in CI: {why}");
        }
        eprintln!("\n*** SKIPPED accessibility check: {why} ***\n");
        return None;
    };
    run(client, &format!("{axe}\n;return typeof window.axe;")).await;
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))
               .catch(e => done('axe failed: ' + e));",
            vec![],
        )
        .await
        .expect("axe runs");
    match found {
        Value::Array(violations) => Some(violations),
        other => panic!("{other}"),
    }
}
