//! Settings, each from an environment variable or the matching command-line flag.

use crate::webhooks::WebhookSecret;
use std::net::{SocketAddr, ToSocketAddrs};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Args, Parser, ValueEnum};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::limits::{
    MAX_ROLES, MAX_ROLE_CHARS, MAX_TEXT_CHARS, MAX_TIMEOUT_SECONDS, MAX_USER_AGENT_CHARS,
};
use crate::domain::text::forbidden;
use crate::domain::{AssuranceTimeouts, ConcurrentSessions};
use crate::logging::LogFormat;
use crate::persistence::journal::Fsync;

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "SESSIOND_BIND", default_value = "127.0.0.1:8080", value_name = "HOST:PORT", value_parser = parse_bind)]
    pub bind: SocketAddr,

    /// Server name given to sessions whose login names none.
    #[arg(long, env = "SESSIOND_SERVER_NAME", default_value = "LOCAL", value_name = "NAME", value_parser = parse_server_name)]
    pub server_name: String,

    /// Comma-separated keys that app servers send as X-Service-Key; one is generated (and
    /// printed) when unset.
    #[arg(long, env = "SESSIOND_SERVICE_KEYS", value_name = "KEY,...", hide_env_values = true, value_parser = ServiceKeys::parse)]
    pub service_keys: Option<ServiceKeys>,

    /// Default idle timeout of a session, in seconds (1 to a week).
    #[arg(long, env = "SESSIOND_IDLE_TIMEOUT", default_value_t = 1800, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TIMEOUT_SECONDS)))]
    pub idle_timeout: u32,

    /// Absolute lifetime of every session, in seconds, however active it is.
    #[arg(long, env = "SESSIOND_MAX_LIFETIME", default_value_t = 43_200, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
    pub max_lifetime: u64,

    /// What happens when a user who has a session logs in again.
    #[arg(long, env = "SESSIOND_CONCURRENT_SESSIONS", value_enum, default_value_t = ConcurrentSessions::DenyOtherIp, value_name = "POLICY")]
    pub concurrent_sessions: ConcurrentSessions,

    /// The longest idle timeout and time since authentication of sessions of assurance levels
    /// 2 and 3, in seconds (NIST SP 800-63B-4's figures by default), or `none`.
    #[arg(long, env = "SESSIOND_ASSURANCE_TIMEOUTS", default_value = "2=3600/86400,3=900/43200", value_name = "LEVEL=IDLE/MAX,...", value_parser = AssuranceTimeouts::parse)]
    pub assurance_timeouts: AssuranceTimeouts,

    /// What a validation that reports another client address (`X-Client-IP`) does: `allow`
    /// records it, `report` also announces it (`session-ip-changed`), `end` ends the session.
    #[arg(long, env = "SESSIOND_IP_CHANGE", value_enum, default_value_t = IpChange::Allow, value_name = "POLICY")]
    pub ip_change: IpChange,

    /// Which `concurrent_sessions` values a login may ask for instead of the server's policy,
    /// comma-separated (`replace`, `replace,allow`), or `none`; any other is refused (400).
    #[arg(long, env = "SESSIOND_LOGIN_OVERRIDES", default_value = DEFAULT_LOGIN_OVERRIDES, value_name = "POLICY,...|none", value_parser = LoginOverrides::parse)]
    pub login_overrides: LoginOverrides,

    /// The most live sessions one user may have; a login beyond it ends the user's least
    /// recently active one. 0: no limit.
    #[arg(long, env = "SESSIOND_MAX_SESSIONS_PER_USER", default_value_t = 100, value_name = "SESSIONS", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_sessions_per_user: u32,

    /// Seats per organisation, `Acme=50,Default=200`: at most that many distinct users with
    /// live sessions in the organisation at once; none when unset.
    #[arg(long, env = "SESSIOND_ORGANISATION_SEATS", value_name = "ORG=SEATS,...", value_parser = Seats::parse)]
    pub organisation_seats: Option<Seats>,

    /// Start with sample sessions and an administrator session, and print the console's URL.
    #[arg(long, env = "SESSIOND_DEMO", value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// Where sessions live: `memory` (this process), or a Redis URL shared by several nodes.
    #[arg(long, env = "SESSIOND_STORE", hide_env_values = true, default_value = "memory", value_name = "memory|redis[s]://[USER:PASSWORD@]HOST:PORT/DB", value_parser = StoreSetting::parse)]
    pub store: StoreSetting,

    /// Prefix of every Redis key, so that several deployments can share one Redis.
    #[arg(long, env = "SESSIOND_REDIS_PREFIX", default_value = "sessiond:", value_name = "PREFIX", value_parser = parse_prefix)]
    pub redis_prefix: String,

    /// Redis replicas that must confirm every login and end before it is acknowledged
    /// (`WAIT`); when fewer confirm within a second the request answers 503.
    #[arg(long, env = "SESSIOND_REDIS_MIN_REPLICAS", default_value_t = 0, value_name = "REPLICAS", value_parser = clap::value_parser!(u32).range(0..=16))]
    pub redis_min_replicas: u32,

    /// Directory for snapshots of the sessions, the audit trail and queued webhook deliveries, so
    /// they survive restarts; memory only when unset.
    #[arg(long, env = "SESSIOND_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// Seconds between snapshots (with SESSIOND_DATA_DIR), which compact the journal; one is
    /// also written on shutdown.
    #[arg(long, env = "SESSIOND_SNAPSHOT_INTERVAL", default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub snapshot_interval: u64,

    /// When a change is acknowledged (with SESSIOND_DATA_DIR): `always` after its journal
    /// record is flushed to disk; `every-second` flushes within a second (a crash may lose the
    /// last second of logins), but ends are still flushed before they are acknowledged.
    #[arg(long, env = "SESSIOND_FSYNC", value_enum, default_value_t = Fsync::Always, value_name = "MODE")]
    pub fsync: Fsync,

    /// Seconds between records of a session's activity (in the journal, or on Redis, where
    /// validations in between are reads): a session may end up to this much (at most a
    /// quarter of its idle timeout) before its exact idle timeout.
    #[arg(long, env = "SESSIOND_ACTIVITY_INTERVAL", default_value_t = 5, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub activity_interval: u64,

    /// The most `GET /events` streams this node serves at once (each session may hold at most
    /// 4); beyond, `429` with `Retry-After`.
    #[arg(long, env = "SESSIOND_MAX_EVENT_STREAMS", default_value_t = 1_000, value_name = "STREAMS", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_event_streams: u64,

    /// How many audit events GET /audit keeps, newest first.
    #[arg(long, env = "SESSIOND_AUDIT_CAPACITY", default_value_t = 10_000, value_name = "EVENTS", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub audit_capacity: u64,

    /// Comma-separated origins allowed to call the API from a browser (CORS); none when unset.
    #[arg(long, env = "SESSIOND_CORS_ORIGINS", value_name = "ORIGIN,...", value_parser = parse_origins)]
    pub cors_origins: Option<Origins>,

    /// Request headers browsers may send from those origins, besides the ones sessiond reads
    /// and the tracing headers allowed by default (comma-separated, e.g. `x-tenant`).
    #[arg(long, env = "SESSIOND_CORS_HEADERS", value_name = "HEADER,...", value_parser = parse_header_names)]
    pub cors_headers: Option<HeaderNames>,

    /// Where every event is POSTed, signed as Standard Webhooks says (with SESSIOND_WEBHOOK_SECRET).
    #[arg(long, env = "SESSIOND_WEBHOOK_URL", hide_env_values = true, value_name = "URL", value_parser = parse_webhook_url)]
    pub webhook_url: Option<String>,

    /// The webhooks' signing secret: whsec_ + base64 of at least 32 random bytes.
    #[arg(long, env = "SESSIOND_WEBHOOK_SECRET", value_name = "whsec_...", hide_env_values = true, value_parser = WebhookSecret::parse)]
    pub webhook_secret: Option<WebhookSecret>,

    /// How log lines are written: `text`, or `json` (one object per line).
    #[arg(long, env = "SESSIOND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SESSIOND_MAX_BODY", default_value_t = 1_048_576, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub max_body: u64,
}

