//! The access log and request metrics: one line and one count per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::auth::CallerSession;
use crate::state::AppState;

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
