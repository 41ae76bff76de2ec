//! `GET /audit`: the trail of sessions ended by administrators and logins denied.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problems::{AdminProblems, BearerProblems};
use crate::audit::AuditEvent;
use crate::auth::AdminCaller;
use crate::domain::listing::parse_limit;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Page size, 1..=1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page, passed back unchanged with the same sort,
    /// order and filters; empty or absent for the first page.
    #[param(format = "cursor", pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
    /// A cache-buster some clients add; ignored.
    #[serde(rename = "_")]
    #[param(rename = "_")]
    pub cache_buster: Option<String>,
}

/// One page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for older events; null when none follow.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The audit trail.
///
/// Sessions ended by administrators (who, which session, when, single or bulk) and logins
/// refused by the concurrent-session policy, newest first. An `admin` sees everything, an
/// `org_admin` the events of its own organisation. The history is bounded by
/// `SESSIOND_AUDIT_CAPACITY`; every event is also written to the log under target `audit`.
/// With `SESSIOND_DATA_DIR` the trail is appended to `audit.jsonl` there and served after a
/// restart; on Redis it lives in Redis, so every node answers with every node's events.
#[utoipa::path(
    tag = "operations",
    params(AuditParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of events", body = AuditList),
        (status = 400, description = "A parameter is unknown or not valid", body = Problem, content_type = "application/problem+json"),
        BearerProblems,
        AdminProblems,
    )
)]
#[get("/audit")]
pub async fn audit(
    admin: AdminCaller,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<web::Json<AuditList>, ApiError> {
    let AuditParams { limit, cursor, .. } = params.into_inner();
    let limit = parse_limit(limit).map_err(ApiError::invalid)?;
    let page = state
        .audit
        .page(admin.scope(), cursor.as_deref(), limit)
        .await?;
    Ok(web::Json(AuditList {
        items: page.items,
        next_cursor: page.next,
    }))
}