/// `SESSIOND_IP_CHANGE`: what happens when a session's client address changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IpChange {
    Allow,
    Report,
    End,
}

/// What a login may ask for unless `SESSIOND_LOGIN_OVERRIDES` says otherwise.
pub const DEFAULT_LOGIN_OVERRIDES: &str = "replace";

/// The policies a login may ask for (`SESSIOND_LOGIN_OVERRIDES`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginOverrides(Vec<ConcurrentSessions>);

impl LoginOverrides {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "none" {
            return Ok(LoginOverrides(Vec::new()));
        }
        let mut allowed = Vec::new();
        for name in text.split(',').map(str::trim) {
            let policy = ConcurrentSessions::from_str(name, false).map_err(|_| {
                format!(
                    "{name:?} is not a policy; list some of {}, or say none",
                    ConcurrentSessions::names()
                )
            })?;
            if !allowed.contains(&policy) {
                allowed.push(policy);
            }
        }
        Ok(LoginOverrides(allowed))
    }

    pub fn allows(&self, policy: ConcurrentSessions) -> bool {
        self.0.contains(&policy)
    }

    /// As the setting is written: `replace,allow`, or `none`.
    pub fn names(&self) -> String {
        match self.0.is_empty() {
            true => "none".into(),
            false => self
                .0
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// An `http` or `https` URL with a host.
fn parse_webhook_url(text: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(text.trim().to_string()),
        _ => Err(format!("{text:?} is not an http:// or https:// URL")),
    }
}

impl Settings {
    /// The defaults, as if no variable or flag were given.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        Only::parse_from(["sessiond"]).settings
    }
}

