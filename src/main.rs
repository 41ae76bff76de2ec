use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use sessiond::config::{describe_error, Cli, Command};
use sessiond::startup::Application;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("{}", describe_error(&e));
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Openapi) = cli.command {
        print!("{}", sessiond::openapi::spec_json());
        return ExitCode::SUCCESS;
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let bind = cli.settings.bind;
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(cli.settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("sessiond: cannot listen on {bind} (SESSIOND_BIND): {e}");
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
