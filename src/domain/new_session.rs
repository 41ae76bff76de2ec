//! The login request an app server sends, and its parsed form.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;

use super::assurance::{AssuranceTimeouts, MAX_LEVEL};
use super::limits::{
    DEFAULT_ORGANISATION, MAX_ROLES, MAX_ROLE_CHARS, MAX_TEXT_CHARS, MAX_TIMEOUT_SECONDS,
    MAX_USER_AGENT_CHARS,
};
use super::policy::ConcurrentSessions;
use super::text::{check, checked, refuse_forbidden};
use super::{Device, Millis};

/// `POST /sessions` body. Unknown fields are rejected, so a typo such as `organization` is caught.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "user_id": "tpringle",
    "name": "Teresa Pringle",
    "organisation": "Default",
    "ip_address": "59.100.242.122",
    "server_name": "LOCAL",
    "roles": [],
    "timeout_seconds": 1800,
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"
}))]
pub struct NewSessionRequest {
    /// 1–256 characters. One identity across organisations: the policy, the per-user limit
    /// and My sessions count a user's sessions in every organisation together. An app whose
    /// user ids are unique only within an organisation qualifies them (`acme:jsmith`).
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$",
        example = "tpringle"
    )]
    pub user_id: String,
    /// The user's display name, 1–256 characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$",
        example = "Teresa Pringle"
    )]
    pub name: String,
    /// 1–256 characters; `Default` when not given.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$",
        example = "Default"
    )]
    pub organisation: Option<String>,
    /// The end user's IPv4 or IPv6 address, as the app server saw it.
    #[schema(schema_with = crate::schema::ip_address)]
    pub ip_address: String,
    /// The app-server node the user is on, 1–256 characters; this service's own server name
    /// when not given.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$",
        example = "LOCAL"
    )]
    pub server_name: Option<String>,
    /// At most 16 roles; `admin` and `org_admin` may list and end sessions.
    #[schema(schema_with = crate::schema::roles)]
    pub roles: Option<Vec<String>>,
    /// The idle timeout in seconds, 1..=604800; the service's default when not given.
    #[schema(minimum = 1, maximum = 604800, value_type = Option<i64>)]
    pub timeout_seconds: Option<serde_json::Number>,
    /// At most 512 characters.
    #[schema(
        max_length = 512,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$"
    )]
    pub user_agent: Option<String>,
    /// How strong the app server's authentication of the user was, 1..=3 (NIST SP 800-63B-4's
    /// AAL1..AAL3); 1 when not given. Levels 2 and 3 end sooner (`SESSIOND_ASSURANCE_TIMEOUTS`).
    #[schema(minimum = 1, maximum = 3, value_type = Option<i64>, example = 1)]
    pub assurance_level: Option<serde_json::Number>,
    /// Overrides the server's concurrent-session policy for this one login: after a
    /// `login-denied`, the app asks the user and repeats the login with `replace`.
    #[schema(value_type = Option<ConcurrentSessions>)]
    pub concurrent_sessions: Option<String>,
}

/// What the service fills in when a login leaves it out.
pub struct Defaults<'a> {
    pub server_name: &'a str,
    pub timeout_seconds: u32,
}

/// The policy a login asks for, if any: one of the policy's names, or an error naming the field.
pub fn requested_policy(request: &NewSessionRequest) -> Result<Option<ConcurrentSessions>, String> {
    use clap::ValueEnum;
    let Some(name) = &request.concurrent_sessions else {
        return Ok(None);
    };
    ConcurrentSessions::from_str(name, false)
        .map(Some)
        .map_err(|_| {
            format!(
                "concurrent_sessions: {name:?} is not a policy; use {}",
                ConcurrentSessions::names()
            )
        })
}

/// A login request that has been checked field by field.
#[derive(Debug)]
pub struct NewSession {
    pub user_id: Arc<str>,
    pub name: Arc<str>,
    pub organisation: Arc<str>,
    pub ip_address: IpAddr,
    pub server_name: Arc<str>,
    pub roles: Vec<Arc<str>>,
    pub user_agent: Option<Arc<str>>,
    pub device: Option<Arc<Device>>,
    pub timeout_seconds: u32,
    pub assurance_level: u8,
    /// When the authentication becomes too old for its level.
    pub reauthenticate_by: Option<Millis>,
}

/// An assurance level as a request gives it: a whole number 1..=3.
pub fn assurance_level(given: Option<&serde_json::Number>) -> Result<u8, String> {
    match given {
        None => Ok(1),
        Some(n) => match whole_number(n) {
            Some(level @ 1..=3) => Ok(level as u8),
            _ => Err(format!("assurance_level: must be 1, 2 or 3, got {n}")),
        },
    }
}

