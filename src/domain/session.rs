//! A session as stores keep it, and as the API shows it.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Device, Millis, SessionId, TokenDigest};

/// A session as a login made it. Strings are shared (`Arc<str>`), so copying a session out of
/// a store bumps reference counts instead of allocating. A reauthentication changes the
/// authentication's fields (and may tighten the idle timeout); a validation that reports the
/// client's address changes `last_ip_address`; nothing else changes after login.
#[derive(Clone, Debug)]
pub struct SessionData {
    pub id: SessionId,
    pub user_id: Arc<str>,
    pub name: Arc<str>,
    pub organisation: Arc<str>,
    pub ip_address: IpAddr,
    pub server_name: Arc<str>,
    pub roles: Arc<[Arc<str>]>,
    pub user_agent: Option<Arc<str>>,
    /// What the user agent tells of the device, read once at login.
    pub device: Option<Arc<Device>>,
    /// The idle timeout.
    pub timeout_seconds: u32,
    pub created_at: Millis,
    /// The last (re)authentication, and how strong it was (1..=3, as the app server vouched).
    pub authenticated_at: Millis,
    pub assurance_level: u8,
    /// When the authentication is too old for its level (`SESSIOND_ASSURANCE_TIMEOUTS`): the
    /// session ends then unless the user authenticates again. None at levels without a limit.
    pub reauthenticate_by: Option<Millis>,
    /// The client address last reported (at login, or by `X-Client-IP`).
    pub last_ip_address: IpAddr,
}

impl SessionData {
    pub fn holds_admin(&self) -> bool {
        holds_admin(&self.roles)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| &**r == role)
    }

    /// When the session ends if nothing touches it (see [`expires_at`]).
    pub fn expires_at(&self, last_active_at: Millis, max_lifetime_seconds: u64) -> Millis {
        expires_at(
            last_active_at,
            self.timeout_seconds,
            self.created_at,
            max_lifetime_seconds,
            self.reauthenticate_by,
        )
    }
}

/// The expiry rule, the one place it is written in Rust: a session ends at
/// `min(last_active + idle timeout, created + max lifetime, reauthenticate_by)`, and is expired
/// once `now >=` that. The Redis scripts carry the same rule in Lua (`expires_at` in their
/// prelude), tested against this function.
pub fn expires_at(
    last_active_at: Millis,
    timeout_seconds: u32,
    created_at: Millis,
    max_lifetime_seconds: u64,
    reauthenticate_by: Option<Millis>,
) -> Millis {
    let end = last_active_at
        .plus_seconds(u64::from(timeout_seconds))
        .min(created_at.plus_seconds(max_lifetime_seconds));
    reauthenticate_by.map_or(end, |by| end.min(by))
}

/// Why a session ended, as metrics, events and responses name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The holder logged out.
    Logout,
    /// An administrator ended it.
    Admin,
    /// Its idle timeout or max lifetime passed.
    Expired,
    /// A login with `replace` ended it.
    Replaced,
    /// A login beyond the user's limit ended it, the least recently active.
    Evicted,
    /// Its own user ended it from another of their sessions.
    #[serde(rename = "self")]
    SelfService,
    /// Every session of its user was ended (`DELETE /users/{user_id}/sessions`: the account
    /// was disabled, or its password changed).
    Revoked,
    /// A validation reported another client address and `SESSIOND_IP_CHANGE=end` ends it.
    IpChanged,
}

