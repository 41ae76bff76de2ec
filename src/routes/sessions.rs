//! `/sessions`: logging users in, validating and ending sessions, and the Session Management
//! list for administrators.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problems::{AdminProblems, BearerProblems, BodyProblems};
use crate::auth::{AdminCaller, Caller, Holder, ServiceCaller};
use crate::domain::limits::MAX_DELETE_IDS;
use crate::domain::listing::ListParams;
use crate::domain::{NewSessionRequest, Session};
use crate::error::{ApiError, LoginRefusal, Problem};
use crate::service::LoggedIn;
use crate::state::AppState;

/// A new session and its bearer token. The token is shown here once and never again.
#[derive(Serialize, ToSchema)]
pub struct CreatedSession {
    pub session: Session,
    #[schema(example = "jB8MXn16S5KaQS8sHQ6beQq3Yx0v2m5n8Jr6KcT1fW9sB4hL7dZpE0aGuNiOyRtQk")]
    pub token: String,
    /// The user's sessions this login ended: replaced, or the least recently active beyond the
    /// per-user limit. Often empty.
    #[schema(example = json!([]))]
    pub ended: Vec<String>,
}

/// One page of the Session Management list.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<Session>,
    /// How many sessions match the filters, on all pages together.
    #[schema(example = 1)]
    pub total: u64,
    /// Pass as `cursor` for the next page; null when no rows follow.
    #[schema(required = true, example = json!(null))]
    pub next_cursor: Option<String>,
    /// Where this answer stands in the events: every change up to this event is in it.
    /// Follow `GET /events` with it as `Last-Event-ID` to keep the list current without
    /// missing a change (one made while the list was read may come again: applying it twice
    /// changes nothing).
    #[schema(example = "1795820400000-0")]
    pub last_event_id: String,
}

/// `DELETE /sessions` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ids": ["8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a"]}))]
pub struct DeleteSessionsRequest {
    /// 1..=10000 session ids; duplicates count once.
    #[schema(min_items = 1, max_items = 10000)]
    pub ids: Vec<String>,
}

/// What happened to each id of a `DELETE /sessions`: every id sent is in exactly one list.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "deleted": ["8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a"],
    "not_found": ["00000000-0000-4000-8000-000000000000"],
    "refused": [{"id": "5d1e2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b", "reason": "own-session"}]
}))]
pub struct DeleteSessionsResult {
    pub deleted: Vec<String>,
    /// Ids that do not exist, have expired, or are outside the caller's organisation.
    pub not_found: Vec<String>,
    pub refused: Vec<Refusal>,
}

#[derive(Serialize, ToSchema)]
pub struct Refusal {
    pub id: String,
    pub reason: RefusalReason,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    /// The caller's own session is never deleted this way; log out instead.
    OwnSession,
}

/// Log a user in.
///
/// Called by a trusted app server with its service key. Applies the concurrent-session policy:
/// by default a user who already has a live session from one IP address is refused from
/// another (`409`, code `login-denied`, with the existing sessions). The token in the response
/// is shown only here.
#[utoipa::path(
    tag = "sessions",
    request_body = NewSessionRequest,
    security(("service_key" = [])),
    responses(
        (status = 201, description = "The session was created", body = CreatedSession,
            headers(("Location" = String, description = "/sessions/{id}"))),
        BodyProblems,
        (status = 401, description = "No X-Service-Key, or one that is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: by the concurrent-session policy (code `login-denied`, with the sessions in the way), or because every seat of the organisation is taken (code `seat-limit`)", body = LoginRefusal, content_type = "application/problem+json"),
        (status = 503, description = "The session store cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/sessions")]
pub async fn create_session(
    _: ServiceCaller,
    state: web::Data<AppState>,
    body: web::Json<NewSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoggedIn {
        session,
        token,
        ended,
    } = state.sessions.log_in(body.into_inner()).await?;
    let location = format!("/sessions/{}", session.data.id);
    let now = session.last_active_at;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(CreatedSession {
            session: Session::view(session, now, None),
            token: token.expose(),
            ended: ended.iter().map(|(id, _)| id.to_string()).collect(),
        }))
}