impl NewSession {
    /// The login `request`, checked; `now` is when it is authenticated, under `assurance`.
    pub fn parse(
        request: NewSessionRequest,
        defaults: &Defaults<'_>,
        assurance: &AssuranceTimeouts,
        now: Millis,
    ) -> Result<Self, String> {
        let assurance_level = assurance_level(request.assurance_level.as_ref())?;
        let ip_address = request.ip_address.parse::<IpAddr>().map_err(|_| {
            format!(
                "ip_address: {:?} is not an IPv4 or IPv6 address",
                request.ip_address
            )
        })?;
        let roles = request.roles.unwrap_or_default();
        if roles.len() > MAX_ROLES {
            return Err(format!(
                "roles: at most {MAX_ROLES} are allowed, got {}",
                roles.len()
            ));
        }
        let mut parsed_roles: Vec<Arc<str>> = Vec::with_capacity(roles.len());
        for role in &roles {
            let role = checked("roles", role, MAX_ROLE_CHARS)?;
            if !parsed_roles.contains(&role) {
                parsed_roles.push(role);
            }
        }
        let timeout_seconds = match &request.timeout_seconds {
            None => defaults.timeout_seconds,
            Some(t) => match whole_number(t) {
                Some(n) if (1..=i64::from(MAX_TIMEOUT_SECONDS)).contains(&n) => n as u32,
                _ => {
                    return Err(format!(
                        "timeout_seconds: must be a whole number between 1 and {MAX_TIMEOUT_SECONDS}, got {t}"
                    ))
                }
            },
        };
        let user_agent: Option<Arc<str>> = match &request.user_agent {
            Some(agent) if agent.chars().count() > MAX_USER_AGENT_CHARS => {
                return Err(format!(
                    "user_agent: at most {MAX_USER_AGENT_CHARS} characters are allowed"
                ))
            }
            Some(agent) => {
                refuse_forbidden("user_agent", agent)?;
                Some(agent.as_str().into())
            }
            None => None,
        };
        Ok(NewSession {
            user_id: checked("user_id", &request.user_id, MAX_TEXT_CHARS)?,
            name: checked("name", &request.name, MAX_TEXT_CHARS)?,
            organisation: match &request.organisation {
                Some(org) => checked("organisation", org, MAX_TEXT_CHARS)?,
                None => DEFAULT_ORGANISATION.into(),
            },
            ip_address,
            server_name: checked(
                "server_name",
                request
                    .server_name
                    .as_deref()
                    .unwrap_or(defaults.server_name),
                MAX_TEXT_CHARS,
            )?,
            roles: parsed_roles,
            device: user_agent.as_deref().and_then(Device::known),
            user_agent,
            timeout_seconds: assurance.idle_timeout(assurance_level, timeout_seconds),
            assurance_level,
            reauthenticate_by: assurance.reauthenticate_by(assurance_level, now),
        })
    }
}

impl NewSession {
    /// The session this login becomes, created at `now`.
    pub fn into_data(self, id: super::SessionId, now: super::Millis) -> super::SessionData {
        super::SessionData {
            id,
            user_id: self.user_id,
            name: self.name,
            organisation: self.organisation,
            ip_address: self.ip_address,
            server_name: self.server_name,
            roles: self.roles.into(),
            user_agent: self.user_agent,
            device: self.device,
            timeout_seconds: self.timeout_seconds,
            created_at: now,
            authenticated_at: now,
            assurance_level: self.assurance_level,
            reauthenticate_by: self.reauthenticate_by,
            last_ip_address: self.ip_address,
        }
    }
}

/// Holds a session read back from storage (a snapshot) to the rules a login is held to.
pub fn check_saved(data: &super::SessionData) -> Result<(), String> {
    check("user_id", &data.user_id, MAX_TEXT_CHARS)?;
    check("name", &data.name, MAX_TEXT_CHARS)?;
    check("organisation", &data.organisation, MAX_TEXT_CHARS)?;
    check("server_name", &data.server_name, MAX_TEXT_CHARS)?;
    if data.roles.len() > MAX_ROLES {
        return Err(format!("roles: at most {MAX_ROLES} are allowed"));
    }
    for role in data.roles.iter() {
        check("roles", role, MAX_ROLE_CHARS)?;
    }
    if let Some(agent) = &data.user_agent {
        if agent.chars().count() > MAX_USER_AGENT_CHARS {
            return Err(format!(
                "user_agent: at most {MAX_USER_AGENT_CHARS} characters are allowed"
            ));
        }
        refuse_forbidden("user_agent", agent)?;
    }
    if !(1..=MAX_LEVEL).contains(&data.assurance_level) {
        return Err(format!(
            "assurance_level: must be 1 to {MAX_LEVEL}, got {}",
            data.assurance_level
        ));
    }
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&data.timeout_seconds) {
        return Err(format!(
            "timeout_seconds: must be between 1 and {MAX_TIMEOUT_SECONDS}"
        ));
    }
    Ok(())
}

