//! The service describing itself.

use actix_web::{get, web, HttpResponse};

use crate::state::AppState;

/// The OpenAPI document of this API.
///
/// This document, generated from the code; the interactive reference at `/docs` reads it.
/// Needs no credentials.
#[utoipa::path(
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
    )
)]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}
