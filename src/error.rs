//! One error type for every response that is not a success, written as an RFC 9457 problem.
//!
//! Each [`Code`] names its HTTP status once. actix's own failures (malformed JSON, bad query
//! strings, unknown routes, wrong methods) are turned into the same shape by the handlers at
//! the bottom of this file, so no plain-text error ever reaches a client.

use std::net::IpAddr;

use actix_web::body::BoxBody;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{Existing, StoreError};

/// The stable, machine-readable reason of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    OwnSession,
    LoginDenied,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::OwnSession | Code::LoginDenied => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code for a status that arrives without one (from middleware or the HTTP layer).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            401 => Code::Unauthorized,
            403 => Code::Forbidden,
            404 => Code::NotFound,
            405 => Code::MethodNotAllowed,
            413 => Code::PayloadTooLarge,
            415 => Code::UnsupportedMediaType,
            503 => Code::Unavailable,
            s if s >= 500 => Code::Internal,
            _ => Code::InvalidRequest,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid-request",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not-found",
            Code::MethodNotAllowed => "method-not-allowed",
            Code::OwnSession => "own-session",
            Code::LoginDenied => "login-denied",
            Code::PayloadTooLarge => "payload-too-large",
            Code::UnsupportedMediaType => "unsupported-media-type",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Code::InvalidRequest => "The request is not valid",
            Code::Unauthorized => "Authentication is required",
            Code::Forbidden => "Not allowed",
            Code::NotFound => "Not found",
            Code::MethodNotAllowed => "Method not allowed",
            Code::OwnSession => "That is your own session",
            Code::LoginDenied => "Login denied",
            Code::PayloadTooLarge => "Request body too large",
            Code::UnsupportedMediaType => "Unsupported media type",
            Code::Unavailable => "Service unavailable",
            Code::Internal => "Internal error",
        }
    }
}

/// Which credential a `401` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// No bearer token was sent.
    Bearer,
    /// A bearer token was sent and is not (or no longer) valid.
    InvalidToken,
    ServiceKey,
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
    sessions: Vec<Existing>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            status: None,
            detail: detail.into(),
            challenge: None,
            allow: None,
            sessions: Vec::new(),
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

    pub fn code(&self) -> Code {
        self.code
    }

    /// Keeps a status the code table does not name (a `408` from a middleware, say).
    pub fn with_status(self, status: StatusCode) -> Self {
        ApiError {
            status: Some(status),
            ..self
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LoginDenied(sessions) => {
                let ips: Vec<String> = sessions.iter().map(|s| s.ip_address.to_string()).collect();
                ApiError {
                    sessions,
                    ..Self::new(
                        Code::LoginDenied,
                        format!(
                            "the user already has a session from {}; an administrator can end it",
                            ips.join(", ")
                        ),
                    )
                }
            }
            StoreError::Unavailable(reason) => {
                log::error!("session store unavailable: {reason}");
                Self::new(
                    Code::Unavailable,
                    "the session store cannot be reached; try again shortly",
                )
            }
        }
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
    /// For `login-denied`: the user's existing sessions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<ExistingSession>,
}

/// One of the user's existing sessions, in a `login-denied` problem.
#[derive(Serialize, ToSchema)]
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
        if status.is_server_error() {
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
            sessions: self
                .sessions
                .iter()
                .map(|s| ExistingSession {
                    id: s.id.to_string(),
                    ip_address: s.ip_address,
                    server_name: s.server_name.to_string(),
                })
                .collect(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if let Some(challenge) = self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge_header(challenge)));
        }
        if let Some(allow) = &self.allow {
            if let Ok(value) = HeaderValue::from_str(allow) {
                response.insert_header((header::ALLOW, value));
            }
        }
        response.body(serde_json::to_string(&problem).expect("a problem always serialises"))
    }
}

fn challenge_header(challenge: Challenge) -> &'static str {
    match challenge {
        Challenge::Bearer => "Bearer realm=\"sessiond\"",
        Challenge::InvalidToken => "Bearer realm=\"sessiond\", error=\"invalid_token\"",
        Challenge::ServiceKey => "X-Service-Key realm=\"sessiond\"",
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
        JsonPayloadError::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "the request body must be JSON, sent with Content-Type: application/json",
        ),
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
