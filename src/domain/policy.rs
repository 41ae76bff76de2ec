//! The concurrent-session policy applied when a user logs in.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConcurrentSessions {
    /// While a user has a live session from one IP address, refuse logins from any other.
    DenyOtherIp,
    /// Create the new session and end the user's others.
    Replace,
    /// No limit.
    Allow,
}
