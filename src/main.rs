use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use sessiond::cli::{
    describe_setting_error, healthcheck, run_sessions, unknown_variables,
    warn_of_secrets_in_arguments, Cli, Command,
};
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
        Some(Command::Sessions(args)) => return run_sessions(*args),
        None => warn_of_secrets_in_arguments(&["--service-keys"]),
    }
    sessiond::logging::init(cli.settings.log_format);
    // Said once it runs: a setting that stops start-up is told in one line of its own.
    let summary = cli.settings.summary();
    for name in unknown_variables() {
        log::warn!("{name} is set but no setting reads it (a typo?); it is ignored");
    }
    for contradiction in cli.settings.contradictions() {
        log::warn!("{contradiction}");
    }
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(cli.settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("sessiond: {e}");
                return ExitCode::FAILURE;
            }
        };
        log::info!("sessiond {} running: {summary}", env!("CARGO_PKG_VERSION"));
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
