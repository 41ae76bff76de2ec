//! One error type for every response that is not a success, written as an RFC 9457 problem.
//!
//! Each [`Code`] names its HTTP status once. actix's own failures (malformed JSON, bad query
//! strings, unknown routes, wrong methods) are turned into the same shape by the handlers at
//! the bottom of this file, so no plain-text error ever reaches a client.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::login::BlockingSession;
use crate::domain::Stopped;

/// Declares [`Code`] from one table: each code's variant, HTTP status, wire name and title are
/// written once, on one line.
macro_rules! codes {
    ($($variant:ident => $status:ident, $name:literal, $title:literal;)*) => {
        /// The stable, machine-readable reason of a problem.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)*
                }
            }

            /// The word clients match on, e.g. `login-denied`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            fn title(self) -> &'static str {
                match self {
                    $(Code::$variant => $title,)*
                }
            }
        }
    };
}

codes! {
    InvalidRequest => BAD_REQUEST, "invalid-request", "The request is not valid";
    Unauthorized => UNAUTHORIZED, "unauthorized", "Authentication is required";
    StepUpRequired => UNAUTHORIZED, "step-up-required", "A fresher or stronger authentication is required";
    Forbidden => FORBIDDEN, "forbidden", "Not allowed";
    NotFound => NOT_FOUND, "not-found", "Not found";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed";
    OwnSession => CONFLICT, "own-session", "That is your own session";
    LoginDenied => CONFLICT, "login-denied", "Login denied";
    SeatLimit => CONFLICT, "seat-limit", "No seat left in the organisation";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload-too-large", "Request body too large";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type";
    TooManyRequests => TOO_MANY_REQUESTS, "too-many-requests", "Too many requests";
    HeaderFieldsTooLarge => REQUEST_HEADER_FIELDS_TOO_LARGE, "header-fields-too-large", "Request header fields too large";
    Unavailable => SERVICE_UNAVAILABLE, "unavailable", "Service unavailable";
    Internal => INTERNAL_SERVER_ERROR, "internal", "Internal error";
}

impl Code {
    /// The code for a status that arrives without one (from middleware or the HTTP layer): the
    /// first code of the table with that status, else the generic client or server error.
    /// A `409` never arrives without a code of its own.
    pub fn for_status(status: StatusCode) -> Code {
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.status() == status && status != StatusCode::CONFLICT)
            .unwrap_or(if status.is_server_error() {
                Code::Internal
            } else {
                Code::InvalidRequest
            })
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for Code {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The stable, machine-readable reason of a problem. `login-denied`, `seat-limit` and \
                 `step-up-required` come only in their own problems (LoginDeniedProblem, \
                 SeatLimitProblem, StepUpProblem), so a client that matches on them has their \
                 fields.",
            ))
            // Left out, so that matching `code` narrows a generated client's type to the
            // problem that carries it.
            .enum_values(Some(
                Code::ALL
                    .iter()
                    .filter(|c| {
                        !matches!(c, Code::LoginDenied | Code::SeatLimit | Code::StepUpRequired)
                    })
                    .map(|c| c.as_str()),
            ))
            .into()
    }
}

impl ToSchema for Code {}

