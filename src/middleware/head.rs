//! `HEAD` wherever `GET`: HTTP says a resource that answers `GET` answers `HEAD` with the same
//! headers and no body, and probes (load balancers, `curl -I`) rely on it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Routes a `HEAD` request as a `GET`; the HTTP layer, which saw `HEAD`, sends the answer's
/// headers without its body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
