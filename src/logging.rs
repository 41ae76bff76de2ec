//! The log: text for people (the default) or one JSON object per line for collectors
//! (`SESSIOND_LOG_FORMAT=json`). Lines logged while a request is served carry its
//! `request_id` (and `trace_id`), whichever module logs them: the request's ids ride in a
//! task-local for the time its future runs.

use std::future::Future;
use std::io::Write;

use clap::ValueEnum;
use log::kv::{Key, Value, VisitSource};

/// How each log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value …`
    #[default]
    Text,
    /// `{"time":…,"level":…,"target":…,"message":…, …}`, one object per line.
    Json,
}

/// The ids of the request being served.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub trace_id: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Runs `future` with `context` as the request every line it logs is about.
pub async fn in_request<F: Future>(context: RequestContext, future: F) -> F::Output {
    REQUEST.scope(context, future).await
}

/// Installs the logger: `RUST_LOG` filters as usual (default `info`).
pub fn init(format: LogFormat) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let line = render(format, &Line::of(record));
            writeln!(buf, "{line}")
        })
        .init();
}

/// One line's parts: the record's own and the request's ids.
struct Line {
    time: String,
    level: log::Level,
    target: String,
    message: String,
    fields: Vec<(String, Field)>,
}

/// A key-value's value: numbers stay numbers in JSON.
enum Field {
    Number(String),
    Text(String),
}

impl Line {
    fn of(record: &log::Record<'_>) -> Self {
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let mut fields = fields.0;
        // Inside a request, its ids (unless the line already names them).
        let _ = REQUEST.try_with(|request| {
            let mut add = |name: &str, value: &str| {
                if !fields.iter().any(|(k, _)| k == name) {
                    fields.push((name.into(), Field::Text(value.into())));
                }
            };
            add("request_id", &request.request_id);
            if let Some(trace) = &request.trace_id {
                add("trace_id", trace);
            }
        });
        Line {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level: record.level(),
            target: record.target().to_string(),
            message: record.args().to_string(),
            fields,
        }
    }
}

struct Fields(Vec<(String, Field)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let field = match (value.to_u64(), value.to_i64(), value.to_f64()) {
            (Some(n), _, _) => Field::Number(n.to_string()),
            (_, Some(n), _) => Field::Number(n.to_string()),
            (_, _, Some(n)) if n.is_finite() => Field::Number(n.to_string()),
            _ => Field::Text(value.to_string()),
        };
        self.0.push((key.as_str().to_string(), field));
        Ok(())
    }
}

fn render(format: LogFormat, line: &Line) -> String {
    match format {
        LogFormat::Text => {
            let mut text = format!(
                "[{} {:<5} {}] {}",
                line.time, line.level, line.target, line.message
            );
            // A field the message already says as one of its words is not said twice (the
            // access line's method, route and status).
            let said: Vec<&str> = line.message.split(' ').collect();
            for (key, value) in &line.fields {
                let shown = match value {
                    Field::Number(n) | Field::Text(n) => n,
                };
                if said.contains(&shown.as_str()) {
                    continue;
                }
                match value {
                    Field::Number(n) => text.push_str(&format!(" {key}={n}")),
                    // Quoted when it holds anything but visible characters, so that no value
                    // can split or forge a line.
                    Field::Text(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()) => {
                        text.push_str(&format!(" {key}={t}"))
                    }
                    Field::Text(t) => text.push_str(&format!(" {key}={t:?}")),
                }
            }
            text
        }
        LogFormat::Json => {
            // Written by hand so the fixed keys lead, in this order, as collectors show them.
            let text = |t: &str| serde_json::Value::from(t).to_string();
            let mut json = format!(
                "{{\"time\":{},\"level\":{},\"target\":{},\"message\":{}",
                text(&line.time),
                text(line.level.as_str()),
                text(&line.target),
                text(&line.message)
            );
            for (key, value) in &line.fields {
                let value = match value {
                    Field::Number(n) => n.clone(),
                    Field::Text(t) => text(t),
                };
                json.push_str(&format!(",{}:{value}", text(key)));
            }
            json.push('}');
            json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fields: Vec<(&str, Field)>) -> Line {
        Line {
            time: "2026-11-30T12:00:00.000Z".into(),
            level: log::Level::Info,
            target: "access".into(),
            message: "GET /sessions/current 200".into(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    #[test]
    fn json_lines_keep_numbers_as_numbers_and_escape_text() {
        let json = render(
            LogFormat::Json,
            &line(vec![
                ("status", Field::Number("200".into())),
                ("duration_ms", Field::Number("0.42".into())),
                ("client_ip", Field::Text("127.0.0.1 \"quoted\"\n".into())),
            ]),
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["duration_ms"], 0.42);
        assert_eq!(parsed["client_ip"], "127.0.0.1 \"quoted\"\n");
        assert_eq!(parsed["level"], "INFO");
        assert_eq!(parsed["message"], "GET /sessions/current 200");
        assert!(!json.contains('\n'));
    }

    #[test]
    fn text_lines_read_as_before_with_fields_after_the_message() {
        let text = render(
            LogFormat::Text,
            &line(vec![
                ("status", Field::Number("200".into())),
                ("client_ip", Field::Text("127.0.0.1".into())),
                ("session", Field::Text("-".into())),
                ("user_agent", Field::Text("curl 8".into())),
            ]),
        );
        assert_eq!(
            text,
            "[2026-11-30T12:00:00.000Z INFO  access] GET /sessions/current 200 client_ip=127.0.0.1 session=- user_agent=\"curl 8\""
        );
    }
}
