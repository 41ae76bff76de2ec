//! The HTTP side of the command-line client: requests with the right credential, and errors
//! that say what sessiond said.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command cannot be sent as given (exit 2).
    #[error("{0}")]
    Usage(String),
    /// sessiond answered with a problem.
    #[error("{title}: {detail}")]
    Refused { title: String, detail: String },
    /// sessiond could not be reached, or answered something unexpected.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
    service_key: Option<String>,
}

/// What a request is sent with.
#[derive(Clone, Copy)]
pub enum Credential {
    Bearer,
    ServiceKey,
    /// The token when there is one (an administrator, named in the audit trail), else the
    /// service key (an app server).
    Either,
}

impl ApiClient {
    pub fn new(base: &str, token: Option<String>, service_key: Option<String>) -> Self {
        // Never follow a redirect: it would carry the credential to wherever it points.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            agent,
            token,
            service_key,
        }
    }

    fn credential(&self, credential: Credential) -> Result<(&'static str, String), CliError> {
        match credential {
            Credential::Either if self.token.is_none() && self.service_key.is_none() => {
                Err(CliError::Usage(
                    "a token (SESSIOND_TOKEN or --token-file) or a service key \
                     (SESSIOND_SERVICE_KEY or --service-key-file) is needed"
                        .into(),
                ))
            }
            Credential::Either if self.token.is_some() => self.credential(Credential::Bearer),
            Credential::Either => self.credential(Credential::ServiceKey),
            Credential::Bearer => self
                .token
                .as_ref()
                .map(|t| ("Authorization", format!("Bearer {t}")))
                .ok_or_else(|| {
                    CliError::Usage(
                        "a token is needed: SESSIOND_TOKEN or --token-file (or --token)".into(),
                    )
                }),
            Credential::ServiceKey => self
                .service_key
                .as_ref()
                .map(|k| ("X-Service-Key", k.clone()))
                .ok_or_else(|| {
                    CliError::Usage(
                        "a service key is needed: SESSIOND_SERVICE_KEY or --service-key-file \
                         (or --service-key)"
                            .into(),
                    )
                }),
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        let (name, value) = self.credential(Credential::Bearer)?;
        let mut request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header(name, &value);
        for (k, v) in query {
            request = request.query(k, v);
        }
        self.finish(path, request.call())
    }

    pub fn delete(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.delete_as(Credential::Bearer, path, &[], body)
    }

    pub fn delete_as(
        &self,
        credential: Credential,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, CliError> {
        let (name, value) = self.credential(credential)?;
        let mut request = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header(name, &value)
            .force_send_body();
        for (k, v) in query {
            request = request.query(k, v);
        }
        self.finish(path, request.send_json(body))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.post_as(Credential::ServiceKey, path, body)
    }

    pub fn post_as(
        &self,
        credential: Credential,
        path: &str,
        body: &Value,
    ) -> Result<Value, CliError> {
        let (name, value) = self.credential(credential)?;
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header(name, &value);
        self.finish(path, request.send_json(body))
    }

    /// Reads the server-sent events of `path` (after `last_event_id`), giving each message's
    /// id and data to `each`, until the server ends the stream or the connection drops.
    pub fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
        last_event_id: Option<&str>,
        mut each: impl FnMut(&str, &str),
    ) -> Result<(), CliError> {
        let (name, value) = self.credential(Credential::Bearer)?;
        // No overall timeout: the stream is meant to last; the server's comments keep it busy.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut request = agent
            .get(format!("{}{path}", self.base))
            .header(name, &value);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        for (k, v) in query {
            request = request.query(k, v);
        }
        let response = request.call().map_err(|e| {
            CliError::Failed(format!("cannot reach sessiond at {}: {e}", self.base))
        })?;
        if !response.status().is_success() {
            return self.finish(path, Ok(response)).map(|_| ());
        }
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        let (mut id, mut data) = (String::new(), String::new());
        for line in std::io::BufRead::lines(reader) {
            let Ok(line) = line else { break };
            if let Some(value) = line.strip_prefix("id:") {
                id = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                each(&id, &data);
                data.clear();
            }
        }
        Ok(())
    }

    fn finish(
        &self,
        path: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, CliError> {
        let mut response = response.map_err(|e| {
            CliError::Failed(format!("cannot reach sessiond at {}: {e}", self.base))
        })?;
        let status = response.status();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                CliError::Failed(format!(
                    "{path} answered {status} with a body that is not JSON"
                ))
            })?
        };
        if status.is_success() {
            return Ok(body);
        }
        let field = |key: &str| body[key].as_str().map(str::to_string);
        Err(CliError::Refused {
            title: field("title").unwrap_or_else(|| status.to_string()),
            detail: field("detail").unwrap_or_default(),
        })
    }
}
