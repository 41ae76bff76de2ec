//! `/sessions/current`: the caller's own session — validated as an app server does on every
//! request (with step-up checks and the client's address), and given a new token.

use actix_web::{get, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problems::BearerProblems;
use crate::auth::Caller;
use crate::domain::Session;
use crate::error::{ApiError, Problem, StepUpProblem};
use crate::service::{Renewed, StepUp};
use crate::state::AppState;

/// The header an app server reports its end user's address in.
const CLIENT_IP: &str = "X-Client-IP";

/// `GET /sessions/current` query: what the caller's next step needs of the authentication.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValidationParams {
    /// The longest time since the user last authenticated, in seconds (RFC 9470's
    /// `max_age`): older is a `401 step-up-required`.
    #[param(minimum = 0, maximum = 315_360_000, example = 300)]
    pub max_age: Option<u64>,
    /// The lowest assurance level accepted, 1..=3: lower is a `401 step-up-required`.
    #[param(minimum = 1, maximum = 3, example = 2)]
    pub min_assurance_level: Option<u8>,
    /// A cache-buster some clients add; ignored.
    #[serde(rename = "_")]
    #[param(rename = "_")]
    pub cache_buster: Option<String>,
}

/// `GET /sessions/current` headers, for the document (read from the request itself).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct ValidationHeaders {
    /// The address of the end user the app server is serving now.
    #[param(rename = "X-Client-IP", schema_with = crate::schema::ip_address)]
    client_ip: Option<String>,
}

/// The longest `max_age` (ten years, like a session's longest lifetime).
const MAX_AGE_LIMIT: u64 = 315_360_000;

/// The `401` of a validation: a token that names no live session, or a valid one whose
/// authentication is older or weaker than asked (`step-up-required`).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ValidationRefusal {
    Unauthorized(Problem),
    StepUp(StepUpProblem),
}

/// Validate a token.
///
/// The call app servers make on every request: answers the caller's own session and slides
/// its idle timeout. Activity is recorded at most once per `SESSIOND_ACTIVITY_INTERVAL`
/// (default 5 s; at most a quarter of the session's idle timeout) on the Redis store, where
/// validations in between are reads: there `last_active_at`, `idle_seconds` and `expires_at`
/// may lag the last validation by up to that much, and a session may end that much before its
/// exact idle timeout, never after.
///
/// Before a sensitive action, ask for a recent or strong authentication with `max_age` and
/// `min_assurance_level`: when the session's is older or weaker, the answer is `401` with
/// `code: "step-up-required"` and `WWW-Authenticate: Bearer
/// error="insufficient_user_authentication"` (RFC 9470) — the session itself stays valid.
/// With `X-Client-IP`, the app server reports the address of the end user it serves now: it
/// becomes `last_ip_address`, and per `SESSIOND_IP_CHANGE` a change is also announced
/// (`session-ip-changed`) or ends the session (`401`, reason `ip-changed`).
#[utoipa::path(
    tag = "sessions",
    params(
        ValidationParams,
        ValidationHeaders,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's session", body = Session),
        (status = 400, description = "A parameter or X-Client-IP is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token, or one that names no live session; or (code `step-up-required`) the session's authentication is older or weaker than asked", body = ValidationRefusal, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String))),
        (status = 503, description = "The session store cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/sessions/current")]
pub async fn current_session(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<ValidationParams>,
    req: HttpRequest,
) -> Result<web::Json<Session>, ApiError> {
    if params
        .min_assurance_level
        .is_some_and(|l| !(1..=3).contains(&l))
    {
        return Err(ApiError::invalid("min_assurance_level: must be 1, 2 or 3"));
    }
    if params.max_age.is_some_and(|age| age > MAX_AGE_LIMIT) {
        return Err(ApiError::invalid(format!(
            "max_age: at most {MAX_AGE_LIMIT} seconds"
        )));
    }
    let client_ip = match req.headers().get(CLIENT_IP) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ApiError::invalid("X-Client-IP: not an IPv4 or IPv6 address"))?,
        ),
    };
    let Caller { session, now, .. } = caller;
    let session = match client_ip {
        Some(ip) => state.sessions.client_address(session, ip, now).await?,
        None => session,
    };
    let step_up = StepUp {
        max_age: params.max_age,
        min_assurance_level: params.min_assurance_level,
    };
    state.sessions.check_step_up(&session, step_up, now)?;
    let id = session.data.id;
    Ok(web::Json(Session::view(session, now, Some(id))))
}

/// A session with its new token, shown once.
#[derive(Serialize, ToSchema)]
pub struct RenewedSession {
    pub session: Session,
    /// The new token; the one it replaces stopped validating.
    #[schema(example = "jB8MXn16S5KaQS8sHQ6beQq3Yx0v2m5n8Jr6KcT1fW9sB4hL7dZpE0aGuNiOyRtQk")]
    pub token: String,
}

impl RenewedSession {
    pub fn of(renewed: Renewed, now: crate::domain::Millis) -> Self {
        let id = renewed.session.data.id;
        RenewedSession {
            session: Session::view(renewed.session, now, Some(id)),
            token: renewed.token.expose(),
        }
    }
}

/// Rotate my token.
///
/// A new token for the caller's own session (after a privilege change, say): the session,
/// its times and everything else stay; the token used for this call stops validating at once.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session and its new token", body = RenewedSession),
        BearerProblems,
    )
)]
#[post("/sessions/current/rotate")]
pub async fn rotate(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<RenewedSession>, ApiError> {
    let renewed = state.sessions.rotate(&caller.token, caller.now).await?;
    Ok(web::Json(RenewedSession::of(renewed, caller.now)))
}
