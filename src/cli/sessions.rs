//! `sessiond sessions …`: a command-line client of a running sessiond, for operators and
//! scripts. It speaks the same HTTP API as everyone else.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::client::{ApiClient, CliError, Credential};
use super::export::{export, ExportArgs};
use super::responses::{read, Created, Deleted, Event, Listed, Login, Mine, Page};
use crate::domain::limits::MAX_DELETE_IDS;
use crate::duration::format_duration;

const EXIT_CODES: &str = "Exit status: 0 when everything asked for was done; 1 when sessiond \
refused or failed (an error problem, ids not found or refused, a declined confirmation, or \
sessiond could not be reached); 2 for a usage error.";

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct SessionsArgs {
    /// sessiond's base URL.
    #[arg(
        long,
        env = "SESSIOND_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// An administrator's bearer token (list, delete, whoami). Prefer SESSIOND_TOKEN or
    /// --token-file: a flag's value shows in `ps` and shell history.
    // A token may begin with `-`: it is still the flag's value.
    #[arg(
        long,
        env = "SESSIOND_TOKEN",
        hide_env_values = true,
        global = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,
    /// Read the bearer token from this file (`-` for standard input).
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "token")]
    pub token_file: Option<std::path::PathBuf>,
    /// A service key (login). Prefer SESSIOND_SERVICE_KEY or --service-key-file.
    #[arg(
        long,
        env = "SESSIOND_SERVICE_KEY",
        hide_env_values = true,
        global = true,
        allow_hyphen_values = true
    )]
    pub service_key: Option<String>,
    /// Read the service key from this file (`-` for standard input).
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "service_key"
    )]
    pub service_key_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List sessions as the Session Management screen shows them.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// End sessions: by id, every session of a user, or of an organisation.
    #[command(after_help = EXIT_CODES)]
    Delete(DeleteArgs),
    /// Show the session the token belongs to.
    #[command(after_help = EXIT_CODES)]
    Whoami {
        /// Print the session as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Log a user in with a service key and print only the new token.
    #[command(after_help = EXIT_CODES)]
    Login(LoginArgs),
    /// List the sessions of the token's own user (its devices), most recently active first.
    #[command(after_help = EXIT_CODES)]
    Mine {
        /// Print the sessions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End every other session of the token's own user ("log out my other devices").
    #[command(name = "end-others", after_help = EXIT_CODES)]
    EndOthers,
    /// Give the token's session a new token and print only that (the old one stops working
    /// at once): for scripts that hold a token for long.
    #[command(after_help = EXIT_CODES)]
    Rotate,
    /// End every session of a user (account disabled, password changed): with an
    /// administrator's token, or an app server's service key.
    #[command(name = "revoke-user", after_help = EXIT_CODES)]
    RevokeUser {
        /// The user's id.
        user: String,
        /// A session of the user to keep (the device that changed the password).
        #[arg(long, value_name = "SESSION_ID")]
        except: Option<String>,
    },
    /// Write every session the token may list, page by page, as JSON lines or CSV (for audits
    /// and spreadsheets).
    #[command(after_help = EXIT_CODES)]
    Export(ExportArgs),
    /// Follow events as they happen, one line each (administrators); reconnects and resumes
    /// where it left off until interrupted.
    #[command(after_help = EXIT_CODES)]
    Watch {
        /// Print each event as a JSON line.
        #[arg(long)]
        json: bool,
        /// Only these types, comma-separated: session-created, session-ended, login-denied,
        /// session-rotated, session-reauthenticated, session-ip-changed.
        #[arg(long, value_name = "TYPE,...")]
        types: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this organisation.
    #[arg(long)]
    pub org: Option<String>,
    /// Only this user id.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this server name.
    #[arg(long)]
    pub server: Option<String>,
    /// Case-insensitive search in name, user id and IP address.
    #[arg(long)]
    pub search: Option<String>,
    /// Sort key.
    #[arg(long, default_value = "name", value_parser = ["name", "organisation", "ip_address", "server_name", "timeout", "session_time", "last_active"])]
    pub sort: String,
    /// Descending order.
    #[arg(long)]
    pub desc: bool,
    /// Rows per page (1..=1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Follow every page, not only the first.
    #[arg(long)]
    pub all: bool,
    /// Print one JSON array of sessions and nothing else.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["ids", "user", "org"])))]
pub struct DeleteArgs {
    /// Session ids to end.
    pub ids: Vec<String>,
    /// End every session of this user ("log this user out everywhere").
    #[arg(long, conflicts_with = "ids")]
    pub user: Option<String>,
    /// End every session of this organisation (except your own).
    #[arg(long, conflicts_with_all = ["ids", "user"])]
    pub org: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The user's id, as the app server knows the user.
    #[arg(long)]
    pub user: String,
    /// The user's display name.
    #[arg(long)]
    pub name: String,
    /// The end user's IP address.
    #[arg(long)]
    pub ip: String,
    /// The user's organisation; Default when not given.
    #[arg(long)]
    pub org: Option<String>,
    /// The app-server node the user is on; the server's own name when not given.
    #[arg(long)]
    pub server: Option<String>,
    /// A role; repeat for several (admin, org_admin, …).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Idle timeout in seconds.
    #[arg(long)]
    pub timeout: Option<u32>,
}

/// Runs a `sessions` subcommand and says how it went.
pub fn run(args: SessionsArgs) -> ExitCode {
    warn_of_secrets_in_arguments(&["--token", "--service-key"]);
    let secrets =
        secret(args.token, args.token_file.as_deref(), "--token-file").and_then(|token| {
            Ok((
                token,
                secret(
                    args.service_key,
                    args.service_key_file.as_deref(),
                    "--service-key-file",
                )?,
            ))
        });
    let (token, service_key) = match secrets {
        // The server's variable, when the client's own is not set: its first key.
        Ok((token, None)) => (token, server_key()),
        Ok(secrets) => secrets,
        Err(e) => {
            eprintln!("sessiond: {e}");
            return e.exit_code();
        }
    };
    let client = ApiClient::new(&args.url, token, service_key);
    let outcome = match args.command {
        SessionsCommand::List(list) => list_sessions(&client, &list),
        SessionsCommand::Delete(delete) => delete_sessions(&client, &delete),
        SessionsCommand::Whoami { json } => whoami(&client, json),
        SessionsCommand::Login(login) => log_in(&client, &login),
        SessionsCommand::Mine { json } => my_sessions(&client, json),
        SessionsCommand::EndOthers => end_others(&client),
        SessionsCommand::RevokeUser { user, except } => revoke_user(&client, &user, except),
        SessionsCommand::Rotate => rotate(&client),
        SessionsCommand::Watch { json, types } => watch(&client, json, types.as_deref()),
        SessionsCommand::Export(export_args) => export(&client, &export_args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessiond: {e}");
            e.exit_code()
        }
    }
}

/// Every session the query selects (one page, or all with `all`).
fn fetch(
    client: &ApiClient,
    query: &[(&str, String)],
    all: bool,
) -> Result<(Vec<Value>, u64, bool), CliError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page: Page = read(client.get("/sessions", &q)?)?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if all => cursor = Some(next),
            next => return Ok((items, page.total, next.is_some())),
        }
    }
}

