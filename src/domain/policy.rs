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

impl ConcurrentSessions {
    /// The policy's name as logins, the command line and the Redis scripts spell it.
    pub fn name(self) -> &'static str {
        match self {
            ConcurrentSessions::DenyOtherIp => "deny-other-ip",
            ConcurrentSessions::Replace => "replace",
            ConcurrentSessions::Allow => "allow",
        }
    }

    /// Every name, for messages that list what is accepted: "a, b or c".
    pub fn names() -> String {
        let names: Vec<&str> = Self::value_variants().iter().map(|p| p.name()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_command_lines() {
        for policy in ConcurrentSessions::value_variants() {
            let name = policy.to_possible_value().expect("no variant is skipped");
            assert_eq!(policy.name(), name.get_name());
            assert_eq!(
                ConcurrentSessions::from_str(policy.name(), false),
                Ok(*policy)
            );
        }
    }
}
