//! HTTP routes, one file per resource, each handler with its OpenAPI description beside it.

pub mod audit;
pub mod console;
pub mod current;
pub mod docs;
pub mod events;
pub mod fallback;
pub mod health;
pub mod meta;
pub mod problems;
pub mod reauthentication;
pub mod sessions;
pub mod users;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every documented route. The OpenAPI document is collected from these same calls.
pub fn configure(cfg: &mut ServiceConfig) {
    // `/sessions/current`, `/sessions/mine` and `/sessions/summary` before `/sessions/{id}`, so
    // that none is ever taken for an id.
    cfg.service(sessions::create_session)
        .service(current::current_session)
        .service(current::rotate)
        .service(sessions::logout)
        .service(sessions::my_sessions)
        .service(sessions::session_summary)
        .service(sessions::end_my_other_sessions)
        .service(sessions::list_sessions)
        .service(sessions::delete_sessions)
        .service(sessions::get_session)
        .service(sessions::delete_session)
        .service(reauthentication::reauthenticated)
        .service(users::revoke_user_sessions)
        .service(audit::audit)
        .service(events::events)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(meta::openapi_json);
}
