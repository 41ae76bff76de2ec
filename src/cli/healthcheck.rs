//! `sessiond healthcheck`: a probe for container health checks that needs no shell tool.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// Probes `/healthz` under the base URL `base` (by default the address sessiond binds),
/// without any shell tool, for container health checks.
pub fn healthcheck(base: Option<String>, bind: SocketAddr) -> ExitCode {
    let base = base.unwrap_or_else(|| {
        let mut address = bind;
        if address.ip().is_unspecified() {
            address.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    });
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(&url).call() {
        Ok(response) if response.status() == 200 => {
            println!("healthy: {url}");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
