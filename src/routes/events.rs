//! `GET /events`: every change as it happens, as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, Responder};
use actix_web_lab::sse;
use futures_util::StreamExt;
use utoipa::IntoParams;

use super::problems::{AdminProblems, BearerProblems};
use crate::auth::AdminCaller;
use crate::domain::{Millis, Scope};
use crate::error::{ApiError, Code, Problem};
use crate::events::readers::{Full, PER_SESSION};
use crate::events::{feed, EventId, EventType, Filter, Item, StreamMessage};
use crate::state::AppState;

/// A comment at least this often keeps proxies from closing a quiet stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The header a reconnecting reader sends with the last id it saw.
const LAST_EVENT_ID: &str = "Last-Event-ID";

/// `GET /events` query, read by [`EventParams::parse`] (`type` may repeat, which a derived
/// query reader refuses).
#[derive(Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only these event types (repeat the parameter: `type=session-ended&type=login-denied`);
    /// every type when absent.
    #[param(rename = "type", explode, style = Form)]
    pub kind: Option<Vec<EventType>>,
    // Documented here; `EventParams::parse` reads it into `kind`.
    /// The same as `type`, comma-separated (`session-created,session-ended`).
    #[param(
        example = "session-created,session-ended",
        pattern = r"^(session-created|session-ended|login-denied|session-rotated|session-reauthenticated|session-ip-changed)?(,(session-created|session-ended|login-denied|session-rotated|session-reauthenticated|session-ip-changed))*$"
    )]
    pub types: Option<String>,
    /// The same as the `Last-Event-ID` header, for `EventSource` polyfills that cannot send
    /// it; the header wins when both are given.
    #[param(
        rename = "lastEventId",
        example = "1795820400000-0",
        pattern = "^([0-9]{1,19}(-[0-9]{1,19})?)?$"
    )]
    pub last_event_id: Option<String>,
    /// A cache-buster some clients add; ignored.
    #[param(rename = "_")]
    pub cache_buster: Option<String>,
}

impl EventParams {
    /// Reads a query string: each `type` and `types` value may name several types,
    /// comma-separated; an unknown parameter is refused, so a misspelling is caught.
    fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|e| ApiError::invalid(format!("the query string is not valid: {e}")))?;
        let mut params = EventParams::default();
        for (name, value) in pairs.into_inner() {
            match name.as_str() {
                "type" | "types" => {
                    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                        let kinds = params.kind.get_or_insert_with(Vec::new);
                        kinds.push(EventType::parse(word).ok_or_else(|| {
                            let known: Vec<&str> =
                                EventType::ALL.iter().map(|t| t.as_str()).collect();
                            ApiError::invalid(format!(
                                "{name}: {word:?} is not an event type; one of {}",
                                known.join(", ")
                            ))
                        })?);
                    }
                }
                "lastEventId" => params.last_event_id = Some(value),
                "_" => {}
                other => {
                    return Err(ApiError::invalid(format!(
                        "the query string is not valid: unknown parameter {other:?}; expected type, types, lastEventId or _"
                    )))
                }
            }
        }
        Ok(params)
    }
}