/// Which credential a `401` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// No bearer token was sent.
    Bearer,
    /// A bearer token was sent and is not (or no longer) valid.
    InvalidToken,
    ServiceKey,
    /// RFC 9470: the token is valid, its authentication too old (`max_age`) or too weak.
    StepUp {
        max_age: Option<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    code: Code,
    /// Set only where the status is not the code's own (see [`ApiError::with_status`]).
    status: Option<StatusCode>,
    detail: String,
    challenge: Option<Challenge>,
    allow: Option<String>,
    /// Seconds after which the request may be tried again (`Retry-After`).
    retry_after: Option<u64>,
    sessions: Vec<ExistingSession>,
    /// Why the presented token stopped working, for the holder of its real secret.
    reason: Option<Stopped>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            status: None,
            detail: detail.into(),
            challenge: None,
            allow: None,
            retry_after: None,
            sessions: Vec::new(),
            reason: None,
        }
    }

    /// A limit is reached: try again after `seconds`.
    pub fn too_many(detail: impl Into<String>, seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(Code::TooManyRequests, detail)
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequest, detail)
    }

    pub fn unauthorized(challenge: Challenge, detail: impl Into<String>) -> Self {
        ApiError {
            challenge: Some(challenge),
            ..Self::new(Code::Unauthorized, detail)
        }
    }

    /// `401`: the bearer token names no live session (never saying which part was wrong).
    pub fn invalid_token() -> Self {
        Self::unauthorized(
            Challenge::InvalidToken,
            "the bearer token is not valid, or its session has ended",
        )
    }

    /// `401` for a token that stopped working, saying why (to the holder of its real secret:
    /// the caller has checked).
    pub fn stopped_token(reason: Stopped) -> Self {
        let detail = match reason {
            Stopped::Rotated => "this token was replaced by a new one (rotated)".to_string(),
            Stopped::Expired => "the token's session has ended: it timed out".to_string(),
            reason => format!("the token's session has ended ({})", reason.as_str()),
        };
        ApiError {
            reason: Some(reason),
            ..Self::unauthorized(Challenge::InvalidToken, detail)
        }
    }

    /// `401 step-up-required` (RFC 9470): the session is valid, its authentication older than
    /// `max_age` seconds or weaker than `min_level`; authenticate the user again.
    pub fn step_up_required(max_age: Option<u64>, min_level: Option<u8>) -> Self {
        let mut wants = Vec::new();
        if let Some(max_age) = max_age {
            wants.push(format!("at most {max_age} s old"));
        }
        if let Some(level) = min_level {
            wants.push(format!("of assurance level {level} or more"));
        }
        ApiError {
            challenge: Some(Challenge::StepUp { max_age }),
            ..Self::new(
                Code::StepUpRequired,
                format!(
                    "this needs an authentication {}; authenticate the user again \
                     (POST /sessions/{{id}}/reauthenticated)",
                    wants.join(" and ")
                ),
            )
        }
    }

    /// `415`: a body that is not sent as JSON.
    pub fn not_json() -> Self {
        Self::new(
            Code::UnsupportedMediaType,
            "the request body must be JSON, sent with Content-Type: application/json",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(Code::NotFound, detail)
    }

    pub fn method_not_allowed(method: &str, path: &str, allow: Vec<&str>) -> Self {
        ApiError {
            allow: Some(allow.join(", ")),
            ..Self::new(
                Code::MethodNotAllowed,
                format!(
                    "{method} is not allowed on {path}; use {}",
                    allow.join(" or ")
                ),
            )
        }
    }

    /// Keeps a status the code table does not name (a `408` from a middleware, say).
    pub fn with_status(self, status: StatusCode) -> Self {
        ApiError {
            status: Some(status),
            ..self
        }
    }

    /// `409 login-denied`: the user's other sessions block this login.
    pub fn login_denied(sessions: Vec<ExistingSession>) -> Self {
        let ips: Vec<String> = sessions.iter().map(|s| s.ip_address.to_string()).collect();
        ApiError {
            sessions,
            ..Self::new(
                Code::LoginDenied,
                format!(
                    "the user already has a session from {}; to log in here, end it: the user by \
                     logging in with \"concurrent_sessions\": \"replace\", or an administrator",
                    ips.join(", ")
                ),
            )
        }
    }

    /// `409 seat-limit`: every seat of the organisation is taken by other users.
    pub fn seat_limit(organisation: &str, limit: u32) -> Self {
        Self::new(
            Code::SeatLimit,
            format!(
                "all {limit} seats of the organisation {organisation:?} are taken by users with live sessions; one must end first"
            ),
        )
    }

    /// `503`: the session store cannot be reached. The reason goes to the log only.
    pub fn unavailable(reason: &str) -> Self {
        // The outage itself is logged once by the store (see `store::outage`).
        log::debug!("session store unavailable: {reason}");
        Self::new(
            Code::Unavailable,
            "the session store cannot be reached; try again shortly",
        )
    }
}

