//! What `GET /events` and webhooks deliver, as the OpenAPI document describes it: one schema
//! per message type, each naming its `type` as a constant and carrying its own `data`, joined
//! in a `oneOf` with a discriminator on `type` — so a generated client narrows on `type`
//! without a cast.

use std::borrow::Cow;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use super::{Denied, Ended};
use crate::domain::Session;

/// One kind of message.
struct Kind {
    /// Its `type`.
    name: &'static str,
    /// The name of its schema.
    schema: &'static str,
    about: &'static str,
    data: Data,
}

enum Data {
    /// A schema of its own, by name.
    Named(&'static str),
    /// `{"reason": …}`, one of these.
    Reason(&'static [&'static str]),
}

/// The events: what a change to the sessions says, on the stream and to webhooks.
const EVENTS: [Kind; 6] = [
    Kind {
        name: "session-created",
        schema: "SessionCreatedEvent",
        about: "A session was created (a login); `data` is the session.",
        data: Data::Named("Session"),
    },
    Kind {
        name: "session-ended",
        schema: "SessionEndedEvent",
        about: "A session ended; `data` says which and why.",
        data: Data::Named("SessionEndedData"),
    },
    Kind {
        name: "login-denied",
        schema: "LoginDeniedEvent",
        about: "A login was refused; `data` says whose and why.",
        data: Data::Named("LoginDeniedData"),
    },
    Kind {
        name: "session-rotated",
        schema: "SessionRotatedEvent",
        about: "A session got a new token (its old one stopped validating); it goes on.",
        data: Data::Named("SessionRotatedData"),
    },
    Kind {
        name: "session-reauthenticated",
        schema: "SessionReauthenticatedEvent",
        about: "A session's user authenticated again, at `assurance_level`; the session got a \
            new token.",
        data: Data::Named("SessionReauthenticatedData"),
    },
    Kind {
        name: "session-ip-changed",
        schema: "SessionIpChangedEvent",
        about: "An app server reported another client address for a session \
            (`SESSIOND_IP_CHANGE=report`).",
        data: Data::Named("SessionIpChangedData"),
    },
];

/// `session-rotated`'s data.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SessionRotatedData {
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    id: String,
    #[schema(example = "tpringle")]
    user_id: String,
}

/// `session-reauthenticated`'s data.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SessionReauthenticatedData {
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    id: String,
    #[schema(example = "tpringle")]
    user_id: String,
    #[schema(minimum = 1, maximum = 3, example = 2)]
    assurance_level: u8,
}

/// `session-ip-changed`'s data: the address before and the one reported now.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SessionIpChangedData {
    #[schema(example = "8c1f0c5e-7d3a-4b9e-9a41-2f6c1d0e5b7a")]
    id: String,
    #[schema(example = "tpringle")]
    user_id: String,
    #[schema(example = "59.100.242.122")]
    from: String,
    #[schema(example = "203.0.113.7")]
    to: String,
}

/// What the stream says about itself; these carry no `id` (they are no event to resume from).
const STREAM_STATES: [Kind; 2] = [
    Kind {
        name: "stream-reset",
        schema: "StreamResetMessage",
        about: "Events may have been missed: `gap` — the id resumed from is no longer kept (or \
            is from before a restart); `behind` — this reader fell too far behind and the \
            stream closes. Reload (the list's `last_event_id`), then follow again.",
        data: Data::Reason(&["gap", "behind"]),
    },
    Kind {
        name: "stream-ended",
        schema: "StreamEndedMessage",
        about: "The reader's own session ended (logout, expiry, an administrator); the stream \
            closes.",
        data: Data::Reason(&["session-ended"]),
    },
];

/// An event as `GET /events` and webhooks deliver it: one of the event schemas, told apart by
/// `type`.
pub struct EventMessage;

/// One message of `GET /events`: an event, or what the stream says about itself.
pub struct StreamMessage;

impl PartialSchema for EventMessage {
    fn schema() -> RefOr<Schema> {
        one_of(
            EVENTS.iter(),
            "An event, as `GET /events` and webhooks deliver it; `type` tells which.",
        )
    }
}

impl ToSchema for EventMessage {
    fn name() -> Cow<'static, str> {
        "EventMessage".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for kind in &EVENTS {
            schemas.push((kind.schema.into(), member(kind, true)));
        }
        schemas.push((Ended::name().into(), Ended::schema()));
        schemas.push((Denied::name().into(), Denied::schema()));
        schemas.push((Session::name().into(), Session::schema()));
        schemas.push((
            SessionRotatedData::name().into(),
            SessionRotatedData::schema(),
        ));
        schemas.push((
            SessionReauthenticatedData::name().into(),
            SessionReauthenticatedData::schema(),
        ));
        schemas.push((
            SessionIpChangedData::name().into(),
            SessionIpChangedData::schema(),
        ));
        <Session as ToSchema>::schemas(schemas);
        <Ended as ToSchema>::schemas(schemas);
        <Denied as ToSchema>::schemas(schemas);
    }
}

impl PartialSchema for StreamMessage {
    fn schema() -> RefOr<Schema> {
        one_of(
            EVENTS.iter().chain(&STREAM_STATES),
            "One message of `GET /events`: each SSE message's `data` is one of these as JSON \
                (and its `id:` line, for events, the event's `id`). `stream-reset` and \
                `stream-ended` are the stream's own state.",
        )
    }
}

impl ToSchema for StreamMessage {
    fn name() -> Cow<'static, str> {
        "StreamMessage".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for kind in &STREAM_STATES {
            schemas.push((kind.schema.into(), member(kind, false)));
        }
        schemas.push((EventMessage::name().into(), EventMessage::schema()));
        <EventMessage as ToSchema>::schemas(schemas);
    }
}

fn one_of<'a>(kinds: impl Iterator<Item = &'a Kind>, about: &str) -> RefOr<Schema> {
    let kinds: Vec<&Kind> = kinds.collect();
    let mut one_of = OneOfBuilder::new().description(Some(about));
    for kind in &kinds {
        one_of = one_of.item(Ref::from_schema_name(kind.schema));
    }
    one_of
        .discriminator(Some(Discriminator::with_mapping(
            "type",
            kinds
                .iter()
                .map(|kind| (kind.name, format!("#/components/schemas/{}", kind.schema))),
        )))
        .into()
}

/// One kind's schema: `type` as its constant, its `data`, and for an event its `id` and `time`.
fn member(kind: &Kind, event: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .description(Some(kind.about))
        .property("type", constant(kind.name))
        .required("type");
    if event {
        object = object
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Unique; later events have greater ids. Send the last one seen as \
                            `Last-Event-ID` to resume. Webhooks send it as `webhook-id`.",
                    ))
                    .examples(["1795820400000-0"]),
            )
            .required("id")
            .property(
                "time",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .examples(["2026-11-27T23:00:00Z"]),
            )
            .required("time");
    }
    let data: RefOr<Schema> = match kind.data {
        Data::Named(name) => Ref::from_schema_name(name).into(),
        Data::Reason(reasons) => ObjectBuilder::new()
            .property(
                "reason",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(reasons.iter().copied())),
            )
            .required("reason")
            .into(),
    };
    object.property("data", data).required("data").into()
}

/// A string that is always `value` (JSON Schema's `const`).
fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .extensions(Some(Extensions::from_iter([("const", value)])))
}
