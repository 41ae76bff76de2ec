//! The application: settings in, a listening server out. This module only wires: each step of
//! [`Application::build`] is a function below.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::AppExt;

use crate::audit::AuditLog;
use crate::config::{HeaderNames, Origins, ServiceKeys, Settings, StoreSetting};
use crate::domain::Millis;
use crate::domain::SessionId;
use crate::error::{json_error, path_error, query_error};
use crate::events::{Hub, Readers};
use crate::metrics::{Metrics, Persisted};
use crate::middleware::{
    access_log, head_as_get, header_limits, problem_bodies, request_id, REQUEST_ID,
};
use crate::persistence::journal::{self, Journal, JournalError};
use crate::persistence::recovery::{self, RecoveryError};
use crate::persistence::snapshot::{SnapshotError, SnapshotFile};
use crate::route_table::RouteTable;
use crate::routes;
use crate::service::Sessions;
use crate::state::AppState;
use crate::store::{MemoryStore, RedisLink, RedisOptions, RedisStore, SharedStore, StoreError};
use crate::webhooks::{Claims, LocalClaims, RedisClaims, WebhookSecret, Webhooks};

/// How often expired sessions are swept out of memory. They stop counting the instant they
/// expire; this only frees their memory.
pub const REAP_INTERVAL: Duration = Duration::from_secs(10);

