//! The OpenAPI document, collected from the routes themselves.

use actix_web::App;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::auth::SERVICE_KEY_HEADER;
use crate::config::{LoginOverrides, DEFAULT_LOGIN_OVERRIDES};
use crate::domain::listing::{Order, SortField};
use crate::domain::ConcurrentSessions;
use crate::error::{Code, Problem};
use crate::events::{EventMessage, EventType};
use crate::routes;
use clap::ValueEnum;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Issues, validates and expires login sessions, and lets administrators \
            list and end them (the Session Management screen). Every error is an RFC 9457 \
            problem (`application/problem+json`) with a stable `code`.",
        contact(name = "sessiond maintainers")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(Problem, Code, SortField, Order, EventType, EventMessage)),
    tags(
        (name = "sessions", description = "Logging in, validating, listing and ending sessions"),
        (name = "operations", description = "Health, metrics and the audit trail, for operators"),
        (name = "meta", description = "The service describing itself"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token returned once by POST /sessions"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                SERVICE_KEY_HEADER,
                "A key from SESSIOND_SERVICE_KEYS, held by trusted app servers",
            ))),
        );
    }
}

/// The document, built from the same route registrations the server uses.
pub fn spec() -> utoipa::openapi::OpenApi {
    let (_, mut spec) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    finish(&mut spec);
    spec
}

/// What only the whole document can say: which operations need no credential, the `431` any
/// operation may answer, and where the server is.
fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    // An operation that names no credential needs none: say so (`security: []`) rather
    // than leave a reader or a linter to guess.
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation.security.get_or_insert_with(Vec::new);
            // Any request can meet this before its operation runs.
            operation
                .responses
                .responses
                .entry("431".into())
                .or_insert_with(|| head_too_large().into());
        }
    }
    openapi
        .extensions
        .get_or_insert_with(Default::default)
        .merge(Extensions::from_iter([("webhooks", webhooks())]));
    openapi.servers = Some(vec![utoipa::openapi::ServerBuilder::new()
        .url("http://127.0.0.1:8080")
        .description(Some(
            "sessiond at its default address (SESSIOND_BIND); use your deployment's",
        ))
        .build()]);
}

/// `431 header-fields-too-large`: a head with more headers or header bytes than any client of
/// this API sends.
fn head_too_large() -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(
            "The request's head has more headers or header bytes than any client of this API sends (code header-fields-too-large)",
        )
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// OpenAPI 3.1's `webhooks`: what sessiond `POST`s to `SESSIOND_WEBHOOK_URL` (utoipa has no
/// builder for them, so they are written here as the document says them).
fn webhooks() -> serde_json::Value {
    let header = |name: &str, about: &str, example: &str| {
        serde_json::json!({
            "name": name, "in": "header", "required": true, "description": about,
            "schema": {"type": "string"}, "example": example,
        })
    };
    serde_json::json!({
        "event": {
            "post": {
                "operationId": "receive_event",
                "summary": "An event, delivered to SESSIOND_WEBHOOK_URL",
                // No HTTP credential: the receiver checks `webhook-signature`.
                "security": [],
                "description": "Every event (the messages of `GET /events`) is `POST`ed as JSON, \
                    signed as the Standard Webhooks specification says. Any `2xx` acknowledges \
                    it; any other answer, or none within 10 s, is retried with exponential \
                    backoff for an hour. Delivery is at least once: deduplicate by `webhook-id`. \
                    For any one session, `session-created` arrives before `session-ended`.",
                "parameters": [
                    header("webhook-id", "The event's id", "1795820400000-0"),
                    header("webhook-timestamp", "When this attempt was signed (Unix seconds)", "1795820400"),
                    header("webhook-signature", "`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the secret's key", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventMessage"}}},
                },
                "responses": {
                    "2XX": {"description": "Received; not sent again"},
                },
            },
        },
    })
}

/// The document as pretty-printed JSON, as committed in `openapi/openapi.json`: for a server
/// with the default settings.
pub fn spec_json() -> String {
    spec_json_for(&LoginOverrides::parse(DEFAULT_LOGIN_OVERRIDES).expect("the default parses"))
}

/// The document a server serves: a login's `concurrent_sessions` lists only what
/// `SESSIOND_LOGIN_OVERRIDES` lets it ask for there, so that a client (or a fuzzer) generated
/// from it sends nothing the server refuses for the setting alone.
pub fn spec_json_for(overrides: &LoginOverrides) -> String {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    let mut spec = spec();
    let allowed: Vec<&str> = ConcurrentSessions::value_variants()
        .iter()
        .filter(|p| overrides.allows(**p))
        .map(|p| p.name())
        .collect();
    if let Some(components) = spec.components.as_mut() {
        if let Some(RefOr::T(Schema::Object(login))) =
            components.schemas.get_mut("NewSessionRequest")
        {
            match allowed.is_empty() {
                true => {
                    login.properties.remove("concurrent_sessions");
                }
                false => {
                    let values = allowed.iter().map(|a| Some(*a)).chain([None]);
                    let policy = ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .enum_values(Some(values))
                        .description(Some(
                            "Another concurrent-session policy for this one login, of those the \
                             server lets a login ask for (SESSIOND_LOGIN_OVERRIDES): after a \
                             `login-denied`, the app asks the user and repeats the login with \
                             `replace`.",
                        ));
                    login
                        .properties
                        .insert("concurrent_sessions".into(), policy.into());
                }
            }
        }
        // Described inline above, it is no longer referred to.
        components.schemas.remove("ConcurrentSessions");
    }
    let mut json = spec
        .to_pretty_json()
        .expect("the OpenAPI document always serialises");
    json.push('\n');
    json
}
