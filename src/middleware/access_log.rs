//! The access log and request metrics: one line and one count per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::request_id::{RequestId, TraceId};
use crate::auth::CallerSession;
use crate::state::AppState;

/// The method as it is logged and counted: one of the methods HTTP defines, or `OTHER`. A
/// client may send any token as a method; its name must never become a label (each new label
/// value is a new time series, kept forever) or fill the log.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

/// Logs one line per request (method, route pattern, status, latency, caller's session id)
/// under target `access`, and counts it in the metrics. The route is the pattern
/// (`/sessions/{id}`), never the raw path, which a careless client might fill with a token.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    let elapsed = started.elapsed();
    let route = response.request().match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16();
    // Probes and scrapes come every few seconds: their lines would drown the others.
    let level = match route {
        "/healthz" | "/readyz" | "/metrics" => log::Level::Debug,
        _ => log::Level::Info,
    };
    if log::log_enabled!(target: "access", level) {
        let request = response.request();
        let extensions = request.extensions();
        let caller = extensions.get::<CallerSession>().copied();
        let id = extensions.get::<RequestId>().map_or("-", |r| r.0.as_str());
        let trace = extensions.get::<TraceId>().map_or("-", |t| t.0.as_str());
        let peer = request
            .peer_addr()
            .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
        log::log!(
            target: "access",
            level,
            "{method} {route} {status} {:.3}ms client={peer} session={} request_id={id} trace_id={trace}",
            elapsed.as_secs_f64() * 1000.0,
            caller.map_or_else(|| "-".to_string(), |c| c.0.to_string())
        );
    }
    if let Some(state) = state {
        state
            .metrics
            .request(method, route, status, elapsed.as_secs_f64());
    }
    Ok(response)
}