impl EndReason {
    /// Every reason; a journal record names one by its position here, so new ones go last.
    pub const ALL: [EndReason; 8] = [
        EndReason::Logout,
        EndReason::Admin,
        EndReason::SelfService,
        EndReason::Expired,
        EndReason::Replaced,
        EndReason::Evicted,
        EndReason::Revoked,
        EndReason::IpChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Admin => "admin",
            EndReason::Expired => "expired",
            EndReason::Replaced => "replaced",
            EndReason::Evicted => "evicted",
            EndReason::SelfService => "self",
            EndReason::Revoked => "revoked",
            EndReason::IpChanged => "ip-changed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Why a token stopped working, as a `401` tells the holder of its secret: its session ended
/// (and why), or the token was replaced by a rotation while the session goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stopped {
    Expired,
    Logout,
    Admin,
    #[serde(rename = "self")]
    SelfService,
    Replaced,
    Evicted,
    Revoked,
    IpChanged,
    /// A new token replaced it; the session goes on.
    Rotated,
}

impl Stopped {
    pub const ALL: [Stopped; 9] = [
        Stopped::Expired,
        Stopped::Logout,
        Stopped::Admin,
        Stopped::SelfService,
        Stopped::Replaced,
        Stopped::Evicted,
        Stopped::Revoked,
        Stopped::IpChanged,
        Stopped::Rotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stopped::Rotated => "rotated",
            Stopped::Expired => "expired",
            Stopped::Logout => "logout",
            Stopped::Admin => "admin",
            Stopped::SelfService => "self",
            Stopped::Replaced => "replaced",
            Stopped::Evicted => "evicted",
            Stopped::Revoked => "revoked",
            Stopped::IpChanged => "ip-changed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl From<EndReason> for Stopped {
    fn from(reason: EndReason) -> Self {
        match reason {
            EndReason::Logout => Stopped::Logout,
            EndReason::Admin => Stopped::Admin,
            EndReason::Expired => Stopped::Expired,
            EndReason::Replaced => Stopped::Replaced,
            EndReason::Evicted => Stopped::Evicted,
            EndReason::SelfService => Stopped::SelfService,
            EndReason::Revoked => Stopped::Revoked,
            EndReason::IpChanged => Stopped::IpChanged,
        }
    }
}

/// A session read out of a store at one instant.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub data: SessionData,
    pub last_active_at: Millis,
    pub expires_at: Millis,
}

impl SessionRecord {
    /// Whether a validation at `now` should record activity, when a store records it at most
    /// once per `interval` (so that most validations are reads): once `interval` has passed
    /// since the last record, or a quarter of the idle timeout if that is shorter, so a short
    /// timeout is never cut by more than a quarter.
    pub fn activity_due(&self, now: Millis, interval_ms: u64) -> bool {
        let timeout_ms = u64::from(self.data.timeout_seconds) * 1000;
        now.0 >= self.last_active_at.0 + interval_ms.min(timeout_ms / 4)
    }

    /// The record of `data` last active at `last_active_at`, its expiry by the one rule.
    pub fn new(data: SessionData, last_active_at: Millis, max_lifetime_seconds: u64) -> Self {
        SessionRecord {
            expires_at: data.expires_at(last_active_at, max_lifetime_seconds),
            data,
            last_active_at,
        }
    }
}

/// A session as the data directory keeps it (a snapshot, a journal record) and a replica
/// copies it: with the digest of its token's secret.
#[derive(Debug)]
pub struct SavedSession {
    pub digest: TokenDigest,
    pub data: SessionData,
    pub last_active_at: Millis,
}

/// Which sessions an administrator may see and end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `admin`: every organisation.
    All,
    /// `org_admin`: its own organisation only.
    Organisation(Arc<str>),
}

impl Scope {
    /// Whether a session of `organisation` is in scope. An `org_admin` never reaches a
    /// session that holds the `admin` role, even in its own organisation: an administrator of
    /// everything is not within one organisation's administration.
    pub fn admits(&self, organisation: &str, holds_admin: bool) -> bool {
        match self {
            Scope::All => true,
            Scope::Organisation(own) => &**own == organisation && !holds_admin,
        }
    }

    /// Whether sessions holding `admin` are out of scope.
    pub fn excludes_admins(&self) -> bool {
        matches!(self, Scope::Organisation(_))
    }
}

/// The role that reaches every session.
pub const ADMIN_ROLE: &str = "admin";
/// The role that reaches its own organisation's sessions, except those holding `admin`.
pub const ORG_ADMIN_ROLE: &str = "org_admin";