/// A JSON number that is a whole number (`1800` or `1800.0`, as JSON Schema's `integer`).
fn whole_number(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Defaults<'static> = Defaults {
        server_name: "LOCAL",
        timeout_seconds: 1800,
    };

    fn request() -> NewSessionRequest {
        NewSessionRequest {
            user_id: "tpringle".into(),
            name: "Teresa Pringle".into(),
            organisation: None,
            ip_address: "59.100.242.122".into(),
            server_name: None,
            roles: None,
            timeout_seconds: None,
            user_agent: None,
            concurrent_sessions: None,
            assurance_level: None,
        }
    }

    #[test]
    fn fills_in_defaults() {
        let s = NewSession::parse(
            request(),
            &DEFAULTS,
            &AssuranceTimeouts::default(),
            Millis(0),
        )
        .unwrap();
        assert_eq!(&*s.organisation, "Default");
        assert_eq!(&*s.server_name, "LOCAL");
        assert_eq!(s.timeout_seconds, 1800);
        assert!(s.roles.is_empty());
        assert!(s.user_agent.is_none());
    }

    #[test]
    fn accepts_ipv6_and_limits_at_their_edges() {
        let mut r = request();
        r.ip_address = "2001:db8::1".into();
        r.name = "é".repeat(MAX_TEXT_CHARS);
        r.timeout_seconds = serde_json::Number::from_f64(f64::from(MAX_TIMEOUT_SECONDS));
        r.roles = Some(vec!["r".repeat(MAX_ROLE_CHARS); MAX_ROLES]);
        r.user_agent = Some("a".repeat(MAX_USER_AGENT_CHARS));
        let s = NewSession::parse(r, &DEFAULTS, &AssuranceTimeouts::default(), Millis(0)).unwrap();
        assert_eq!(s.ip_address.to_string(), "2001:db8::1");
        assert_eq!(s.roles.len(), 1, "duplicate roles count once");
    }

    #[test]
    fn rejects_each_bad_field_by_name() {
        type Edit = fn(&mut NewSessionRequest);
        let cases: &[(&str, Edit)] = &[
            ("user_id", |r| r.user_id = String::new()),
            ("user_id", |r| r.user_id = "u".repeat(MAX_TEXT_CHARS + 1)),
            ("name", |r| r.name = "a\nb".into()),
            ("name", |r| r.name = "Ada\u{202E}nimdA".into()),
            ("user_agent", |r| r.user_agent = Some("x\u{200B}".into())),
            ("organisation", |r| r.organisation = Some(String::new())),
            ("ip_address", |r| r.ip_address = "999.1.1.1".into()),
            ("ip_address", |r| r.ip_address = "059.100.242.122".into()),
            ("ip_address", |r| r.ip_address = "localhost".into()),
            ("server_name", |r| {
                r.server_name = Some("s".repeat(MAX_TEXT_CHARS + 1))
            }),
            ("roles", |r| r.roles = Some(vec!["x".into(); MAX_ROLES + 1])),
            ("roles", |r| r.roles = Some(vec![String::new()])),
            ("roles", |r| {
                r.roles = Some(vec!["r".repeat(MAX_ROLE_CHARS + 1)])
            }),
            ("timeout_seconds", |r| r.timeout_seconds = Some(0.into())),
            ("timeout_seconds", |r| {
                r.timeout_seconds = Some((MAX_TIMEOUT_SECONDS + 1).into())
            }),
            ("timeout_seconds", |r| r.timeout_seconds = Some((-1).into())),
            ("timeout_seconds", |r| {
                r.timeout_seconds = serde_json::Number::from_f64(1.5)
            }),
            ("user_agent", |r| {
                r.user_agent = Some("a".repeat(MAX_USER_AGENT_CHARS + 1))
            }),
        ];
        for (field, edit) in cases {
            let mut r = request();
            edit(&mut r);
            let err = NewSession::parse(r, &DEFAULTS, &AssuranceTimeouts::default(), Millis(0))
                .unwrap_err();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }
}