fn list_sessions(client: &ApiClient, args: &ListArgs) -> Result<ExitCode, CliError> {
    let mut query = vec![
        ("sort", args.sort.clone()),
        ("order", if args.desc { "desc" } else { "asc" }.to_string()),
        ("limit", args.limit.to_string()),
    ];
    for (name, value) in [
        ("organisation", &args.org),
        ("user_id", &args.user),
        ("server_name", &args.server),
        ("q", &args.search),
    ] {
        if let Some(v) = value {
            query.push((name, v.clone()));
        }
    }
    let (items, total, more) = fetch(client, &query, args.all)?;
    if args.json {
        println!("{}", Value::Array(items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "Name",
        "Organisation",
        "IP Address",
        "Server Name",
        "Timeout",
        "Session Time",
        "ID",
    ]);
    for s in items.iter().cloned().map(read::<Listed>) {
        let s = s?;
        let mut name = s.name;
        if s.own {
            name.push_str(" (you)");
        }
        table.add_row([
            name,
            s.organisation,
            s.ip_address,
            s.server_name,
            format_duration(s.timeout_seconds),
            format_duration(s.session_time_seconds),
            s.id,
        ]);
    }
    println!("{table}");
    let hint = if more { " (--all for every page)" } else { "" };
    let noun = if total == 1 { "session" } else { "sessions" };
    println!("{} of {total} {noun}{hint}", items.len());
    Ok(ExitCode::SUCCESS)
}

/// An empty table with these columns, drawn as the CLI draws every table.
fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

fn my_sessions(client: &ApiClient, json: bool) -> Result<ExitCode, CliError> {
    let mine: Mine = read(client.get("/sessions/mine", &[])?)?;
    if json {
        println!("{}", Value::Array(mine.items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "IP Address",
        "Server Name",
        "Device",
        "Session Time",
        "Last Active",
        "ID",
    ]);
    for s in mine.items.into_iter().map(read::<Listed>) {
        let s = s?;
        let device = s.device();
        let mut ip = s.ip_address;
        if let Some(last) = s.last_ip_address.filter(|last| *last != ip) {
            ip.push_str(&format!(" (last {last})"));
        }
        if s.own {
            ip.push_str(" (this device)");
        }
        table.add_row([
            ip,
            s.server_name,
            device,
            format_duration(s.session_time_seconds),
            format!("{} ago", format_duration(s.idle_seconds)),
            s.id,
        ]);
    }
    println!("{table}");
    let total = mine.total;
    let noun = if total == 1 { "session" } else { "sessions" };
    println!("{total} {noun} of this user");
    Ok(ExitCode::SUCCESS)
}

fn end_others(client: &ApiClient) -> Result<ExitCode, CliError> {
    let ended: Deleted = read(client.delete("/sessions/mine", &Value::Null)?)?;
    let count = ended.deleted.len();
    let noun = if count == 1 { "session" } else { "sessions" };
    println!("ended {count} other {noun}; this one stays");
    Ok(ExitCode::SUCCESS)
}

fn rotate(client: &ApiClient) -> Result<ExitCode, CliError> {
    let renewed = client.post_as(Credential::Bearer, "/sessions/current/rotate", &Value::Null)?;
    let token = renewed["token"]
        .as_str()
        .ok_or_else(|| CliError::Failed("sessiond answered without a token".into()))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn revoke_user(
    client: &ApiClient,
    user: &str,
    except: Option<String>,
) -> Result<ExitCode, CliError> {
    let query: Vec<(&str, String)> = except.into_iter().map(|id| ("except", id)).collect();
    // The user id is one path segment, whatever it holds.
    let user_segment = utf8_percent_encode(user, NON_ALPHANUMERIC);
    let path = format!("/users/{user_segment}/sessions");
    let ended: Deleted =
        read(client.delete_as(Credential::Either, &path, &query, &Value::Null)?)?;
    for id in &ended.deleted {
        println!("revoked    {id}");
    }
    let count = ended.deleted.len();
    let noun = if count == 1 { "session" } else { "sessions" };
    println!("ended {count} {noun} of user {user}");
    Ok(ExitCode::SUCCESS)
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    matches!(read, Ok(n) if n > 0) && matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

fn delete_sessions(client: &ApiClient, args: &DeleteArgs) -> Result<ExitCode, CliError> {
    let (ids, what) = match (&args.user, &args.org) {
        (Some(user), _) => (
            ids_of(client, ("user_id", user.clone()))?,
            format!("of user {user}"),
        ),
        (None, Some(org)) => (
            ids_of(client, ("organisation", org.clone()))?,
            format!("of organisation {org}"),
        ),
        (None, None) => (args.ids.clone(), String::new()),
    };
    if ids.is_empty() {
        println!("No sessions {what}.");
        return Ok(ExitCode::SUCCESS);
    }
    let count = ids.len();
    let plural = if count == 1 { "session" } else { "sessions" };
    let question = match what.is_empty() {
        true => format!("End {count} {plural}?"),
        false => format!("End {count} {plural} {what}?"),
    };
    if !args.yes && !confirm(&question) {
        eprintln!("Cancelled: nothing was deleted.");
        return Ok(ExitCode::FAILURE);
    }
    let (mut deleted, mut not_found, mut refused) = (0, 0, 0);
    for chunk in ids.chunks(MAX_DELETE_IDS) {
        let result: Deleted = read(client.delete("/sessions", &json!({ "ids": chunk }))?)?;
        for id in &result.deleted {
            println!("deleted    {id}");
        }
        for id in &result.not_found {
            println!("not found  {id}");
        }
        for r in &result.refused {
            println!("refused    {} (your own session)", r.id);
        }
        deleted += result.deleted.len();
        not_found += result.not_found.len();
        refused += result.refused.len();
    }
    println!("Deleted {deleted}, not found {not_found}, refused {refused}.");
    Ok(if not_found + refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ids_of(client: &ApiClient, filter: (&str, String)) -> Result<Vec<String>, CliError> {
    let query = [
        filter,
        ("limit", crate::domain::limits::MAX_LIMIT.to_string()),
    ];
    let (items, _, _) = fetch(client, &query, true)?;
    items
        .into_iter()
        .map(|s| read::<Listed>(s).map(|s| s.id))
        .collect()
}

/// Prints events until interrupted; after a dropped connection it reconnects (once a second)
/// and resumes after the last event it printed. A refusal (bad token, bad type) ends it.
fn watch(client: &ApiClient, json: bool, types: Option<&str>) -> Result<ExitCode, CliError> {
    let query: Vec<(&str, String)> = types
        .map(|t| ("types", t.to_string()))
        .into_iter()
        .collect();
    let mut last: Option<String> = None;
    loop {
        let resume = last.clone();
        let outcome = client.stream("/events", &query, resume.as_deref(), |id, data| {
            last = Some(id.to_string());
            match serde_json::from_str::<Event>(data) {
                Ok(event) if !json => println!("{}", event_line(&event)),
                _ => println!("{data}"),
            }
        });
        match outcome {
            Err(refused @ CliError::Refused { .. }) => return Err(refused),
            Err(e) if last.is_none() => return Err(e),
            _ => std::thread::sleep(std::time::Duration::from_secs(1)),
        }
    }
}

/// One event as a line: time, type, then what it is about.
fn event_line(event: &Event) -> String {
    let d = &event.data;
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    let about = match event.kind.as_str() {
        "session-created" => format!(
            "{} ({}) {} from {} on {}  {}",
            text(&d.user_id),
            text(&d.name),
            text(&d.organisation),
            text(&d.ip_address),
            text(&d.server_name),
            text(&d.id)
        ),
        "session-ended" => format!(
            "{} {} on {}  {}  reason={}",
            text(&d.user_id),
            text(&d.organisation),
            text(&d.server_name),
            text(&d.id),
            text(&d.reason)
        ),
        "login-denied" => format!(
            "{} {} from {}  reason={}",
            text(&d.user_id),
            text(&d.organisation),
            text(&d.ip_address),
            text(&d.reason)
        ),
        "session-reauthenticated" => format!(
            "{}  {}  assurance_level={}",
            text(&d.user_id),
            text(&d.id),
            d.assurance_level.map_or("-".into(), |l| l.to_string())
        ),
        "session-ip-changed" => format!(
            "{}  {}  {} -> {}",
            text(&d.user_id),
            text(&d.id),
            text(&d.from),
            text(&d.to)
        ),
        _ => format!("{}  {}", text(&d.user_id), text(&d.id)),
    };
    format!("{}  {:<23}  {about}", event.time, event.kind)
}

fn whoami(client: &ApiClient, json: bool) -> Result<ExitCode, CliError> {
    let me = client.get("/sessions/current", &[])?;
    if json {
        println!("{me}");
        return Ok(ExitCode::SUCCESS);
    }
    let me: Listed = read(me)?;
    let roles = match me.roles.is_empty() {
        true => "-".to_string(),
        false => me.roles.join(", "),
    };
    for (label, value) in [
        ("Name", me.name),
        ("User", me.user_id),
        ("Organisation", me.organisation),
        ("Roles", roles),
        ("IP Address", me.ip_address),
        ("Server Name", me.server_name),
        ("Timeout", format_duration(me.timeout_seconds)),
        ("Session Time", format_duration(me.session_time_seconds)),
        ("Expires", me.expires_at),
        ("Session ID", me.id),
    ] {
        println!("{label:<13} {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn log_in(client: &ApiClient, args: &LoginArgs) -> Result<ExitCode, CliError> {
    let body = Login {
        user_id: &args.user,
        name: &args.name,
        ip_address: &args.ip,
        organisation: args.org.as_deref(),
        server_name: args.server.as_deref(),
        roles: &args.roles,
        timeout_seconds: args.timeout,
    };
    let body = serde_json::to_value(&body).expect("a login serialises");
    let created: Created = read(client.post("/sessions", &body)?)?;
    println!("{}", created.token);
    Ok(ExitCode::SUCCESS)
}

/// Warns when one of `flags` carries a secret on the command line, where `ps` and shell
/// history show it to others.
pub fn warn_of_secrets_in_arguments(flags: &[&str]) {
    for argument in std::env::args_os().skip(1) {
        let argument = argument.to_string_lossy();
        if let Some(flag) = flags
            .iter()
            .find(|f| argument == **f || argument.starts_with(&format!("{f}=")))
        {
            eprintln!(
                "sessiond: warning: {flag} puts a secret where `ps` and shell history show it; \
                 prefer its environment variable or a file"
            );
        }
    }
}

/// A secret given directly (flag or environment), or read from `file` (`-`: standard input),
/// without the line ending.
fn secret(
    given: Option<String>,
    file: Option<&std::path::Path>,
    flag: &str,
) -> Result<Option<String>, CliError> {
    let Some(path) = file else {
        return Ok(given);
    };
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CliError::Usage(format!(
            "{flag} {}: it is empty",
            path.display()
        )));
    }
    Ok(Some(text.to_string()))
}

/// The first of the server's keys (`SESSIOND_SERVICE_KEYS`), for a client on the same machine.
fn server_key() -> Option<String> {
    let keys = std::env::var("SESSIOND_SERVICE_KEYS").ok()?;
    keys.split(',')
        .map(str::trim)
        .find(|k| !k.is_empty())
        .map(str::to_string)
}
