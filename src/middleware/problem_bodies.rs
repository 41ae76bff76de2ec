//! The guarantee that every error body is a problem document, whoever produced it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::{ApiError, Code};

/// Rewrites any error response that is not already a problem document (from middleware such
/// as CORS, or from actix itself) into one, keeping its status and headers. Every other
/// response passes with its body untouched (not boxed: this runs on every validation).
pub async fn problem_bodies<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let response = next.call(req).await?;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return Ok(response.map_into_left_body());
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
    Ok(ServiceResponse::new(request, new).map_into_right_body())
}
