//! What the CLI reads from sessiond's answers, typed: each struct names the fields of one
//! answer that the CLI shows (the rest is passed through untouched with `--json`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::CliError;

/// Reads `value` as `T`, or says what sessiond answered that was not.
pub fn read<T: DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value)
        .map_err(|e| CliError::Failed(format!("sessiond answered something unexpected: {e}")))
}

/// A page of `GET /sessions`; its items stay JSON, to be shown as [`Listed`] or passed on.
#[derive(Deserialize)]
pub struct Page {
    pub items: Vec<Value>,
    pub total: u64,
    pub next_cursor: Option<String>,
}

/// A session as the lists show it.
#[derive(Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub organisation: String,
    pub ip_address: String,
    pub server_name: String,
    pub timeout_seconds: u64,
    pub session_time_seconds: u64,
    pub idle_seconds: u64,
    pub user_agent: Option<String>,
    #[serde(default)]
    pub device: Option<crate::domain::Device>,
    #[serde(default)]
    pub last_ip_address: Option<String>,
    pub roles: Vec<String>,
    pub expires_at: String,
    /// Whether it is the caller's own session.
    pub own: bool,
}

impl Listed {
    /// The device as its user knows it: "Chrome 131 on macOS", else the user agent.
    pub fn device(&self) -> String {
        self.device
            .as_ref()
            .and_then(|d| d.describe())
            .or_else(|| self.user_agent.clone())
            .unwrap_or_else(|| "-".into())
    }
}

/// `GET /sessions/mine`.
#[derive(Deserialize)]
pub struct Mine {
    pub items: Vec<Value>,
    pub total: u64,
}

/// `DELETE /sessions` and `DELETE /sessions/mine`.
#[derive(Deserialize)]
pub struct Deleted {
    pub deleted: Vec<String>,
    /// Absent from `DELETE /sessions/mine`'s answer.
    #[serde(default)]
    pub not_found: Vec<String>,
    #[serde(default)]
    pub refused: Vec<Refused>,
}

#[derive(Deserialize)]
pub struct Refused {
    pub id: String,
}

/// An event of `GET /events`.
#[derive(Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    pub data: EventData,
}

/// The fields of any event's data that a line shows (absent ones as `-`).
#[derive(Deserialize)]
pub struct EventData {
    pub id: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub organisation: Option<String>,
    pub ip_address: Option<String>,
    pub server_name: Option<String>,
    pub reason: Option<String>,
    pub assurance_level: Option<u8>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `POST /sessions`: the login's body.
#[derive(Serialize)]
pub struct Login<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub ip_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// `POST /sessions`: what the CLI prints of its answer.
#[derive(Deserialize)]
pub struct Created {
    pub token: String,
}