/// The keys app servers authenticate with, kept as SHA-256 digests so that comparing them
/// takes the same time whatever the presented key's length or content.
#[derive(Clone)]
pub struct ServiceKeys(Vec<[u8; 32]>);

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceKeys(<{} redacted>)", self.0.len())
    }
}

impl ServiceKeys {
    /// The shortest service key accepted: a key is a shared secret, and a short one can be
    /// guessed.
    pub const MIN_KEY_CHARS: usize = 32;

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("must name at least one key".into());
        }
        let keys: Vec<&str> = text.split(',').map(str::trim).collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err("a key in the list is empty".into());
        }
        if let Some(short) = keys
            .iter()
            .position(|k| k.chars().count() < Self::MIN_KEY_CHARS)
        {
            return Err(format!(
                "key {} of {} is shorter than {} characters; make one with `openssl rand -base64 32`",
                short + 1,
                keys.len(),
                Self::MIN_KEY_CHARS
            ));
        }
        Ok(Self::from_keys(&keys))
    }

    /// How many keys there are.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn from_keys(keys: &[&str]) -> Self {
        ServiceKeys(keys.iter().map(|k| Sha256::digest(k).into()).collect())
    }

    /// A new random key, for a server started without any.
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let key = URL_SAFE_NO_PAD.encode(bytes);
        (Self::from_keys(&[&key]), key)
    }

    /// Whether a presented key (a raw header value) is one of ours. Constant time over every
    /// configured key: no early exit reveals which one matched.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | key.ct_eq(&digest)
            })
            .into()
    }
}

/// Seats per organisation: how many distinct users may have live sessions there at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seats(Vec<(String, u32)>);

impl Seats {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut seats: Vec<(String, u32)> = Vec::new();
        for entry in text.split(',').map(str::trim) {
            let (organisation, count) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not ORGANISATION=SEATS"))?;
            let organisation = organisation.trim();
            if organisation.is_empty() {
                return Err(format!("{entry:?} names no organisation"));
            }
            crate::domain::text::checked("organisation", organisation, MAX_TEXT_CHARS)?;
            let count: u32 = count.trim().parse().map_err(|_| {
                format!("{entry:?}: the seats must be a whole number from 0, got {count:?}")
            })?;
            if seats.iter().any(|(o, _)| o == organisation) {
                return Err(format!("{organisation:?} is named twice"));
            }
            seats.push((organisation.to_string(), count));
        }
        Ok(Seats(seats))
    }

    /// The seats of `organisation`, if it has a limit.
    pub fn of(&self, organisation: &str) -> Option<u32> {
        self.0
            .iter()
            .find(|(o, _)| o == organisation)
            .map(|(_, n)| *n)
    }

    /// Every organisation with a limit, and the limit.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(o, n)| (o.as_str(), *n))
    }
}

/// Where sessions live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSetting {
    Memory,
    /// A `redis://` or `rediss://` URL, perhaps with a password.
    Redis(String),
}

