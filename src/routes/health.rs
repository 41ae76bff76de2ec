//! What operators and orchestrators poll: liveness, readiness and metrics. No credentials.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Millis;
use crate::error::{ApiError, Code, Problem};
use crate::metrics::Picture;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

/// `ok` from the liveness probe, `ready` from the readiness probe.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Ready,
}

/// Liveness: the process is up.
///
/// Answers `200` whenever the process serves HTTP at all, without touching the session store:
/// restart the process when this fails. Needs no credentials.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Readiness: the session store can serve requests.
///
/// `200` when the store answers, `503` (code `unavailable`) when it cannot be reached: take the
/// node out of rotation until it is ready again. Needs no credentials.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The session store cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    state.sessions.ready().await.map_err(|e| {
        // The reason is for operators, in the log (an outage is logged once, as it starts);
        // a client learns only that it must wait.
        log::debug!("not ready: {e}");
        ApiError::new(
            Code::Unavailable,
            "not ready; the session store cannot be reached",
        )
    })?;
    Ok(web::Json(Health {
        status: HealthStatus::Ready,
    }))
}

/// Prometheus metrics.
///
/// The text exposition format: active sessions by organisation and server name, seats used
/// and their limit by organisation (where seats are set), sessions created, logins denied,
/// sessions ended by reason (logout, admin, self, expired, replaced, evicted), request
/// counts and latency histograms by method, route pattern and status, webhook deliveries,
/// event streams, `sessiond_build_info{version}`, `sessiond_store_up` (0 while the store
/// cannot be reached: the rest is still served), `sessiond_snapshot_age_seconds` and
/// `sessiond_persistence_failures_total{what}` (with a data directory). Needs no credentials;
/// keep it on an internal network.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Without the store the rest is still worth scraping, with `sessiond_store_up 0`.
    let up = state.sessions.ready().await.is_ok();
    state.metrics.store_up.set(i64::from(up));
    let picture = match state.sessions.picture(Millis::now()).await {
        Ok(picture) => picture,
        Err(e) => {
            log::debug!("the metrics go without a count of the sessions: {e}");
            Picture::default()
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&picture)))
}
