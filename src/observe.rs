//! Middleware that sees every response: the access log, request metrics, and the guarantee
//! that every error body is a problem document.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::domain::SessionId;
use crate::error::{ApiError, Code};
use crate::startup::AppState;

/// The caller's session id, left in the request's extensions by the authenticating extractor
/// for the access log. The id grants nothing, so it may be logged; the token never is.
#[derive(Clone, Copy)]
pub struct CallerSession(pub SessionId);

/// Logs one line per request (method, route pattern, status, latency, caller's session id)
/// under target `access`, and counts it in the metrics. The route is the pattern
/// (`/sessions/{id}`), never the raw path, which a careless client might fill with a token.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    let elapsed = started.elapsed();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = response.status().as_u16();
    let caller = response
        .request()
        .extensions()
        .get::<CallerSession>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "-".to_string());
    log::info!(
        target: "access",
        "{method} {route} {status} {:.3}ms session={caller}",
        elapsed.as_secs_f64() * 1000.0
    );
    if let Some(state) = state {
        state
            .metrics
            .request(method.as_str(), &route, status, elapsed.as_secs_f64());
    }
    Ok(response)
}

/// The most headers, and header bytes, a request may carry. The HTTP layer bounds a single
/// header line; this bounds the whole head, which it does not.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose head is larger than any client of this API sends (`431`).
pub async fn header_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let error = ApiError::invalid(format!(
            "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes are accepted",
            headers.len()
        ))
        .with_status(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        return Ok(req.error_response(error));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Rewrites any error response that is not already a problem document (from middleware such
/// as CORS, or from actix itself) into one, keeping its status and headers.
pub async fn problem_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return Ok(response);
    }
    let (request, old) = response.into_parts();
    let (old_head, old_body) = old.into_parts();
    // A short plain-text body (actix-cors says why it refused) becomes the detail.
    let text = actix_web::body::to_bytes_limited(old_body, 1024)
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|t| !t.trim().is_empty());
    let detail = text.unwrap_or_else(|| match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    });
    let mut new = ApiError::new(Code::for_status(status), detail)
        .with_status(status)
        .error_response();
    for (name, value) in old_head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Ok(ServiceResponse::new(request, new))
}
