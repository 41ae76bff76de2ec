//! Answers requests no route took: `405` with `Allow` when the path exists under other methods
//! (see [`crate::route_table`]), `404` otherwise.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn fallback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.methods(req.path()) {
        Some(methods) => {
            ApiError::method_not_allowed(req.method().as_str(), req.path(), methods.to_vec())
        }
        None => ApiError::not_found(format!("nothing is at {}", req.path())),
    })
}
