//! The OpenAPI document, collected from the routes themselves.

use actix_web::App;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::auth::SERVICE_KEY_HEADER;
use crate::domain::listing::{Order, SortField};
use crate::error::{Code, Problem};
use crate::events::{EventData, EventMessage};
use crate::routes;

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
    components(schemas(Problem, Code, SortField, Order, EventMessage, EventData)),
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

/// The document as pretty-printed JSON, as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    let mut json = spec()
        .to_pretty_json()
        .expect("the OpenAPI document always serialises");
    json.push('\n');
    json
}
