//! Starting the application and talking to it.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use serde_json::{json, Value};
use sessiond::config::{LoginOverrides, ServiceKeys, Settings, StoreSetting};
use sessiond::startup::Application;
use sessiond::store::{IndexReport, SharedStore};

use crate::redis_cluster::RedisCluster;
use crate::redis_server::RedisServer;

pub const SERVICE_KEY: &str = "test-service-key-0123456789abcdefghij";

/// Speaks HTTP to one sessiond, however it was started.
pub struct Client {
    pub address: SocketAddr,
    agent: ureq::Agent,
}

/// A sessiond started in this process, with its store at hand. With
/// `SESSIOND_TEST_STORE=redis` every test runs against its own `redis-server`; with
/// `redis-cluster`, under a prefix of its own on the process's shared three-master cluster.
/// Dropping it stops the server and waits for its thread, so a test run's threads, sockets and
/// actix systems do not pile up.
pub struct TestApp {
    client: Client,
    pub store: SharedStore,
    server: ServerHandle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
    // Dropped after the server, which may still be talking to it.
    _redis: Option<RedisServer>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let server = self.server.clone();
        actix_web::rt::System::new().block_on(server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A session a test logged in: its token and id.
#[derive(Clone, Debug)]
pub struct Login {
    pub token: String,
    pub id: String,
}

pub struct Response {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and code, and returns its body.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {}", self.body);
        assert_eq!(body["status"], status);
        assert_eq!(body["type"], format!("urn:sessiond:problem:{code}"));
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
        body
    }
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

/// Whether this run tests the Redis store (`SESSIOND_TEST_STORE=redis`, or `redis-cluster`
/// for a three-master Redis Cluster).
pub fn testing_redis() -> bool {
    std::env::var("SESSIOND_TEST_STORE").is_ok_and(|s| s == "redis" || s == "redis-cluster")
}

/// Whether this run tests the Redis store on a cluster (`SESSIOND_TEST_STORE=redis-cluster`).
pub fn testing_cluster() -> bool {
    std::env::var("SESSIOND_TEST_STORE").is_ok_and(|s| s == "redis-cluster")
}

pub fn spawn_app_with(edit: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.service_keys = Some(ServiceKeys::from_keys(&[SERVICE_KEY]));
    // Activity is written at most once a second (not every 5 s), so that tests of ordering by
    // activity wait a second, not five, on either store.
    settings.activity_interval = 1;
    // Many tests log one user in from several devices with `"concurrent_sessions": "allow"`;
    // the default (`replace` only) has tests of its own.
    settings.login_overrides = LoginOverrides::parse("replace,allow").unwrap();
    let redis = match (testing_redis(), testing_cluster()) {
        (true, false) => {
            let server =
                RedisServer::start().expect("SESSIOND_TEST_STORE=redis needs redis-server");
            settings.store = StoreSetting::Redis(server.url());
            settings.redis_prefix = format!("test-{}:", unique());
            Some(server)
        }
        (true, true) => {
            let cluster = RedisCluster::shared()
                .expect("SESSIOND_TEST_STORE=redis-cluster needs redis-server");
            settings.store = StoreSetting::Redis(cluster.url());
            settings.redis_prefix = format!("test-{}:", unique());
            None
        }
        _ => None,
    };
    edit(&mut settings);
    let (sender, receiver) = mpsc::channel();
    let thread = thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings)
                .await
                .expect("the application starts");
            sender
                .send((app.address(), app.store(), app.handle()))
                .expect("the test is waiting");
            app.run_until_stopped().await
        })
    });
    let (address, store, server) = receiver.recv().expect("the application started");
    TestApp {
        client: Client::new(address),
        store,
        server,
        thread: Some(thread),
        _redis: redis,
    }
}

impl TestApp {
    /// What the store's consistency check finds now.
    pub fn indexes(&self) -> IndexReport {
        actix_web::rt::System::new()
            .block_on(self.store.check_indexes())
            .expect("the store answers")
    }
}

impl Client {
    pub fn new(address: SocketAddr) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client { address, agent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Sends any request; `body` goes out as given, with whatever headers the test names.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_send(method, path, headers, body)
            .expect("the server answers")
    }

