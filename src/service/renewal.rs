//! What a live session goes through after its login: a new token (OWASP ASVS 7.2.4), a new
//! authentication with its assurance level, step-up checks (RFC 9470), and the client address
//! watched as NIST SP 800-63B-4 §5.3 allows.

use std::net::IpAddr;

use super::Sessions;
use crate::config::IpChange;
use crate::domain::new_session::assurance_level;
use crate::domain::{
    Amendment, Authentication, EndReason, Millis, PresentedToken, Scope, SessionId, SessionRecord,
    Token,
};
use crate::error::ApiError;

/// A session with a new token, shown once.
pub struct Renewed {
    pub session: SessionRecord,
    pub token: Token,
}

/// What a validation asks of the session's authentication (RFC 9470).
#[derive(Clone, Copy, Debug, Default)]
pub struct StepUp {
    /// The longest time since the last authentication, in seconds.
    pub max_age: Option<u64>,
    pub min_assurance_level: Option<u8>,
}

impl Sessions {
    /// A new token for the caller's own session (presented as `token`); the old one stops
    /// validating at once.
    pub async fn rotate(&self, token: &PresentedToken, now: Millis) -> Result<Renewed, ApiError> {
        let renewed = Token::generate(token.id);
        let amendment = Amendment {
            digest: Some(renewed.digest()),
            ..Amendment::default()
        };
        match self
            .store
            .amend(token.id, Some(&token.digest), amendment, now)
            .await?
        {
            Some(session) => Ok(Renewed {
                session,
                token: renewed,
            }),
            // Rotated or ended meanwhile, by another request with the same token.
            None => Err(ApiError::invalid_token()),
        }
    }

    /// The app server authenticated the user of session `id` again (at `level`, or the
    /// session's own): a new authentication time, the limits of its level, and a new token.
    pub async fn reauthenticated(
        &self,
        id: &str,
        level: Option<&serde_json::Number>,
        now: Millis,
    ) -> Result<Renewed, ApiError> {
        let gone = || ApiError::not_found("no such session");
        let id = SessionId::parse(id).ok_or_else(gone)?;
        let given = level.map(|l| assurance_level(Some(l))).transpose();
        let given = given.map_err(ApiError::invalid)?;
        let current = self
            .store
            .get(id, &Scope::All, now)
            .await?
            .ok_or_else(gone)?;
        let level = given.unwrap_or(current.data.assurance_level);
        let renewed = Token::generate(id);
        let amendment = Amendment {
            digest: Some(renewed.digest()),
            authentication: Some(Authentication {
                at: now,
                assurance_level: level,
                timeout_seconds: self
                    .assurance
                    .idle_timeout(level, current.data.timeout_seconds),
                reauthenticate_by: self.assurance.reauthenticate_by(level, now),
            }),
            last_ip_address: None,
            report: false,
        };
        let session = self
            .store
            .amend(id, None, amendment, now)
            .await?
            .ok_or_else(gone)?;
        Ok(Renewed {
            session,
            token: renewed,
        })
    }

    /// Whether the session's authentication is recent and strong enough for what `step_up`
    /// asks; `401 step-up-required` (the session itself stays valid) if not.
    pub fn check_step_up(
        &self,
        session: &SessionRecord,
        step_up: StepUp,
        now: Millis,
    ) -> Result<(), ApiError> {
        let data = &session.data;
        let too_old = step_up
            .max_age
            .is_some_and(|max| now.seconds_since(data.authenticated_at) > max);
        let too_weak = step_up
            .min_assurance_level
            .is_some_and(|min| data.assurance_level < min);
        match too_old || too_weak {
            false => Ok(()),
            true => Err(ApiError::step_up_required(
                step_up.max_age,
                step_up.min_assurance_level,
            )),
        }
    }

    /// The app server reports the address of the end user it serves now: recorded, and per
    /// `SESSIOND_IP_CHANGE` announced, or the end of the session (`ip-changed`, a `401`).
    pub async fn client_address(
        &self,
        session: SessionRecord,
        ip: IpAddr,
        now: Millis,
    ) -> Result<SessionRecord, ApiError> {
        if session.data.last_ip_address == ip {
            return Ok(session);
        }
        let id = session.data.id;
        if self.ip_change == IpChange::End {
            let ended = self
                .store
                .delete(&[id], &Scope::All, now, EndReason::IpChanged)
                .await?;
            self.metrics.ended(EndReason::IpChanged, ended.len());
            return Err(ApiError::invalid_token());
        }
        let amendment = Amendment {
            last_ip_address: Some(ip),
            report: self.ip_change == IpChange::Report,
            ..Amendment::default()
        };
        Ok(self
            .store
            .amend(id, None, amendment, now)
            .await?
            .unwrap_or(session))
    }
}
