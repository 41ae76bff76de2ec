//! What every handler and extractor can reach, built once by start-up.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::config::ServiceKeys;
use crate::events::{Hub, Readers};
use crate::metrics::Metrics;
use crate::route_table::RouteTable;
use crate::service::Sessions;

pub struct AppState {
    /// Every rule about sessions: the only way handlers reach the store.
    pub sessions: Sessions,
    pub service_keys: ServiceKeys,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<AuditLog>,
    /// The latest events, and every reader of them.
    pub events: Arc<Hub>,
    /// The readers of `GET /events`, within their limits.
    pub readers: Arc<Readers>,
    /// The OpenAPI document, serialised once.
    pub openapi_json: String,
    pub routes: RouteTable,
}
