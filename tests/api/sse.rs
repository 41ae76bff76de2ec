//! Reading `GET /events` as a client does: the stream's messages, parsed, as they arrive.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::Client;

/// One message of the stream: an event (its `id:` line and JSON data) or a comment.
#[derive(Debug, Clone)]
pub enum Message {
    Event { id: String, data: Value },
    Comment(String),
}

/// An open event stream; messages arrive on a channel as the server sends them.
pub struct EventStream {
    messages: mpsc::Receiver<Message>,
}

impl EventStream {
    /// Opens `GET /events{query}` with `token`, resuming after `last_event_id` if given; panics
    /// unless the answer is a `200` event stream.
    pub fn open(client: &Client, token: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent
            .get(client.url(&format!("/events{query}")))
            .header("Authorization", &format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.call().expect("the server answers");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        let (sender, messages) = mpsc::channel();
        thread::spawn(move || {
            let reader = BufReader::new(response.into_body().into_reader());
            let (mut id, mut data) = (String::new(), String::new());
            for line in reader.lines() {
                let Ok(line) = line else { return };
                let message = if line.is_empty() {
                    if data.is_empty() {
                        continue;
                    }
                    let parsed = serde_json::from_str(&data).expect("each data line is JSON");
                    data.clear();
                    Message::Event {
                        id: std::mem::take(&mut id),
                        data: parsed,
                    }
                } else if let Some(comment) = line.strip_prefix(':') {
                    Message::Comment(comment.trim().to_string())
                } else if let Some(value) = line.strip_prefix("id: ") {
                    id = value.to_string();
                    continue;
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                    continue;
                } else {
                    continue;
                };
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        EventStream { messages }
    }

    /// The next event (skipping comments), within `limit`.
    pub fn next_event(&self, limit: Duration) -> Option<(String, Value)> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.messages.recv_timeout(left).ok()? {
                Message::Event { id, data } => return Some((id, data)),
                Message::Comment(_) => {}
            }
        }
    }

    /// The next event, which must come within 10 s.
    pub fn event(&self) -> (String, Value) {
        self.next_event(Duration::from_secs(10))
            .expect("an event arrives within 10 s")
    }

    /// The next `n` events.
    pub fn events(&self, n: usize) -> Vec<(String, Value)> {
        (0..n).map(|_| self.event()).collect()
    }

    /// Whether the server ends the stream within `limit` (messages before the end are read);
    /// returns the comments it sent meanwhile, and the `type` of each event.
    pub fn ends_within(&self, limit: Duration) -> Option<Vec<String>> {
        let deadline = std::time::Instant::now() + limit;
        let mut comments = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(Message::Comment(text)) => comments.push(text),
                Ok(Message::Event { data, .. }) => {
                    comments.push(data["type"].as_str().unwrap_or_default().to_string())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Some(comments),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// The next comment, within `limit` (events before it are passed over).
    pub fn next_comment(&self, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Message::Comment(text) = self.messages.recv_timeout(left).ok()? {
                return Some(text);
            }
        }
    }
}
