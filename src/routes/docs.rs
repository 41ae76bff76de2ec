//! `/docs`: interactive API documentation (Swagger UI) for `/openapi.json`, served from files
//! compiled into the binary, so it works with no internet access.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::Config;

use crate::error::ApiError;

/// What the reference page may load: its own files and this API only. Swagger UI sets styles
/// on elements and draws icons from `data:` URIs, so those two are allowed; scripts are not
/// inline.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Registers `/docs` (a redirect) and `/docs/…` (the UI's files).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let config = Arc::new(
        Config::from("/openapi.json")
            .try_it_out_enabled(true)
            .persist_authorization(false)
            .display_request_duration(true),
    );
    cfg.app_data(web::Data::new(config))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            }),
        )
        .route("/docs/{tail:.*}", web::get().to(file));
}

async fn file(
    tail: web::Path<String>,
    config: web::Data<Arc<Config<'static>>>,
) -> Result<HttpResponse, ApiError> {
    match utoipa_swagger_ui::serve(&tail, config.get_ref().clone()) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_POLICY))
            .body(file.bytes.to_vec())),
        Ok(None) => Err(ApiError::not_found(format!("nothing is at /docs/{tail}"))),
        Err(e) => Err(ApiError::new(
            crate::error::Code::Internal,
            format!("the documentation could not be served: {e}"),
        )),
    }
}
