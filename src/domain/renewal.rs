//! What may change in a live session after its login: its token (a rotation), its
//! authentication (the user authenticated again), the client address last reported.

use std::net::IpAddr;

use super::{Millis, SessionData, TokenDigest};

/// A new authentication of the session's user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authentication {
    pub at: Millis,
    pub assurance_level: u8,
    /// The idle timeout, tightened to the level's limit.
    pub timeout_seconds: u32,
    pub reauthenticate_by: Option<Millis>,
}

/// One change to a live session; what is `None` stays as it was.
#[derive(Clone, Copy, Debug, Default)]
pub struct Amendment {
    /// The digest of the new token's secret: the old token stops validating.
    pub digest: Option<TokenDigest>,
    pub authentication: Option<Authentication>,
    pub last_ip_address: Option<IpAddr>,
    /// Whether a new client address is announced (`session-ip-changed`), not only recorded.
    pub report: bool,
}

impl Amendment {
    /// Applies it to a session's data (the digest is kept beside it, by whoever holds it).
    pub fn apply(&self, data: &mut SessionData) {
        if let Some(auth) = self.authentication {
            data.authenticated_at = auth.at;
            data.assurance_level = auth.assurance_level;
            data.timeout_seconds = auth.timeout_seconds;
            data.reauthenticate_by = auth.reauthenticate_by;
        }
        if let Some(ip) = self.last_ip_address {
            data.last_ip_address = ip;
        }
    }
}