/// What a session's roles let it do to other sessions; every other role is the app's own and
/// means nothing to sessiond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// [`ADMIN_ROLE`]: every session.
    Admin,
    /// [`ORG_ADMIN_ROLE`]: its organisation's sessions.
    OrgAdmin,
    /// Its own user's sessions only.
    None,
}

impl Privilege {
    pub fn of(roles: &[Arc<str>]) -> Self {
        if holds_admin(roles) {
            Privilege::Admin
        } else if roles.iter().any(|r| &**r == ORG_ADMIN_ROLE) {
            Privilege::OrgAdmin
        } else {
            Privilege::None
        }
    }
}

/// Whether a set of roles holds [`ADMIN_ROLE`].
pub fn holds_admin(roles: &[Arc<str>]) -> bool {
    roles.iter().any(|r| &**r == ADMIN_ROLE)
}

/// A session as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct Session {
    #[schema(value_type = String, example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub id: SessionId,
    #[schema(value_type = String, example = "tpringle")]
    pub user_id: Arc<str>,
    #[schema(value_type = String, example = "Teresa Pringle")]
    pub name: Arc<str>,
    #[schema(value_type = String, example = "Default")]
    pub organisation: Arc<str>,
    #[schema(value_type = String, example = "59.100.242.122")]
    pub ip_address: IpAddr,
    #[schema(value_type = String, example = "LOCAL")]
    pub server_name: Arc<str>,
    #[schema(value_type = Vec<String>, example = json!([]))]
    pub roles: Arc<[Arc<str>]>,
    /// The user agent the app server reported, or null.
    #[schema(value_type = Option<String>, required = true, example = "Mozilla/5.0 (X11; Linux x86_64)")]
    pub user_agent: Option<Arc<str>>,
    /// What the user agent tells of the device ("Chrome 131", "macOS", "desktop"), read once
    /// at login; null without a user agent, or one not recognised.
    #[schema(value_type = Option<Device>, required = true)]
    pub device: Option<Arc<Device>>,
    /// The client address last reported: at login, or by an app server's validation with
    /// `X-Client-IP`.
    #[schema(value_type = String, example = "59.100.242.122")]
    pub last_ip_address: IpAddr,
    /// The last authentication: the login, or the latest reauthentication.
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:00:00Z")]
    pub authenticated_at: Millis,
    /// How strong that authentication was, 1..=3, as the app server vouched (NIST SP
    /// 800-63B-4's AAL1..AAL3).
    #[schema(minimum = 1, maximum = 3, example = 1)]
    pub assurance_level: u8,
    /// The idle timeout of this session, in seconds.
    #[schema(example = 1800)]
    pub timeout_seconds: u32,
    /// Seconds since the session was created.
    #[schema(example = 53)]
    pub session_time_seconds: u64,
    /// Seconds since the session was last used.
    #[schema(example = 3)]
    pub idle_seconds: u64,
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:00:00Z")]
    pub created_at: Millis,
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:00:50Z")]
    pub last_active_at: Millis,
    /// `min(last_active_at + timeout, created_at + max lifetime)`.
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T23:30:50Z")]
    pub expires_at: Millis,
    /// True for the caller's own session.
    pub own: bool,
}

impl Session {
    pub fn view(record: SessionRecord, now: Millis, caller: Option<SessionId>) -> Self {
        let SessionRecord {
            data,
            last_active_at,
            expires_at,
        } = record;
        Session {
            own: caller == Some(data.id),
            id: data.id,
            user_id: data.user_id,
            name: data.name,
            organisation: data.organisation,
            ip_address: data.ip_address,
            server_name: data.server_name,
            roles: data.roles,
            user_agent: data.user_agent,
            device: data.device,
            last_ip_address: data.last_ip_address,
            authenticated_at: data.authenticated_at,
            assurance_level: data.assurance_level,
            timeout_seconds: data.timeout_seconds,
            session_time_seconds: now.seconds_since(data.created_at),
            idle_seconds: now.seconds_since(last_active_at),
            created_at: data.created_at,
            last_active_at,
            expires_at,
        }
    }
}