/// Log out: end the caller's own session.
///
/// Its token stops validating at once, on every endpoint.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses((status = 204, description = "The session has ended"), BearerProblems)
)]
#[delete("/sessions/current")]
pub async fn logout(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.sessions.log_out(caller.id(), caller.now).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List sessions: the Session Management screen.
///
/// An `admin` sees every organisation, an `org_admin` only its own. Pages are keyset-paginated:
/// pass `next_cursor` back as `cursor` with the same sort, order and filters. Listing does not
/// touch the listed sessions.
#[utoipa::path(
    tag = "sessions",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of sessions", body = SessionList),
        (status = 400, description = "A parameter is unknown or not valid, or the cursor does not fit the query", body = Problem, content_type = "application/problem+json"),
        BearerProblems,
        AdminProblems,
    )
)]
#[get("/sessions")]
pub async fn list_sessions(
    admin: AdminCaller,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<web::Json<SessionList>, ApiError> {
    let now = admin.caller.now;
    let listing = state
        .sessions
        .list(params.into_inner(), admin.scope(), now)
        .await?;
    let caller = Some(admin.caller.id());
    Ok(web::Json(SessionList {
        items: listing
            .items
            .into_iter()
            .map(|record| Session::view(record, now, caller))
            .collect(),
        total: listing.total,
        next_cursor: listing.next_cursor,
        last_event_id: listing.last_event_id.unwrap_or_default().to_string(),
    }))
}

/// Read one session.
///
/// Any live session for an `admin`; for an `org_admin`, only sessions of its own organisation
/// (others are `404`, as if they did not exist). Anyone else may read the live sessions of its
/// own user; any other id — another user's, one already ended, one that never was — is `404`.
/// Reading does not touch the session read.
#[utoipa::path(
    tag = "sessions",
    params(("id" = String, Path, description = "The session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = Session),
        BearerProblems,
        (status = 404, description = "No live session with this id that the caller may reach: in an administrator's scope, or of the caller's own user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/sessions/{id}")]
pub async fn get_session(
    holder: Holder,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<Session>, ApiError> {
    let record = state.sessions.get(&holder.acting(), &id).await?;
    Ok(web::Json(Session::view(
        record,
        holder.caller.now,
        Some(holder.caller.id()),
    )))
}

/// End one session.
///
/// An administrator ends any session in its scope; anyone else a live session of its own user
/// (another device), and any other id is `404` (a device already signed out included). Nobody
/// ends their own session this way (`409`,
/// code `own-session`): that is what `DELETE /sessions/current` is for.
#[utoipa::path(
    tag = "sessions",
    params(("id" = String, Path, description = "The session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session has ended"),
        BearerProblems,
        (status = 404, description = "No live session with this id that the caller may reach: in an administrator's scope, or of the caller's own user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "That is the caller's own session (code `own-session`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/sessions/{id}")]
pub async fn delete_session(
    holder: Holder,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.sessions.end(&holder.acting(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The sessions at a glance, within the caller's scope.
#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    /// Live sessions.
    #[schema(example = 12)]
    pub total: u64,
    /// Distinct users with live sessions.
    #[schema(example = 9)]
    pub users: u64,
    /// Largest first.
    pub by_organisation: Vec<OrganisationSummary>,
    /// Largest first.
    pub by_server: Vec<ServerSummary>,
    /// What the lists leave out beyond `limit`, summed.
    pub other: OtherSummary,
    /// Where these counts stand in the events (they are at most 5 s old): every change up to
    /// this event is counted. Follow `GET /events` from it to keep them current.
    #[schema(example = "1795820400000-0")]
    pub last_event_id: String,
}

/// The organisations and servers beyond a summary's `limit`, summed per list.
#[derive(Serialize, ToSchema)]
pub struct OtherSummary {
    pub by_organisation: OtherOrganisations,
    pub by_server: OtherServers,
}

#[derive(Serialize, ToSchema)]
pub struct OtherOrganisations {
    /// Organisations not listed.
    #[schema(example = 0)]
    pub organisations: u64,
    /// Their sessions.
    #[schema(example = 0)]
    pub sessions: u64,
}

#[derive(Serialize, ToSchema)]
pub struct OtherServers {
    /// Servers not listed.
    #[schema(example = 0)]
    pub servers: u64,
    /// Their sessions.
    #[schema(example = 0)]
    pub sessions: u64,
}

/// `GET /sessions/summary` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// How many organisations and servers to list, largest first, 1..=1000; the rest are
    /// summed in `other`.
    #[param(minimum = 1, maximum = 1000, default = 20)]
    pub limit: Option<u32>,
    /// A cache-buster some clients add; ignored.
    #[serde(rename = "_")]
    #[param(rename = "_")]
    pub cache_buster: Option<String>,
}

/// Organisations and servers a summary lists when no `limit` is given.
const SUMMARY_LIMIT: usize = 20;

#[derive(Serialize, ToSchema)]
pub struct OrganisationSummary {
    #[schema(example = "Acme")]
    pub organisation: String,
    #[schema(example = 7)]
    pub sessions: u64,
    #[schema(example = 5)]
    pub users: u64,
    /// The organisation's seats (`SESSIOND_ORGANISATION_SEATS`), or null when it has no limit.
    #[schema(required = true, example = 50)]
    pub seats: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ServerSummary {
    #[schema(example = "APP-01")]
    pub server_name: String,
    #[schema(example = 4)]
    pub sessions: u64,
}

/// The sessions at a glance.
///
/// Totals, and sessions and users by organisation (with its seats) and by server, largest
/// first — the `limit` largest of each (default 20), the rest summed in `other`; an
/// `org_admin` sees its own organisation. Counted at most every 5 seconds, like the metrics.
#[utoipa::path(
    tag = "sessions",
    params(SummaryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counts", body = SessionSummary),
        (status = 400, description = "A parameter is unknown or out of range", body = Problem, content_type = "application/problem+json"),
        BearerProblems,
        AdminProblems,
    )
)]
#[get("/sessions/summary")]
pub async fn session_summary(
    admin: AdminCaller,
    state: web::Data<AppState>,
    params: web::Query<SummaryParams>,
) -> Result<web::Json<SessionSummary>, ApiError> {
    let limit = match params.limit {
        None => SUMMARY_LIMIT,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "limit: {n} is out of range; 1 to 1000"
            )))
        }
    };
    let mut summary = state
        .sessions
        .summary(admin.scope(), admin.caller.now)
        .await?;
    let left_organisations = summary
        .by_organisation
        .split_off(limit.min(summary.by_organisation.len()));
    let left_servers = summary
        .by_server
        .split_off(limit.min(summary.by_server.len()));
    Ok(web::Json(SessionSummary {
        last_event_id: summary.last_event_id.to_string(),
        total: summary.total,
        users: summary.users,
        other: OtherSummary {
            by_organisation: OtherOrganisations {
                organisations: left_organisations.len() as u64,
                sessions: left_organisations.iter().map(|o| o.sessions).sum(),
            },
            by_server: OtherServers {
                servers: left_servers.len() as u64,
                sessions: left_servers.iter().map(|(_, n)| n).sum(),
            },
        },
        by_organisation: summary
            .by_organisation
            .into_iter()
            .map(|o| OrganisationSummary {
                organisation: o.organisation,
                sessions: o.sessions,
                users: o.users,
                seats: o.seats,
            })
            .collect(),
        by_server: summary
            .by_server
            .into_iter()
            .map(|(server_name, sessions)| ServerSummary {
                server_name,
                sessions,
            })
            .collect(),
    }))
}

/// The sessions of the caller's own user.
#[derive(Serialize, ToSchema)]
pub struct MySessions {
    /// Most recently active first, at most 1000; `own` marks the caller's.
    pub items: Vec<Session>,
    /// How many live sessions the user has.
    #[schema(example = 2)]
    pub total: u64,
}

/// The ids a `DELETE /sessions/mine` or `DELETE /users/{user_id}/sessions` ended.
#[derive(Serialize, ToSchema)]
pub struct EndedSessions {
    #[schema(example = json!(["5d1e2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"]))]
    pub deleted: Vec<String>,
}

/// List my sessions.
///
/// Every live session of the caller's user (its devices), most recently active first, with
/// `own: true` on the caller's. Any session holder may call it.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "The user's sessions", body = MySessions), BearerProblems)
)]
#[get("/sessions/mine")]
pub async fn my_sessions(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<MySessions>, ApiError> {
    let listing = state
        .sessions
        .mine(&caller.session.data, caller.now)
        .await?;
    let own = Some(caller.id());
    Ok(web::Json(MySessions {
        items: listing
            .items
            .into_iter()
            .map(|record| Session::view(record, caller.now, own))
            .collect(),
        total: listing.total,
    }))
}

/// Log out my other devices.
///
/// Ends every other session of the caller's user; the caller's own stays.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "The sessions ended", body = EndedSessions), BearerProblems)
)]
#[delete("/sessions/mine")]
pub async fn end_my_other_sessions(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<EndedSessions>, ApiError> {
    let ended = state
        .sessions
        .end_others(&caller.session.data, caller.now)
        .await?;
    Ok(web::Json(EndedSessions {
        deleted: ended.iter().map(ToString::to_string).collect(),
    }))
}

/// End several sessions at once.
///
/// Every id sent appears in exactly one of `deleted`, `not_found` and `refused`. The caller's
/// own session is never deleted: it is reported under `refused`. Ids outside an `org_admin`'s
/// organisation are reported as `not_found`.
#[utoipa::path(
    tag = "sessions",
    request_body = DeleteSessionsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What happened to each id", body = DeleteSessionsResult),
        BodyProblems,
        BearerProblems,
        AdminProblems,
    )
)]
#[delete("/sessions")]
pub async fn delete_sessions(
    admin: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<DeleteSessionsRequest>,
) -> Result<web::Json<DeleteSessionsResult>, ApiError> {
    let requested = body.into_inner().ids;
    if requested.is_empty() || requested.len() > MAX_DELETE_IDS {
        return Err(ApiError::invalid(format!(
            "ids: between 1 and {MAX_DELETE_IDS} are allowed, got {}",
            requested.len()
        )));
    }
    let outcome = state.sessions.end_many(&admin.acting(), requested).await?;
    Ok(web::Json(DeleteSessionsResult {
        deleted: outcome.deleted,
        not_found: outcome.not_found,
        refused: outcome
            .refused_own
            .into_iter()
            .map(|id| Refusal {
                id,
                reason: RefusalReason::OwnSession,
            })
            .collect(),
    }))
}