/// The id to resume after: the `Last-Event-ID` header, else `lastEventId` (which EventSource
/// polyfills append).
fn last_event_id(req: &HttpRequest, query: Option<&str>) -> Result<Option<EventId>, ApiError> {
    let (text, source) = match req.headers().get(LAST_EVENT_ID) {
        Some(value) => (value.to_str().ok(), LAST_EVENT_ID),
        None => (query, "lastEventId"),
    };
    let not_an_id = || {
        ApiError::invalid(format!(
            "{source}: not an event id this service issued (they look like 1795820400000-0)"
        ))
    };
    let Some(text) = text else {
        return match source {
            LAST_EVENT_ID => Err(not_an_id()),
            _ => Ok(None),
        };
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    EventId::parse(text).map(Some).ok_or_else(not_an_id)
}

/// A message about the stream itself, delivered like the events (client libraries drop
/// comments): `stream-reset` — reload, then follow (`gap`: events after the id asked for are
/// no longer kept, or were numbered before a restart; `behind`: the reader fell too far behind
/// and the stream closes) — or `stream-ended`: the reader's own session ended and the stream
/// closes.
fn stream_state(kind: &str, reason: &str) -> sse::Event {
    let message = serde_json::json!({"type": kind, "data": {"reason": reason}});
    sse::Data::new(message.to_string()).into()
}

/// How long a reader refused for a limit is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The live event stream.
///
/// Every change to the sessions this administrator may see (the list's scope) as it happens,
/// on any node: `session-created`, `session-ended` (with `reason`: logout, admin, self,
/// expired, replaced, evicted, revoked, ip-changed), `login-denied` (`other-ip` or
/// `seat-limit`), `session-rotated`, `session-reauthenticated` and `session-ip-changed`. Each message's
/// `data` is one JSON `EventMessage`, and its `id:` line the event's id: a client that
/// reconnects with `Last-Event-ID` first gets the events it missed (the newest 16,384 are
/// kept; if older ones were asked for, or the id is from before a restart, a `stream-reset`
/// message with reason `gap` comes first: reload, then follow). A comment line comes at least
/// every 10 s. A reader too slow to keep up gets `stream-reset` (`behind`) and is
/// disconnected; a reader whose own session ends (logout, expiry, an administrator) gets
/// `stream-ended` and is disconnected. Browsers read
/// it with `fetch`, since `EventSource` cannot send a bearer token.
#[utoipa::path(
    tag = "sessions",
    params(
        EventParams,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "The id of the last event received, to resume after it", example = "1795820400000-0", pattern = "^([0-9]{1,19}(-[0-9]{1,19})?)?$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A stream of server-sent events: each message's `data` is one StreamMessage as JSON, and an event's `id:` line its id", content_type = "text/event-stream", body = StreamMessage),
        (status = 400, description = "Last-Event-ID or a type is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "This node serves as many event streams as it may (SESSIOND_MAX_EVENT_STREAMS), or this session holds 4 already; try again after Retry-After seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        BearerProblems,
        AdminProblems,
    )
)]
#[get("/events")]
pub async fn events(
    admin: AdminCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let params = EventParams::parse(req.query_string())?;
    let types = params.kind.unwrap_or_default();
    let after = last_event_id(&req, params.last_event_id.as_deref())?;
    // Admitted first, so that a refused reader costs nothing; the stream owns its place.
    let reader = state
        .readers
        .admit(admin.caller.session.data.id)
        .map_err(|full| match full {
            Full::Node(max) => ApiError::too_many(
                format!(
                    "this node already serves {max} event streams (SESSIOND_MAX_EVENT_STREAMS)"
                ),
                RETRY_AFTER_SECONDS,
            ),
            Full::Session => ApiError::too_many(
                format!("this session already holds {PER_SESSION} event streams; close one first"),
                RETRY_AFTER_SECONDS,
            ),
        })?;
    let hub = &state.events;
    hub.want();
    if !hub.ready(Duration::from_secs(5)).await {
        return Err(ApiError::unavailable("the event log cannot be read yet"));
    }
    if let Some(after) = after {
        hub.reached(after, Duration::from_secs(2)).await;
    }
    let replay = hub
        .join(after)
        .ok_or_else(|| ApiError::new(Code::Unavailable, "the server is stopping"))?;
    let filter = Filter {
        scope: admin.scope().clone(),
        types,
        own: admin.caller.session.data.id,
    };
    // An end of the reader's own session that came before it joined (a node that just filled
    // its ring from the shared log) is in no feed it gets: ask the store.
    let own = admin.caller.session.data.id;
    let ended_already = state
        .sessions
        .store()
        .get(own, &Scope::All, Millis::now())
        .await?
        .is_none();
    let hello = futures_util::stream::once(async { sse::Event::Comment("connected".into()) });
    let feed = match ended_already {
        true => futures_util::stream::iter([Item::Gone]).left_stream(),
        false => feed(replay, filter).right_stream(),
    };
    let messages = feed.map(|item| match item {
        Item::Event(event) => sse::Data::new(event.json().to_string())
            .id(event.id.to_string())
            .into(),
        Item::Missed => stream_state("stream-reset", "gap"),
        Item::Behind => stream_state("stream-reset", "behind"),
        Item::Gone => stream_state("stream-ended", "session-ended"),
    });
    let stream = hello.chain(messages).map(move |message| {
        // The stream owns the reader's place until it is dropped.
        let _ = &reader;
        Ok::<_, Infallible>(message)
    });
    // Like every other response, kept by no cache (the stream's own default is no-cache).
    Ok(sse::Sse::from_stream(stream)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        .insert_header((header::CACHE_CONTROL, "no-store")))
}
