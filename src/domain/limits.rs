//! Every bound the API puts on its input, defined once. The parsers, the command line and the
//! tests read them from here; the OpenAPI attributes must spell them as literals (utoipa takes
//! no expressions there), so `openapi_spec` tests that the document states these same numbers.

/// `user_id`, `name`, `organisation`, `server_name` and the list filters: 1..= this many
/// characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Roles per session.
pub const MAX_ROLES: usize = 16;
/// Characters per role.
pub const MAX_ROLE_CHARS: usize = 64;
/// Characters of a user agent.
pub const MAX_USER_AGENT_CHARS: usize = 512;
/// The longest idle timeout a session may ask for: a week.
pub const MAX_TIMEOUT_SECONDS: u32 = 604_800;
/// A page of the list when the query names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page of the list.
pub const MAX_LIMIT: usize = 1000;
/// The most ids one `DELETE /sessions` may name.
pub const MAX_DELETE_IDS: usize = 10_000;
/// The organisation of a login that names none.
pub const DEFAULT_ORGANISATION: &str = "Default";
