//! The access log and request metrics: one line and one count per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

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
        // The request's id and trace id are added by the logger (see `logging`).
        let request = response.request();
        let caller = request.extensions().get::<CallerSession>().copied();
        let session = caller.map_or_else(|| "-".to_string(), |c| c.0.to_string());
        let client = request
            .peer_addr()
            .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
        log::log!(
            target: "access",
            level,
            method = method,
            route = route,
            status = status,
            duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            client_ip = client.as_str(),
            session = session.as_str();
            "{method} {route} {status}"
        );
    }
    if let Some(state) = state {
        state
            .metrics
            .request(method, route, status, elapsed.as_secs_f64());
    }
    Ok(response)
}