impl Settings {
    /// The settings in effect, in one line for the log: every value that shapes behaviour,
    /// never a secret (keys and the webhook secret are counted or named, a Redis URL loses its
    /// credentials).
    pub fn summary(&self) -> String {
        let store = match &self.store {
            StoreSetting::Memory => "memory".to_string(),
            StoreSetting::Redis(_) => format!("{:?}", self.store),
        };
        let optional = |value: Option<String>| value.unwrap_or_else(|| "-".into());
        format!(
            "bind={} server_name={} store={store} redis_prefix={} redis_min_replicas={} data_dir={} fsync={} \
             snapshot_interval={}s activity_interval={}s idle_timeout={}s max_lifetime={}s \
             concurrent_sessions={} login_overrides={} assurance_timeouts={} ip_change={} max_sessions_per_user={} organisation_seats={} \
             audit_capacity={} cors_origins={} webhook={} max_body={} service_keys={}",
            self.bind,
            self.server_name,
            self.redis_prefix,
            self.redis_min_replicas,
            optional(self.data_dir.as_ref().map(|d| d.display().to_string())),
            self.fsync
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string()),
            self.snapshot_interval,
            self.activity_interval,
            self.idle_timeout,
            self.max_lifetime,
            self.concurrent_sessions.name(),
            self.login_overrides.names(),
            self.assurance_timeouts.describe(),
            self.ip_change
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string()),
            self.max_sessions_per_user,
            optional(self.organisation_seats.as_ref().map(|s| {
                s.iter()
                    .map(|(org, n)| format!("{org}={n}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })),
            self.audit_capacity,
            optional(self.cors_origins.as_ref().map(|o| o.0.join(","))),
            if self.webhook_url.is_some() {
                "on"
            } else {
                "off"
            },
            self.max_body,
            match &self.service_keys {
                Some(keys) => format!("{} configured", keys.count()),
                None => "generated".into(),
            },
        )
    }

    /// Settings that work but contradict each other, each as a warning.
    pub fn contradictions(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.max_lifetime < u64::from(self.idle_timeout) {
            found.push(format!(
                "SESSIOND_MAX_LIFETIME ({} s) is shorter than SESSIOND_IDLE_TIMEOUT ({} s): every session ends at its max lifetime before it can be idle that long",
                self.max_lifetime, self.idle_timeout
            ));
        }
        // The largest login the input limits allow, every character four bytes of UTF-8.
        let largest_login =
            4 * (4 * MAX_TEXT_CHARS + MAX_ROLES * MAX_ROLE_CHARS + MAX_USER_AGENT_CHARS) + 512;
        if self.max_body < largest_login as u64 {
            found.push(format!(
                "SESSIOND_MAX_BODY ({} bytes) is smaller than the largest valid login (about {largest_login} bytes): some logins would be refused as too large",
                self.max_body
            ));
        }
        if self.redis_min_replicas > 0 && matches!(self.store, StoreSetting::Memory) {
            found.push(format!(
                "SESSIOND_REDIS_MIN_REPLICAS ({}) is set but SESSIOND_STORE is memory: there are no replicas to wait for, so it changes nothing",
                self.redis_min_replicas
            ));
        }
        if self.cors_headers.is_some() && self.cors_origins.is_none() {
            found.push(
                "SESSIOND_CORS_HEADERS is set without SESSIOND_CORS_ORIGINS: no origin is allowed, so it changes nothing".to_string(),
            );
        }
        if self.data_dir.is_some() && self.activity_interval >= u64::from(self.idle_timeout) {
            found.push(format!(
                "SESSIOND_ACTIVITY_INTERVAL ({} s) is not shorter than SESSIOND_IDLE_TIMEOUT ({} s): after a crash, active sessions may come back expired",
                self.activity_interval, self.idle_timeout
            ));
        }
        found
    }
}

impl std::fmt::Debug for StoreSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSetting::Memory => f.write_str("Memory"),
            StoreSetting::Redis(url) => match url.split_once('@') {
                Some((_, host)) => write!(f, "Redis(<credentials>@{host})"),
                None => write!(f, "Redis({url})"),
            },
        }
    }
}

impl StoreSetting {
    fn parse(text: &str) -> Result<Self, String> {
        if text == "memory" {
            return Ok(StoreSetting::Memory);
        }
        if ![
            "redis://",
            "rediss://",
            "redis+unix://",
            "unix://",
            "redis+sentinel://",
            "rediss+sentinel://",
            "redis+cluster://",
            "rediss+cluster://",
        ]
        .iter()
        .any(|scheme| text.starts_with(scheme))
        {
            return Err(
                "must be `memory`, a redis:// or rediss:// (TLS) URL, a redis+sentinel:// or rediss+sentinel:// URL, or a redis+cluster:// or rediss+cluster:// URL".into(),
            );
        }
        crate::store::RedisTarget::parse(text)?;
        Ok(StoreSetting::Redis(text.to_string()))
    }
}