/// An RFC 9457 problem, as every error response carries it.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:sessiond:problem:` and the code.
    #[serde(rename = "type")]
    #[schema(example = "urn:sessiond:problem:invalid-request")]
    pub kind: String,
    #[schema(example = "The request is not valid")]
    pub title: &'static str,
    #[schema(example = 400)]
    pub status: u16,
    /// What was wrong with this request, in words.
    #[schema(example = "ip_address: \"999.1.1.1\" is not an IPv4 or IPv6 address")]
    pub detail: String,
    pub code: Code,
    /// Only a `login-denied` problem has it, and its own schema (`LoginDeniedProblem`) says
    /// so; the shared schema leaves it out, so that a client tells the two apart by it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub sessions: Vec<ExistingSession>,
    /// In a `401` for a token that stopped working within the last day, to the holder of its
    /// real secret only: why (its session ended, and how; or a rotation replaced it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Stopped>, nullable = false)]
    pub reason: Option<Stopped>,
    /// The id of the request this answers (its `X-Request-Id`), to quote in a report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub request_id: Option<String>,
}

// The types below only describe, for the OpenAPI document, bodies the server writes as a
// [`Problem`].
/// The `409` of a login: either problem, told apart by `code` (and by `sessions`, which only a
/// `login-denied` has).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LoginRefusal {
    LoginDenied(LoginDeniedProblem),
    SeatLimit(SeatLimitProblem),
}

/// The user has a live session from another IP address (`login-denied`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoginDeniedProblem {
    #[schema(rename = "type", example = "urn:sessiond:problem:login-denied")]
    pub kind: String,
    #[schema(example = "Login denied")]
    pub title: String,
    #[schema(example = 409)]
    pub status: u16,
    #[schema(
        example = "the user already has a session from 59.100.242.122; to log in here, end it: the user by logging in with \"concurrent_sessions\": \"replace\", or an administrator"
    )]
    pub detail: String,
    pub code: LoginDeniedCode,
    /// The user's live sessions that stand in the way.
    pub sessions: Vec<ExistingSession>,
    /// The id of the request this answers (its `X-Request-Id`), to quote in a report.
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub request_id: Option<String>,
}

/// Every seat of the login's organisation is taken (`seat-limit`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SeatLimitProblem {
    #[schema(rename = "type", example = "urn:sessiond:problem:seat-limit")]
    pub kind: String,
    #[schema(example = "No seat left in the organisation")]
    pub title: String,
    #[schema(example = 409)]
    pub status: u16,
    #[schema(
        example = "all 50 seats of the organisation \"Acme\" are taken by users with live sessions; one must end first"
    )]
    pub detail: String,
    pub code: SeatLimitCode,
    /// The id of the request this answers (its `X-Request-Id`), to quote in a report.
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub request_id: Option<String>,
}

/// The session is valid, but its authentication is older or weaker than the validation asked
/// for (`step-up-required`, RFC 9470): authenticate the user again, then retry.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StepUpProblem {
    #[schema(rename = "type", example = "urn:sessiond:problem:step-up-required")]
    pub kind: String,
    #[schema(example = "A fresher or stronger authentication is required")]
    pub title: String,
    #[schema(example = 401)]
    pub status: u16,
    #[schema(
        example = "this needs an authentication at most 300 s old; authenticate the user again (POST /sessions/{id}/reauthenticated)"
    )]
    pub detail: String,
    pub code: StepUpCode,
    /// The id of the request this answers (its `X-Request-Id`), to quote in a report.
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub request_id: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum StepUpCode {
    StepUpRequired,
}