/// Why the application could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address} (SESSIOND_BIND): {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} (SESSIOND_DATA_DIR)")]
    Snapshot(#[from] SnapshotError),
    #[error("{0} (SESSIOND_DATA_DIR)")]
    Journal(#[from] JournalError),
    #[error("{0} (SESSIOND_DATA_DIR)")]
    Recovery(#[from] RecoveryError),
    #[error("{0} (SESSIOND_DATA_DIR)")]
    DataDir(std::io::Error),
    #[error("the webhook outbox: {0} (SESSIOND_DATA_DIR)")]
    Outbox(String),
    #[error("cannot open the audit trail {0} (SESSIOND_DATA_DIR): {1}")]
    Audit(std::path::PathBuf, std::io::Error),
    #[error("SESSIOND_WEBHOOK_URL and SESSIOND_WEBHOOK_SECRET go together: {0} is set, the other is not")]
    HalfAWebhook(&'static str),
    #[error("cannot create the demo sessions: {0}")]
    Demo(String),
    #[error("cannot use Redis (SESSIOND_STORE): {0}")]
    Redis(StoreError),
    #[error("SESSIOND_SERVICE_KEYS is not set and sessiond listens on {0}, beyond this machine: set the keys app servers use (a generated key is only for loopback or --demo, since it would be printed to the log)")]
    NoServiceKeys(SocketAddr),
}

/// The memory store kept in a data directory: its snapshots and its journal.
#[derive(Clone)]
struct Persistence {
    memory: Arc<MemoryStore>,
    file: SnapshotFile,
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
}

impl Persistence {
    /// Writes a snapshot and removes the journal segments it holds; returns how many sessions
    /// it saved. Blocks for as long as that takes.
    fn snapshot(&self) -> Result<usize, String> {
        let written = self.write_snapshot();
        match &written {
            Ok(_) => self.metrics.snapshot_written(Millis::now()),
            Err(_) => self.metrics.persistence_failed(Persisted::Snapshot),
        }
        written
    }

    fn write_snapshot(&self) -> Result<usize, String> {
        let from = self.journal.rotate().map_err(|e| e.to_string())?;
        let saved = self.memory.export(Millis::now());
        self.file
            .save(&saved, from, Millis::now())
            .map_err(|e| e.to_string())?;
        self.journal
            .remove_before(from)
            .map_err(|e| e.to_string())?;
        Ok(saved.len())
    }
}

type Snapshots = Option<Persistence>;

pub struct Application {
    server: Server,
    address: SocketAddr,
    store: SharedStore,
    snapshots: Snapshots,
    demo_url: Option<String>,
    events: Arc<Hub>,
    webhooks: Option<Arc<Webhooks>>,
}

impl Application {
    /// Restores the last snapshot (with a data directory), binds `settings.bind` (port 0 picks a
    /// free port) and prepares the server; it serves once [`Application::run_until_stopped`] is
    /// awaited. Must be called inside an actix system.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        webhook_settings(&settings)?;
        let (listener, address) = bind(settings.bind)?;
        let metrics = Arc::new(Metrics::new());
        let (store, snapshots, redis) = open_store(&settings, &metrics).await?;
        let service_keys = service_keys(&settings, address)?;
        let state = app_state(&settings, store.clone(), service_keys, metrics)?;
        let demo_url = match settings.demo {
            true => Some(seed_demo(&state.sessions, address).await?),
            false => None,
        };
        let server =
            serve(listener, state.clone(), &settings).map_err(|source| StartupError::Bind {
                address: settings.bind,
                source,
            })?;
        let events = state.events.clone();
        let webhooks = start_webhooks(&settings, &state, redis)?;
        spawn_reaper(state);
        if let Some(persistence) = &snapshots {
            spawn_snapshots(persistence.clone(), settings.snapshot_interval);
            spawn_activity(persistence.memory.clone(), settings.activity_interval);
        }
        Ok(Application {
            server,
            address,
            store,
            snapshots,
            demo_url,
            events,
            webhooks,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server from elsewhere (a test that is done with it, say).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// With `--demo`: the console URL, signed in as the demo administrator.
    pub fn demo_url(&self) -> Option<&str> {
        self.demo_url.as_deref()
    }

    /// The store, for tests that look inside it.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    /// Serves until SIGINT or SIGTERM, finishes the requests in flight, then writes a last
    /// snapshot (with a data directory).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (server, events) = (self.server.handle(), self.events.clone());
        actix_web::rt::spawn(async move {
            stop_signal().await;
            log::info!("stopping: finishing the requests in flight");
            // Event streams never finish by themselves: end them, so the stop is prompt.
            events.close();
            server.stop(true).await;
        });
        self.server.await?;
        if let Some(webhooks) = &self.webhooks {
            webhooks.stop();
        }
        if let Some(persistence) = &self.snapshots {
            let started = std::time::Instant::now();
            let saved = persistence.snapshot();
            persistence.journal.stop();
            let saved = saved.map_err(std::io::Error::other)?;
            log::info!(
                "saved {saved} sessions to {} in {} ms",
                persistence.file.path().display(),
                started.elapsed().as_millis()
            );
        }
        Ok(())
    }
}

fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind { address, source };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// The store the settings name; for the memory store with a data directory, the memory store
/// restored from its snapshot with the file it is saved to; for Redis, the node's link to it.
async fn open_store(
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> Result<(SharedStore, Snapshots, Option<Arc<RedisLink>>), StartupError> {
    if let Some(dir) = &settings.data_dir {
        crate::persistence::prepare_dir(dir).map_err(StartupError::DataDir)?;
    }
    match &settings.store {
        StoreSetting::Memory => {
            let Some(dir) = &settings.data_dir else {
                return Ok((
                    Arc::new(MemoryStore::new(settings.max_lifetime)),
                    None,
                    None,
                ));
            };
            let persistence = restore(dir, settings, metrics.clone())?;
            Ok((persistence.memory.clone(), Some(persistence), None))
        }
        StoreSetting::Redis(url) => {
            if let Some(dir) = &settings.data_dir {
                log::info!(
                    "with the Redis store, {} keeps only this node's queued webhook deliveries; Redis keeps the sessions and the audit trail",
                    dir.display()
                );
            }
            let options = RedisOptions {
                activity_interval: Duration::from_secs(settings.activity_interval),
                min_replicas: settings.redis_min_replicas,
                ..RedisOptions::new(&settings.redis_prefix, settings.max_lifetime)
            };
            let redis = RedisStore::connect(url, options)
                .await
                .map_err(StartupError::Redis)?;
            let link = redis.link();
            Ok((redis, None, Some(link)))
        }
    }
}

/// The webhook's URL and secret: both, or neither.
fn webhook_settings(settings: &Settings) -> Result<Option<(String, WebhookSecret)>, StartupError> {
    match (&settings.webhook_url, &settings.webhook_secret) {
        (None, None) => Ok(None),
        (Some(url), Some(secret)) => Ok(Some((url.clone(), secret.clone()))),
        (Some(_), None) => Err(StartupError::HalfAWebhook("SESSIOND_WEBHOOK_URL")),
        (None, Some(_)) => Err(StartupError::HalfAWebhook("SESSIOND_WEBHOOK_SECRET")),
    }
}

/// Webhooks, when both their settings are given: on Redis, nodes share who delivers what.
fn start_webhooks(
    settings: &Settings,
    state: &AppState,
    redis: Option<Arc<RedisLink>>,
) -> Result<Option<Arc<Webhooks>>, StartupError> {
    let Some((url, secret)) = webhook_settings(settings)? else {
        return Ok(None);
    };
    let claims: Box<dyn Claims> = match redis {
        None => Box::new(LocalClaims),
        Some(link) => Box::new(RedisClaims::new(
            link,
            &settings.redis_prefix,
            SessionId::generate().to_string(),
        )),
    };
    Webhooks::start(
        url,
        secret,
        state.events.clone(),
        state.metrics.clone(),
        claims,
        settings.data_dir.as_deref(),
    )
    .map(Some)
    .map_err(StartupError::Outbox)
}

/// The configured service keys, or, for a server only this machine can reach (or a demo), one
/// generated and printed once. A printed key lands in logs, so it is never made for a server
/// that listens beyond loopback.
fn service_keys(settings: &Settings, address: SocketAddr) -> Result<ServiceKeys, StartupError> {
    if let Some(keys) = &settings.service_keys {
        return Ok(keys.clone());
    }
    if !(address.ip().is_loopback() || settings.demo) {
        return Err(StartupError::NoServiceKeys(address));
    }
    let (keys, key) = ServiceKeys::generate();
    eprintln!(
        "WARNING: SESSIOND_SERVICE_KEYS is not set, so this service key was generated for \
         local use only. It is printed this once:\n\n    X-Service-Key: {key}\n"
    );
    Ok(keys)
}

/// Seeds the demo sessions; returns the console URL signed in as the demo administrator.
async fn seed_demo(sessions: &Sessions, address: SocketAddr) -> Result<String, StartupError> {
    let token = crate::demo::seed(sessions)
        .await
        .map_err(StartupError::Demo)?;
    Ok(format!("{}/#token={token}", browsable(address)))
}

fn app_state(
    settings: &Settings,
    store: SharedStore,
    service_keys: ServiceKeys,
    metrics: Arc<Metrics>,
) -> Result<web::Data<AppState>, StartupError> {
    let capacity = settings.audit_capacity as usize;
    let audit = Arc::new(match (store.audit_trail(), &settings.data_dir) {
        (Some(trail), _) => AuditLog::in_store(capacity, trail),
        (None, Some(dir)) => AuditLog::in_dir(capacity, dir)
            .map_err(|e| StartupError::Audit(dir.join("audit.jsonl"), e))?,
        (None, None) => AuditLog::new(capacity),
    });
    // With webhooks and a data directory, a change is acknowledged once its event is in the
    // webhook outbox.
    let outbox = settings.webhook_url.is_some() && settings.data_dir.is_some();
    let events = Arc::new(match outbox {
        true => Hub::kept_on_disk(crate::events::HUB_CAPACITY),
        false => Hub::default(),
    });
    store.publish_events(events.clone());
    let readers = Arc::new(Readers::new(
        settings.max_event_streams as usize,
        metrics.event_streams.clone(),
    ));
    let spec = crate::openapi::spec();
    Ok(web::Data::new(AppState {
        sessions: Sessions::new(store, settings, audit.clone(), metrics.clone()),
        service_keys,
        metrics,
        audit,
        events,
        readers,
        openapi_json: crate::openapi::spec_json_for(&settings.login_overrides),
        routes: RouteTable::from_spec(&spec),
    }))
}

/// The HTTP server over `listener`, with every route, middleware and limit.
fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
) -> std::io::Result<Server> {
    let max_body = settings.max_body as usize;
    let cors_origins = settings.cors_origins.clone();
    let cors_headers = settings.cors_headers.clone();
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(routes::configure)
            .split_for_parts();
        // The last `wrap` is the outermost: the access log sees every final response,
        // problem bodies replace any plain error, including a CORS refusal.
        app.app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(json_error),
            )
            // Bodies read whole (not as JSON) have the same limit.
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(routes::console::configure)
            .configure(routes::docs::configure)
            .default_service(web::to(routes::fallback::fallback))
            .wrap(from_fn(head_as_get))
            .wrap(from_fn(header_limits))
            .wrap(Condition::new(
                cors_origins.is_some(),
                cors(cors_origins.as_ref(), cors_headers.as_ref()),
            ))
            // Responses carry tokens and personal data: no cache keeps them, unless a route
            // (the console's assets) says otherwise. Outside CORS, so preflights have them too.
            .wrap(
                DefaultHeaders::new()
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .wrap(from_fn(problem_bodies))
            .wrap(from_fn(access_log))
            .wrap(from_fn(request_id))
    })
    // Limits against slow and abusive clients, set deliberately rather than by default: a
    // request's head must arrive within 5 s (slow-loris), an idle keep-alive connection is
    // closed after 15 s, and a worker accepts at most this many connections (each idle one
    // costs a few kilobytes) before it stops accepting more.
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(2))
    .keep_alive(Duration::from_secs(15))
    .max_connections(25_000)
    .max_connection_rate(512)
    .backlog(2048)
    // Requests in flight get 5 s: with the webhooks' 2 s and the last snapshot, a stop fits in
    // the 10 s a container runtime waits before it kills.
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// The memory store as the snapshot in `dir` and the journal after it left it, journaling
/// every change from here on. A snapshot or journal that cannot be read stops start-up and is
/// left where it is.
fn restore(
    dir: &Path,
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> Result<Persistence, StartupError> {
    let started = std::time::Instant::now();
    let file = SnapshotFile::in_dir(dir)?;
    let recovered = recovery::recover(dir, &file)?;
    let store = Arc::new(MemoryStore::with_capacity(
        settings.max_lifetime,
        recovered.sessions.len(),
    ));
    let now = Millis::now();
    let restored = store.restore(&recovered.sessions, now);
    store.remember_stopped(&recovered.stopped, now);
    journal::remove_segments_before(dir, recovered.journal_from)?;
    let failures = metrics
        .persistence_failures
        .with_label_values(&[Persisted::Journal.label()]);
    let journal = Journal::open(
        dir,
        recovered.replayed.next_segment,
        settings.fsync,
        failures,
    )?;
    if let Some(at) = recovered.snapshot_written_at {
        metrics.snapshot_written(at);
    }
    store.journal_to(journal.clone());
    let snapshot = match recovered.snapshot_written_at {
        Some(at) => format!("a snapshot written {} s ago", now.seconds_since(at)),
        None => "no snapshot".into(),
    };
    let expired = recovered.sessions.len() - restored;
    // Freeing what was read takes a while at a million sessions: not on the way to serving.
    std::thread::spawn(move || drop(recovered.sessions));
    log::info!(
        "restored {restored} sessions from {} ({snapshot}, then {} journal records in {} segments) in {} ms; {expired} had expired meanwhile",
        dir.display(),
        recovered.replayed.records,
        recovered.replayed.segments,
        started.elapsed().as_millis(),
    );
    Ok(Persistence {
        memory: store,
        file,
        journal,
        metrics,
    })
}

/// The CORS policy for the allowed origins: the API's methods, and the headers a frontend
/// sends (`Authorization`, `Content-Type`, `Last-Event-ID` to resume the event stream) or
/// reads (`Location`, `WWW-Authenticate`).
/// Request headers a page may send besides sessiond's own: tracing (W3C, OpenTelemetry
/// baggage, Sentry), request ids, and what fetch libraries add.
const CORS_HEADERS: [&str; 7] = [
    "traceparent",
    "tracestate",
    "baggage",
    "sentry-trace",
    "x-request-id",
    "cache-control",
    "x-requested-with",
];

fn cors(origins: Option<&Origins>, extra: Option<&HeaderNames>) -> Cors {
    let own = [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::HeaderName::from_static("x-service-key"),
        header::HeaderName::from_static("last-event-id"),
    ];
    let more = CORS_HEADERS
        .iter()
        .map(|name| name.to_string())
        .chain(extra.map(|e| e.0.clone()).unwrap_or_default())
        .filter_map(|name| header::HeaderName::from_bytes(name.as_bytes()).ok());
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(own.into_iter().chain(more))
        .expose_headers([header::LOCATION, header::WWW_AUTHENTICATE, REQUEST_ID])
        .max_age(3600);
    for origin in origins.map(|o| o.0.as_slice()).unwrap_or_default() {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// An address a browser on this machine can open, for a server bound to any interface.
fn browsable(address: SocketAddr) -> String {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{address}")
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    let interrupt = Box::pin(async {
        let _ = actix_web::rt::signal::ctrl_c().await;
    });
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                let terminate = Box::pin(async move {
                    terminate.recv().await;
                });
                futures_util::future::select(interrupt, terminate).await;
            }
            Err(_) => interrupt.await,
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}

fn spawn_reaper(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(REAP_INTERVAL);
        loop {
            every.tick().await;
            if let Err(e) = state.sessions.reap(Millis::now()).await {
                log::warn!("reaping expired sessions failed: {e}");
            }
        }
    });
}

fn spawn_snapshots(persistence: Persistence, every_seconds: u64) {
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(Duration::from_secs(every_seconds));
        every.tick().await;
        loop {
            every.tick().await;
            let persistence = persistence.clone();
            // Encoding and disk I/O run off the event loop.
            match actix_web::rt::task::spawn_blocking(move || persistence.snapshot()).await {
                Ok(Ok(n)) => log::debug!("snapshot of {n} sessions written"),
                Ok(Err(e)) => log::error!("{e}"),
                Err(e) => log::error!("the snapshot task failed: {e}"),
            }
        }
    });
}

/// Journals session activity every `every_seconds`. Each round looks back one second further
/// than the last one began, so activity recorded while a round was reading is not missed.
fn spawn_activity(store: Arc<MemoryStore>, every_seconds: u64) {
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(Duration::from_secs(every_seconds));
        every.tick().await;
        let mut since = Millis::now();
        loop {
            every.tick().await;
            let (store, from) = (store.clone(), Millis(since.0.saturating_sub(1_000)));
            since = Millis::now();
            if let Err(e) =
                actix_web::rt::task::spawn_blocking(move || store.journal_activity(from)).await
            {
                log::error!("journaling activity failed: {e}");
            }
        }
    });
}