fn parse_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 128 || text.chars().any(|c| c.is_control() || c == ' ') {
        return Err("must be 1 to 128 characters without spaces".into());
    }
    Ok(text.to_string())
}

/// Browser origins such as `https://admin.example.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

fn parse_origins(text: &str) -> Result<Origins, String> {
    let origins: Vec<String> = text
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return Err("must name at least one origin".into());
    }
    for origin in &origins {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| format!("{origin:?} is not an http:// or https:// origin"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
            return Err(format!(
                "{origin:?} is not an origin (scheme://host[:port])"
            ));
        }
    }
    Ok(Origins(origins))
}

/// Names of HTTP request headers, lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderNames(pub Vec<String>);

fn parse_header_names(text: &str) -> Result<HeaderNames, String> {
    let names: Vec<String> = text
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err("must name at least one header".into());
    }
    if let Some(bad) = names
        .iter()
        .find(|n| actix_web::http::header::HeaderName::from_bytes(n.as_bytes()).is_err())
    {
        return Err(format!("{bad:?} is not a header name"));
    }
    Ok(HeaderNames(names))
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("not a HOST:PORT address ({e})"))?
        .next()
        .ok_or_else(|| "the host has no address".to_string())
}

fn parse_server_name(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if count == 0 || count > MAX_TEXT_CHARS || text.chars().any(forbidden) {
        return Err(format!(
            "must be 1 to {MAX_TEXT_CHARS} characters, none of them control or invisible characters"
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::defaults();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server_name, "LOCAL");
        assert_eq!(s.idle_timeout, 1800);
        assert_eq!(s.max_lifetime, 43_200);
        assert_eq!(s.concurrent_sessions, ConcurrentSessions::DenyOtherIp);
        assert_eq!(s.max_body, 1_048_576);
    }

    const OLD: &str = "old-key-0123456789abcdefghijklmnopq";
    const NEW: &str = "new-key-0123456789abcdefghijklmnopq";

    #[test]
    fn service_keys_rotate_and_compare() {
        let keys = ServiceKeys::parse(&format!("{OLD}, {NEW}")).unwrap();
        assert!(keys.accepts(OLD.as_bytes()));
        assert!(keys.accepts(NEW.as_bytes()));
        assert!(!keys.accepts(&NEW.as_bytes()[1..]));
        assert!(!keys.accepts(b""));
        for bad in ["", " ", "a,,b", "a,"] {
            assert!(ServiceKeys::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_keys_are_refused_by_position() {
        let error = ServiceKeys::parse(&format!("{OLD},short")).unwrap_err();
        assert!(error.contains("key 2 of 2 is shorter than 32"), "{error}");
        assert!(ServiceKeys::parse(&"k".repeat(31)).is_err());
        assert!(ServiceKeys::parse(&"k".repeat(32)).is_ok());
    }

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            parse_origins("https://a.example, http://localhost:3000/").unwrap(),
            Origins(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        for bad in [
            "",
            "a.example",
            "https://",
            "https://a.example/path",
            "*",
            "ftp://x",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seats_are_parsed_strictly() {
        let seats = Seats::parse("Acme=50, Default=200").unwrap();
        assert_eq!(seats.of("Acme"), Some(50));
        assert_eq!(seats.of("Default"), Some(200));
        assert_eq!(seats.of("Globex"), None);
        for bad in [
            "Acme=",
            "=5",
            "Acme=-1",
            "Acme=5,Acme=6",
            "Acme",
            "Acme=five",
            "",
        ] {
            assert!(Seats::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_redis_password_is_never_shown() {
        let setting = StoreSetting::parse("rediss://user:s3cret@redis.internal:6380/0").unwrap();
        assert!(!format!("{setting:?}").contains("s3cret"));
        assert!(StoreSetting::parse("https://redis.internal").is_err());
    }

    #[test]
    fn debug_hides_keys() {
        let keys = ServiceKeys::parse(OLD).unwrap();
        assert!(!format!("{keys:?}").contains("old-key"));
    }
}
