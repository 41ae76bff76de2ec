//! A real `redis-server` for one test, on a free port, without persistence; stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{unique, wait_until};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    extra: Vec<String>,
    /// Its working directory: a replica's full sync writes the master's data there, which
    /// must not be loaded by another test's server.
    dir: PathBuf,
}

/// The server the Redis tests run: `redis-server`, or another that speaks the same protocol
/// (`SESSIOND_TEST_REDIS_SERVER=/path/to/valkey-server`).
pub fn server_binary() -> String {
    std::env::var("SESSIOND_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl RedisServer {
    /// Starts one, or returns `None` after saying loudly why Redis tests cannot run here.
    /// Under CI a missing `redis-server` fails the test instead.
    pub fn start() -> Option<Self> {
        Self::available().then(|| Self::start_with(Vec::new()))
    }

    /// Whether `redis-server` can run here; if not, says so loudly (and fails under CI).
    pub fn available() -> bool {
        if Command::new(server_binary())
            .arg("--version")
            .output()
            .is_ok()
        {
            return true;
        }
        let why =
            "redis-server is not installed (scripts/test installs the Debian package redis-server)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Redis tests cannot be skipped in CI: {why}");
        }
        eprintln!("\n*** SKIPPED Redis test: {why} ***\n");
        false
    }

    /// Starts one with `extra` arguments too (TLS, ACL users), on a plain port that still
    /// answers an unauthenticated PING.
    pub fn start_with(extra: Vec<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("sessiond-redis-{}", unique()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            extra,
            dir,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts (again) on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(server_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_until(Duration::from_secs(10), "redis-server answers", || {
            answers_ping(port)
        });
    }

    /// Stops it; clients see the connection refused until [`RedisServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
