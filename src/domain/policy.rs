//! The concurrent-session policy applied when a user logs in: the server's setting, or what a
//! login asks for itself.

use clap::ValueEnum;
use utoipa::ToSchema;

/// What a login does about the user's other live sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum ConcurrentSessions {
    /// While a user has a live session from one IP address, refuse logins from any other.
    DenyOtherIp,
    /// Create the new session and end the user's others.
    Replace,
    /// No limit.
    Allow,
}
