//! `sessiond sessions export`: every session the caller may list, written out page by page
//! (nothing is held beyond one page), as JSON lines or CSV for audits and spreadsheets.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::client::{ApiClient, CliError};
use super::responses::{read, Page};
use crate::domain::limits::MAX_LIMIT;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// How each session is written.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One JSON object per line, as the API shows a session.
    Jsonl,
    /// A header row, then one row per session (roles joined with `;`).
    Csv,
}

/// The columns of the CSV, in order: the API's session fields.
const COLUMNS: [&str; 15] = [
    "id",
    "user_id",
    "name",
    "organisation",
    "ip_address",
    "server_name",
    "roles",
    "user_agent",
    "timeout_seconds",
    "session_time_seconds",
    "idle_seconds",
    "created_at",
    "last_active_at",
    "expires_at",
    "own",
];

pub fn export(client: &ApiClient, args: &ExportArgs) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    let failed = |e: std::io::Error| CliError::Failed(format!("cannot write the export: {e}"));
    if let Format::Csv = args.format {
        writeln!(out, "{}", COLUMNS.join(",")).map_err(failed)?;
    }
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("sort", "session_time".to_string()),
            ("limit", MAX_LIMIT.to_string()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page: Page = read(client.get("/sessions", &query)?)?;
        for session in &page.items {
            match args.format {
                Format::Jsonl => writeln!(out, "{session}"),
                Format::Csv => writeln!(out, "{}", csv_row(session)),
            }
            .map_err(failed)?;
        }
        out.flush().map_err(failed)?;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn csv_row(session: &Value) -> String {
    COLUMNS
        .iter()
        .map(|column| {
            let text = match &session[column] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(roles) => roles
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(";"),
                other => other.to_string(),
            };
            csv_field(&text)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A CSV field (RFC 4180), quoted when it must be. A text a spreadsheet would read as a formula
/// (starting with `=`, `+`, `-`, `@`) is prefixed with `'`, so opening the export runs nothing.
fn csv_field(text: &str) -> String {
    let text = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("Ada"), "Ada");
        assert_eq!(csv_field("Pringle, Teresa"), "\"Pringle, Teresa\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@sum"), "'@sum");
    }
}
