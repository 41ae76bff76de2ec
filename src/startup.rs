//! The application: settings in, a listening server out.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::AppExt;

use crate::config::{ServiceKeys, Settings};
use crate::domain::{ConcurrentSessions, Millis};
use crate::error::{json_error, path_error, query_error};
use crate::routes::{self, fallback::RouteTable};
use crate::store::{MemoryStore, SessionStore, SharedStore};

/// How often expired sessions are swept out of memory. They stop counting the instant they
/// expire; this only frees their memory.
pub const REAP_INTERVAL: Duration = Duration::from_secs(10);

/// What every handler can reach.
pub struct AppState {
    pub store: SharedStore,
    pub service_keys: ServiceKeys,
    pub policy: ConcurrentSessions,
    pub server_name: String,
    pub idle_timeout: u32,
    pub openapi_json: String,
    pub routes: RouteTable,
}

pub struct Application {
    server: Server,
    address: SocketAddr,
    store: Arc<MemoryStore>,
    demo_url: Option<String>,
}

impl Application {
    /// Binds `settings.bind` (port 0 picks a free port) and prepares the server; it serves once
    /// [`Application::run_until_stopped`] is awaited. Must be called inside an actix system.
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.bind)?;
        let address = listener.local_addr()?;
        let service_keys = settings.service_keys.clone().unwrap_or_else(|| {
            let (keys, key) = ServiceKeys::generate();
            eprintln!(
                "WARNING: SESSIOND_SERVICE_KEYS is not set, so this service key was generated \
                 for local use only. It is printed this once:\n\n    X-Service-Key: {key}\n"
            );
            keys
        });
        let store = Arc::new(MemoryStore::new(settings.max_lifetime));
        let demo_url = match settings.demo {
            false => None,
            true => {
                let token = crate::demo::seed(&*store)
                    .await
                    .map_err(std::io::Error::other)?;
                Some(format!("{}/#token={token}", browsable(address)))
            }
        };
        let spec = crate::openapi::spec();
        let state = web::Data::new(AppState {
            store: store.clone(),
            service_keys,
            policy: settings.concurrent_sessions,
            server_name: settings.server_name.clone(),
            idle_timeout: settings.idle_timeout,
            openapi_json: crate::openapi::spec_json(),
            routes: RouteTable::from_spec(&spec),
        });
        let max_body = settings.max_body as usize;
        let server = HttpServer::new(move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .configure(routes::configure)
                .split_for_parts();
            app.app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .app_data(web::PathConfig::default().error_handler(path_error))
                .configure(routes::console::configure)
                .default_service(web::to(routes::fallback::fallback))
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
        })
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        spawn_reaper(store.clone());
        Ok(Application {
            server,
            address,
            store,
            demo_url,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// With `--demo`: the console URL, signed in as the demo administrator.
    pub fn demo_url(&self) -> Option<&str> {
        self.demo_url.as_deref()
    }

    /// The store, for tests that look inside it.
    pub fn memory_store(&self) -> Arc<MemoryStore> {
        self.store.clone()
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// An address a browser on this machine can open, for a server bound to any interface.
fn browsable(address: SocketAddr) -> String {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{address}")
}

fn spawn_reaper(store: Arc<MemoryStore>) {
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(REAP_INTERVAL);
        loop {
            every.tick().await;
            match store.reap(Millis::now()).await {
                Ok(0) => {}
                Ok(n) => log::debug!("reaped {n} expired sessions"),
                Err(e) => log::warn!("reaping expired sessions failed: {e}"),
            }
        }
    });
}