#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum LoginDeniedCode {
    LoginDenied,
}

#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum SeatLimitCode {
    SeatLimit,
}

/// One of the user's existing sessions, in a `login-denied` problem.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExistingSession {
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    pub id: String,
    #[schema(value_type = String, example = "59.100.242.122")]
    pub ip_address: IpAddr,
    #[schema(example = "LOCAL")]
    pub server_name: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let status = self.status_code();
        // 503s are outages, logged once when they start and end, not once per request.
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            log::error!(
                "{} {}: {}",
                status.as_u16(),
                self.code.as_str(),
                self.detail
            );
        }
        let problem = Problem {
            kind: format!("urn:sessiond:problem:{}", self.code.as_str()),
            title: self.code.title(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            sessions: self.sessions.clone(),
            reason: self.reason,
            request_id: None,
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if let Some(challenge) = self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge_header(challenge)));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = &self.allow {
            if let Ok(value) = HeaderValue::from_str(allow) {
                response.insert_header((header::ALLOW, value));
            }
        }
        response.body(serde_json::to_string(&problem).expect("a problem always serialises"))
    }
}

fn challenge_header(challenge: Challenge) -> String {
    match challenge {
        Challenge::Bearer => "Bearer realm=\"sessiond\"".into(),
        Challenge::InvalidToken => "Bearer realm=\"sessiond\", error=\"invalid_token\"".into(),
        Challenge::ServiceKey => "X-Service-Key realm=\"sessiond\"".into(),
        Challenge::StepUp { max_age } => {
            let mut value =
                "Bearer realm=\"sessiond\", error=\"insufficient_user_authentication\", \
                 error_description=\"A different authentication level is required\""
                    .to_string();
            if let Some(max_age) = max_age {
                value.push_str(&format!(", max_age={max_age}"));
            }
            value
        }
    }
}

/// Turns actix's JSON body errors into problems (installed with `JsonConfig::error_handler`).
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::not_json(),
        JsonPayloadError::Deserialize(e) => {
            ApiError::invalid(format!("the request body is not valid: {e}"))
        }
        JsonPayloadError::Serialize(_) => ApiError::invalid("the request body is not valid JSON"),
        JsonPayloadError::Payload(e) => {
            ApiError::invalid(format!("the request body could not be read: {e}"))
        }
        _ => ApiError::invalid("the request body is not valid"),
    };
    api.into()
}

/// Turns actix's query-string errors into problems (installed with `QueryConfig::error_handler`).
pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        QueryPayloadError::Deserialize(e) => format!("the query string is not valid: {e}"),
        _ => "the query string is not valid".to_string(),
    };
    ApiError::invalid(detail).into()
}

/// Turns actix's path errors into problems (installed with `PathConfig::error_handler`).
pub fn path_error(_: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(format!("nothing is at {}", req.path())).into()
}

/// What a store can answer instead of a result; mapped to the API's problems below, so stores
/// know nothing of HTTP.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The login was refused by the concurrent-session policy.
    #[error("the user already has a session from another IP address")]
    LoginDenied(Vec<BlockingSession>),
    /// Every seat of the organisation is taken by other users.
    #[error("all {limit} seats of {organisation} are taken")]
    SeatLimit { organisation: Arc<str>, limit: u32 },
    /// The store cannot be reached; the request may succeed later.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LoginDenied(sessions) => ApiError::login_denied(
                sessions
                    .into_iter()
                    .map(|s| ExistingSession {
                        id: s.id.to_string(),
                        ip_address: s.ip_address,
                        server_name: s.server_name.to_string(),
                    })
                    .collect(),
            ),
            StoreError::SeatLimit {
                organisation,
                limit,
            } => ApiError::seat_limit(&organisation, limit),
            StoreError::Unavailable(reason) => ApiError::unavailable(&reason),
        }
    }
}
