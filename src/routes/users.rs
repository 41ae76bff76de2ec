//! `/users/{user_id}/sessions`: ending every session of one user at once, as an account is
//! disabled or its password changed (OWASP ASVS 7.4.2 and 7.4.3).

use actix_web::{delete, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::problems::BearerProblems;
use super::sessions::EndedSessions;
use crate::auth::UserAuthority;
use crate::domain::Millis;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// `DELETE /users/{user_id}/sessions` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevokeParams {
    /// A session of the user to keep: the device that just changed the password.
    #[param(
        example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a",
        pattern = "^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$"
    )]
    pub except: Option<String>,
}

/// End every session of a user.
///
/// For an account that was disabled, or whose password changed: every live session of
/// `user_id` ends with reason `revoked` — but `except`, the session that changed the password.
/// An app server calls it with its service key; an `admin` reaches the user's sessions in every
/// organisation, an `org_admin` those in its own (a user's sessions elsewhere stay). A user with
/// no sessions is no error: `deleted` is empty.
#[utoipa::path(
    tag = "sessions",
    params(
        ("user_id" = String, Path, description = "The user, as logins name it", example = "tpringle",
            min_length = 1, max_length = 256,
            pattern = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$"),
        RevokeParams,
    ),
    security(("service_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The sessions ended", body = EndedSessions),
        (status = 400, description = "The user id or `except` is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A bearer session with neither role `admin` nor `org_admin`", body = Problem, content_type = "application/problem+json"),
        BearerProblems,
    )
)]
#[delete("/users/{user_id}/sessions")]
pub async fn revoke_user_sessions(
    authority: UserAuthority,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
    params: web::Query<RevokeParams>,
) -> Result<web::Json<EndedSessions>, ApiError> {
    let ended = state
        .sessions
        .revoke_user(
            authority.session(),
            authority.scope(),
            &user_id,
            params.except.as_deref(),
            Millis::now(),
        )
        .await?;
    Ok(web::Json(EndedSessions {
        deleted: ended.iter().map(ToString::to_string).collect(),
    }))
}
