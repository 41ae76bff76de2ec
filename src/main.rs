use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use sessiond::config::{describe_setting_error, Cli, Command};
use sessiond::startup::Application;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => match describe_setting_error(&e) {
            Some(line) => {
                eprintln!("{line}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    match cli.command {
        Some(Command::Openapi) => {
            print!("{}", sessiond::openapi::spec_json());
            return ExitCode::SUCCESS;
        }
        Some(Command::Healthcheck { url }) => return healthcheck(url, cli.settings.bind),
        Some(Command::Sessions(args)) => return sessiond::cli::run(args),
        None => {}
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(cli.settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("sessiond: {e}");
                return ExitCode::FAILURE;
            }
        };
        log::info!("sessiond listening on http://{}", app.address());
        if let Some(url) = app.demo_url() {
            println!("Session Management (demo, signed in as Ada Admin): {url}");
        }
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sessiond: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Probes `/healthz` without any shell tool, for container health checks.
fn healthcheck(url: Option<String>, bind: SocketAddr) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let mut address = bind;
        if address.ip().is_unspecified() {
            address.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}/healthz")
    });
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