    /// [`Client::send`], or `None` when the server is gone.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Response> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.to_vec())
            .expect("a well-formed test request");
        let mut response = self.agent.run(request).ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.body_mut().read_to_string().ok()?;
        Some(Response {
            status,
            headers,
            body,
        })
    }

    /// `POST /sessions` with the service key and this JSON body.
    pub fn create(&self, body: &Value) -> Response {
        self.try_create(body).expect("the server answers")
    }

    /// [`Client::create`], or `None` when the server is gone.
    pub fn try_create(&self, body: &Value) -> Option<Response> {
        self.try_send(
            "POST",
            "/sessions",
            &[
                ("X-Service-Key", SERVICE_KEY),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// Logs a user in from `ip` and returns the new session, failing the test if refused.
    pub fn login(&self, user: &str, ip: &str) -> Login {
        self.login_as(&json!({"user_id": user, "name": user, "ip_address": ip}))
    }

    pub fn login_as(&self, body: &Value) -> Login {
        let response = self.create(body);
        assert_eq!(response.status, 201, "{}", response.body);
        let json = response.json();
        Login {
            token: json["token"].as_str().unwrap().to_string(),
            id: json["session"]["id"].as_str().unwrap().to_string(),
        }
    }

    /// An administrator (role `admin`) of organisation Default.
    /// Logs `user` in once more, from another device: `allow`, whatever the server's policy.
    pub fn device(&self, user: &str, ip: &str, agent: &str) -> Login {
        self.login_as(
            &json!({"user_id": user, "name": "Teresa Pringle", "ip_address": ip,
            "user_agent": agent, "concurrent_sessions": "allow"}),
        )
    }

    pub fn admin(&self) -> Login {
        self.login_as(&json!({
            "user_id": format!("admin-{}", unique()), "name": "Ada Admin",
            "ip_address": "10.0.0.1", "roles": ["admin"]
        }))
    }

    pub fn get(&self, path: &str, token: &str) -> Response {
        self.send(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    }

    /// `POST /sessions/current/rotate` with `token`.
    pub fn rotate(&self, token: &str) -> Response {
        self.send(
            "POST",
            "/sessions/current/rotate",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    }

    pub fn delete(&self, path: &str, token: &str) -> Response {
        self.send(
            "DELETE",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    }

    /// `DELETE /sessions` with `{"ids": ids}`.
    pub fn delete_ids(&self, token: &str, ids: &[&str]) -> Response {
        self.send(
            "DELETE",
            "/sessions",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            json!({ "ids": ids }).to_string().as_bytes(),
        )
    }

    /// Whether the token still validates.
    pub fn validates(&self, token: &str) -> bool {
        let response = self.get("/sessions/current", token);
        assert!(
            matches!(response.status, 200 | 401),
            "{}: {}",
            response.status,
            response.body
        );
        response.status == 200
    }

    /// Every page of `GET /sessions?{query}`, following `next_cursor`.
    pub fn list_all(&self, token: &str, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/sessions?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let response = self.get(&path, token);
            assert_eq!(response.status, 200, "{}", response.body);
            let page = response.json();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
    }
}

/// A value no other test uses, for user ids and names.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `condition` until it holds, failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sessions as two views of the same data must agree on them: without `own` and the fields
/// that change with the clock alone.
pub fn without_clock_fields(sessions: Vec<Value>) -> Vec<Value> {
    sessions
        .into_iter()
        .map(|mut s| {
            let object = s.as_object_mut().expect("a session is an object");
            for field in [
                "own",
                "idle_seconds",
                "session_time_seconds",
                "last_active_at",
                "expires_at",
            ] {
                object.remove(field);
            }
            s
        })
        .collect()
}

/// Logs one user in from `racers` different addresses at the same instant, each through
/// `login`; exactly one may win.
pub fn race_logins(racers: usize, login: impl Fn(usize, &Value) -> u16 + Send + Sync + 'static) {
    let user = unique();
    race(
        racers,
        move |i| {
            serde_json::json!({"user_id": user, "name": "Racer",
                "ip_address": format!("10.77.{}.{}", i / 250, i % 250)})
        },
        login,
    );
}

/// Sends `racers` logins (racer `i` sends `body(i)`) at the same instant, each through `login`,
/// and asserts that exactly one is created and every other refused (`409`).
pub fn race(
    racers: usize,
    body: impl Fn(usize) -> Value,
    login: impl Fn(usize, &Value) -> u16 + Send + Sync + 'static,
) {
    let login = std::sync::Arc::new(login);
    let start = std::sync::Arc::new(std::sync::Barrier::new(racers));
    let handles: Vec<_> = (0..racers)
        .map(|i| {
            let (login, start, body) = (login.clone(), start.clone(), body(i));
            thread::spawn(move || {
                start.wait();
                login(i, &body)
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        racers - 1,
        "{statuses:?}"
    );
}
