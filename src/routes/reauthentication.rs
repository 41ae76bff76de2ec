//! `POST /sessions/{id}/reauthenticated`: the app server authenticated a session's user again
//! (OWASP ASVS 7.2.4, 7.5): a new authentication time and level, and a new token.

use actix_web::http::header;
use actix_web::{post, web, HttpRequest};
use serde::Deserialize;
use utoipa::ToSchema;

use super::current::RenewedSession;
use super::problems::BodyProblems;
use crate::auth::ServiceCaller;
use crate::domain::Millis;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// `POST /sessions/{id}/reauthenticated` body; may be left out (or `{}`).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticatedRequest {
    /// How strong this authentication was, 1..=3; the session's own level when not given.
    #[schema(minimum = 1, maximum = 3, value_type = Option<i64>, example = 2)]
    pub assurance_level: Option<serde_json::Number>,
}

/// Record a reauthentication.
///
/// The app server authenticated the user of this session again (a password, a second
/// factor): `authenticated_at` becomes now, `assurance_level` what the body says (or stays),
/// the level's limits apply from now (`SESSIOND_ASSURANCE_TIMEOUTS`), and the session gets a
/// new token — the old one stops validating at once. Hand the new token to the user's client.
#[utoipa::path(
    tag = "sessions",
    params(("id" = String, Path, description = "The session's id", example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")),
    request_body(content = Option<ReauthenticatedRequest>, content_type = "application/json"),
    security(("service_key" = [])),
    responses(
        (status = 200, description = "The session and its new token", body = RenewedSession),
        BodyProblems,
        (status = 401, description = "No X-Service-Key, or one that is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live session has this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The session store cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/sessions/{id}/reauthenticated")]
pub async fn reauthenticated(
    _app: ServiceCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<RenewedSession>, ApiError> {
    let request = match body.is_empty() {
        true => ReauthenticatedRequest::default(),
        false => {
            let json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if !json {
                return Err(ApiError::not_json());
            }
            // `null` is no body, as an absent one is.
            serde_json::from_slice::<Option<ReauthenticatedRequest>>(&body)
                .map_err(|e| ApiError::invalid(format!("the request body is not valid: {e}")))?
                .unwrap_or_default()
        }
    };
    let now = Millis::now();
    let renewed = state
        .sessions
        .reauthenticated(&id, request.assurance_level.as_ref(), now)
        .await?;
    Ok(web::Json(RenewedSession::of(renewed, now)))
}
