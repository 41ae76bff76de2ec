//! Middleware that sees every request: observation ([`access_log`]), a guard on request heads
//! ([`header_limits`]), `HEAD` answered as `GET` ([`head_as_get`]) and the shaping of every
//! error body ([`problem_bodies`]), each request's id ([`request_id`]).

mod access_log;
mod head;
mod header_limits;
mod problem_bodies;
mod request_id;

pub use access_log::access_log;
pub use head::head_as_get;
pub use header_limits::{header_limits, MAX_HEADERS, MAX_HEADER_BYTES};
pub use problem_bodies::problem_bodies;
pub use request_id::{request_id, RequestId, REQUEST_ID};
