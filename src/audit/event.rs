//! What the audit trail records: who ended which session and how, or whose login was refused.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Millis, SessionData};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A session was ended by the holder of another: an administrator, or its own user.
    SessionEnded,
    /// The concurrent-session policy refused a login.
    LoginDenied,
}

/// How the session was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndMethod {
    /// `DELETE /sessions/{id}`.
    Single,
    /// `DELETE /sessions`.
    Bulk,
}

/// The session holder who acted: an administrator, or the user from another device.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    pub session_id: String,
    pub user_id: String,
    pub organisation: String,
}

impl Actor {
    pub fn of(data: &SessionData) -> Self {
        Actor {
            session_id: data.id.to_string(),
            user_id: data.user_id.to_string(),
            organisation: data.organisation.to_string(),
        }
    }
}

/// The session acted on: for a denied login, the login that was refused (it has no id).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Subject {
    /// Null for a refused login, which has no session.
    #[schema(required = true)]
    pub id: Option<String>,
    pub user_id: String,
    pub organisation: String,
    #[schema(value_type = String)]
    pub ip_address: IpAddr,
    pub server_name: String,
    /// Whether the session held `admin`: then no `org_admin` sees the event.
    #[serde(skip)]
    pub holds_admin: bool,
}

impl Subject {
    pub fn of(data: &SessionData) -> Self {
        Subject {
            id: Some(data.id.to_string()),
            user_id: data.user_id.to_string(),
            organisation: data.organisation.to_string(),
            ip_address: data.ip_address,
            server_name: data.server_name.to_string(),
            holds_admin: data.holds_admin(),
        }
    }
}

/// One entry of the audit trail.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Unique, and greater for every later event: a number, or on Redis its entry's id.
    #[schema(example = "42")]
    pub id: String,
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:05:00Z")]
    pub at: Millis,
    pub action: AuditAction,
    /// For `session-ended`: single or bulk; null otherwise.
    #[schema(required = true)]
    pub method: Option<EndMethod>,
    /// For `session-ended`: who ended it; null otherwise.
    #[schema(required = true)]
    pub actor: Option<Actor>,
    pub session: Subject,
    /// For `login-denied`: the IP addresses the user already had sessions from.
    #[schema(value_type = Vec<String>)]
    pub existing_ip_addresses: Vec<IpAddr>,
}
