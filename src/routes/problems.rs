//! The sets of problem responses that several operations share, for their OpenAPI description.

use utoipa::IntoResponses;

use crate::error::Problem;

/// Errors every bearer-authenticated operation can answer with.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BearerProblems {
    /// No bearer token, or one that names no live session.
    #[response(status = 401, content_type = "application/problem+json", headers(("WWW-Authenticate" = String)))]
    Unauthorized(Problem),
    /// The session store cannot be reached.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Errors every administrator operation can answer with, beyond [`BearerProblems`].
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminProblems {
    /// The caller's session has neither role `admin` nor `org_admin`.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// Errors of operations that take a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyProblems {
    /// The body is not valid JSON, or a field is missing, unknown or out of range.
    #[response(status = 400, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body was not sent as `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
}
