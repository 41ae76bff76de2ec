//! The command line: `sessiond` runs the service with [`Settings`]; its subcommands print the
//! OpenAPI document, probe a running server, or manage its sessions as a client.

mod client;
mod export;
mod healthcheck;
mod responses;
mod sessions;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::Settings;
pub use client::{ApiClient, CliError};
pub use healthcheck::healthcheck;
pub use sessions::{run as run_sessions, warn_of_secrets_in_arguments, SessionsArgs};

#[derive(Parser, Debug)]
#[command(
    name = "sessiond",
    version,
    about = "Session management service: issues, validates and expires login sessions",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the OpenAPI document to stdout and exit.
    Openapi,
    /// Manage the sessions of a running sessiond: list, delete, whoami, login.
    Sessions(Box<SessionsArgs>),
    /// Probe a running sessiond's /healthz; exit 0 when it answers 200, 1 otherwise.
    Healthcheck {
        /// sessiond's base URL, as for `sessions`; /healthz is probed there. By default the
        /// SESSIOND_BIND address.
        #[arg(long, env = "SESSIOND_URL", value_name = "URL")]
        url: Option<String>,
    },
}

/// `SESSIOND_*` variables in the environment that no setting or command reads: most often a
/// typo (`SESSIOND_IDLE_TIMEOUTT`), which would otherwise be ignored without a word.
pub fn unknown_variables() -> Vec<String> {
    let mut known: Vec<String> = Vec::new();
    let mut commands = vec![Cli::command()];
    while let Some(command) = commands.pop() {
        known.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
        commands.extend(command.get_subcommands().cloned());
    }
    // Read by `sessiond sessions` beside its flags: the server's keys, for a local client.
    known.push("SESSIOND_SERVICE_KEYS".into());
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("SESSIOND_") && !known.contains(name))
        .collect();
    unknown.sort();
    unknown
}

/// One line for a setting that cannot be used, naming its variable and flag; `None` for
/// other command-line errors, which clap explains best itself.
pub fn describe_setting_error(error: &clap::Error) -> Option<String> {
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next().unwrap_or_default();
    let command = Cli::command();
    let setting = command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))?;
    let env = setting.get_env()?.to_string_lossy().into_owned();
    let rendered = error.to_string();
    let line = rendered.lines().next().unwrap_or_default();
    let mut line = line.trim_start_matches("error: ").to_string();
    // A secret's value, even a bad one, is not repeated.
    if let (true, Some(ContextValue::String(value))) = (
        setting.is_hide_env_values_set(),
        error.get(ContextKind::InvalidValue),
    ) {
        // Only where clap quotes it: a short value may also be part of a word of the message.
        if !value.is_empty() {
            line = line.replace(&format!("'{value}'"), "'<redacted>'");
        }
    }
    // clap lists the accepted values on a later line; keep them on this one.
    let accepted = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("[possible values: "))
        .map(|values| format!(" (use one of: {})", values.trim_end_matches(']')))
        .unwrap_or_default();
    Some(format!(
        "sessiond: bad setting {env} ({flag}): {line}{accepted}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_flag_names_its_variable() {
        let error = Cli::try_parse_from(["sessiond", "--idle-timeout", "0"]).unwrap_err();
        let line = describe_setting_error(&error).unwrap();
        assert!(line.contains("SESSIOND_IDLE_TIMEOUT"), "{line}");
        assert!(!line.contains('\n'));
        let error =
            Cli::try_parse_from(["sessiond", "--concurrent-sessions", "sometimes"]).unwrap_err();
        let line = describe_setting_error(&error).unwrap();
        assert!(
            line.contains("deny-other-ip") && line.contains("replace") && line.contains("allow"),
            "{line}"
        );
    }
}
