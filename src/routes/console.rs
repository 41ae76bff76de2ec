//! The Session Management page: static HTML, CSS and JavaScript embedded in the binary. The
//! page itself talks to the API with the administrator's bearer token.

use actix_web::http::header::{self, ContentType};
use actix_web::{guard, web, HttpRequest, HttpResponse};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../console/index.html");
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// One file of `src/console/`, compiled in: its name, content type and contents.
macro_rules! asset {
    ($name:literal, $kind:expr) => {
        ($name, $kind, include_str!(concat!("../console/", $name)))
    };
}

/// The page's files under `/console/`: name, content type, contents. `console.js` is the
/// entry module; the others are the modules it imports, one per part of the page.
const ASSETS: [(&str, &str, &str); 10] = [
    asset!("console.js", JAVASCRIPT),
    asset!("state.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("signin.js", JAVASCRIPT),
    asset!("list.js", JAVASCRIPT),
    asset!("glance.js", JAVASCRIPT),
    asset!("live.js", JAVASCRIPT),
    asset!("mine.js", JAVASCRIPT),
    asset!("format.js", JAVASCRIPT),
    asset!("console.css", "text/css; charset=utf-8"),
];

/// Only this origin's own files; no inline script or style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// Registers `/`, `/console` and the page's assets under `/console/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let read = || guard::Any(guard::Get()).or(guard::Head());
    cfg.service(
        web::resource(["/", "/console", "/console/"])
            .route(web::route().guard(read()).to(page))
            .default_service(web::to(read_only)),
    )
    .service(
        web::resource("/console/{asset}")
            .route(web::route().guard(read()).to(asset))
            .default_service(web::to(read_only)),
    );
}

async fn read_only(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(
        req.method().as_str(),
        req.path(),
        vec!["GET", "HEAD"],
    ))
}

fn respond(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // Small files that change with each release: always revalidate.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

async fn page() -> HttpResponse {
    respond(&ContentType::html().to_string(), INDEX_HTML)
}

async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or_else(|| ApiError::not_found(format!("nothing is at /console/{name}")))?;
    Ok(respond(content_type, body))
}
