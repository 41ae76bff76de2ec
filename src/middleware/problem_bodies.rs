//! The guarantee that every error body is a problem document, whoever produced it, naming the
//! request it answers (`request_id`).

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};

use super::request_id::RequestId;
use crate::error::{ApiError, Code};

/// The largest error body read back to add the request's id (a problem is far smaller).
const MAX_PROBLEM_BYTES: usize = 1 << 20;

/// Rewrites any error response that is not already a problem document (from middleware such
/// as CORS, or from actix itself) into one, keeping its status and headers, and adds the
/// request's id to every problem. Every other response passes with its body untouched (not
/// boxed: this runs on every validation).
pub async fn problem_bodies<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let response = next.call(req).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response.map_into_left_body());
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    let (request, old) = response.into_parts();
    let (head, body) = old.into_parts();
    let bytes = actix_web::body::to_bytes_limited(body, MAX_PROBLEM_BYTES)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let problem = match is_problem {
        true => bytes.to_vec(),
        false => {
            // A short plain-text body (actix-cors says why it refused) becomes the detail.
            let text = String::from_utf8(bytes.to_vec())
                .ok()
                .filter(|t| !t.trim().is_empty() && t.len() <= 1024);
            let detail = text.unwrap_or_else(|| match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            });
            let converted = ApiError::new(Code::for_status(status), detail)
                .with_status(status)
                .error_response();
            actix_web::body::to_bytes(converted.into_body())
                .await
                .unwrap_or_default()
                .to_vec()
        }
    };
    let problem = match id {
        Some(id) => with_request_id(problem, &id),
        None => problem,
    };
    let mut new = HttpResponse::with_body(status, BoxBody::new(problem));
    for (name, value) in head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Ok(ServiceResponse::new(request, new).map_into_right_body())
}

/// The problem document `problem` (a JSON object) with `request_id` as its last member; its
/// other members keep their order.
fn with_request_id(mut problem: Vec<u8>, id: &str) -> Vec<u8> {
    let Some(end) = problem.iter().rposition(|&b| b == b'}') else {
        return problem;
    };
    let empty = problem[..end]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{');
    let member = format!(
        "{}\"request_id\":{}",
        if empty { "" } else { "," },
        serde_json::to_string(id).expect("a string serialises")
    );
    problem.splice(end..end, member.into_bytes());
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_is_added_last_and_escaped() {
        let added = with_request_id(br#"{"type":"t","status":400}"#.to_vec(), "a\"b");
        assert_eq!(
            String::from_utf8(added).unwrap(),
            r#"{"type":"t","status":400,"request_id":"a\"b"}"#
        );
        assert_eq!(
            with_request_id(b"{}".to_vec(), "x"),
            br#"{"request_id":"x"}"#
        );
    }
}
