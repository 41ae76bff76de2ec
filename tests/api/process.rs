//! Running the real `sessiond` binary, as an operator does, with its log captured.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::helpers::{Client, SERVICE_KEY};

pub struct Process {
    child: Child,
    pub client: Client,
    log: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
}

/// The binary with no `SESSIOND_*` variable inherited from the test's environment.
pub fn sessiond() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIOND_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

impl Process {
    /// Starts sessiond on a free port with the test service key and `env`, and waits until it
    /// listens. `Err` carries what it printed if it exited instead.
    pub fn start(env: &[(&str, &str)]) -> Result<Self, String> {
        let mut command = sessiond();
        command
            .env("SESSIOND_BIND", "127.0.0.1:0")
            .env("SESSIOND_SERVICE_KEYS", SERVICE_KEY)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("sessiond starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let sink = log.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // In a text line or inside a JSON one: the address ends where its characters do.
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let address: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
                        .collect();
                    let _ = sender.send(address);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => Ok(Process {
                child,
                client: Client::new(address.parse().expect("a socket address")),
                log,
                reader: Some(reader),
            }),
            Err(_) => {
                // Exited, or never said where it listens: either way it is not serving.
                let _ = child.kill();
                let status = child.wait().expect("sessiond exits");
                let _ = reader.join();
                let log = log.lock().unwrap().clone();
                Err(format!("{status}: {log}"))
            }
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit; returns the exit status and the whole log.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let status = self.child.wait().expect("sessiond exits");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.log())
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// SIGKILL, while other threads may still be talking to it.
    pub fn kill_now(&self) {
        self.signal("-KILL");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::ops::Deref for Process {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
