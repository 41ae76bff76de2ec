//! What the audit trail records: who ended which session and how, or whose login was refused.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Millis, Scope, SessionData};

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
    /// `DELETE /sessions`, or `DELETE /sessions/mine`.
    Bulk,
    /// `DELETE /users/{user_id}/sessions`: every session of the user.
    Revoke,
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
    /// For `session-ended`: who ended it; null otherwise, and when an app server did (its
    /// service key revoked the user's sessions).
    #[schema(required = true)]
    pub actor: Option<Actor>,
    pub session: Subject,
    /// For `login-denied`: the IP addresses the user already had sessions from (those the
    /// reader may see: an `org_admin` sees only its organisation's).
    #[schema(value_type = Vec<String>)]
    pub existing_ip_addresses: Vec<IpAddr>,
    /// Where each of `existing_ip_addresses` is: its organisation, and whether it holds
    /// `admin`. Kept, never shown.
    #[serde(skip)]
    pub existing_in: Vec<(String, bool)>,
}

impl AuditEvent {
    /// The event as a reader of `scope` may see it: a denied login's existing sessions
    /// outside the scope are left out (an address recorded without where it was, by an
    /// earlier version, only for a reader of everything).
    pub fn within(mut self, scope: &Scope) -> Self {
        if *scope != Scope::All {
            let existing = std::mem::take(&mut self.existing_ip_addresses);
            self.existing_ip_addresses = existing
                .into_iter()
                .zip(&self.existing_in)
                .filter(|(_, (organisation, admin))| scope.admits(organisation, *admin))
                .map(|(ip, _)| ip)
                .collect();
        }
        self
    }
}
