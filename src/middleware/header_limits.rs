//! A bound on the whole request head, which the HTTP layer does not set.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::{ApiError, Code};

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
        let error = ApiError::new(
            Code::HeaderFieldsTooLarge,
            format!(
                "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        );
        return Ok(req.error_response(error));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
