//! Prometheus metrics, each application with its own registry (no process-global state, so
//! several servers can run side by side in one test process).

use std::collections::HashMap;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::domain::EndReason;
use crate::events::EventId;
use crate::store::{Census, Users};

/// The sessions at a glance, for the metrics.
#[derive(Clone, Debug, Default)]
pub struct Picture {
    /// Where the counts stand in the events.
    pub last_event_id: EventId,
    /// Live sessions by organisation, server and role `admin`.
    pub sessions: Vec<Census>,
    /// Distinct users with live sessions.
    pub users: Users,
    /// For each organisation with seats: how many are in use, of how many.
    pub seats: Vec<(String, u64, u32)>,
}

/// The most organisation/server pairs the active-session gauge has series for.
pub const MAX_CENSUS_SERIES: usize = 100;
/// The label of everything beyond the largest series.
const OTHER: &str = "(other)";

pub struct Metrics {
    registry: Registry,
    sessions_active: IntGaugeVec,
    seats_used: IntGaugeVec,
    seats_limit: IntGaugeVec,
    pub sessions_created: IntCounter,
    pub logins_denied: IntCounter,
    sessions_ended: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Webhook delivery attempts by result: `delivered`, `failed` (to be retried),
    /// `abandoned` (retried for an hour), `dropped` (the queue was full).
    pub webhook_deliveries: IntCounterVec,
    /// Webhook deliveries waiting in this node's queue.
    pub webhook_queue: IntGauge,
    /// Readers of `GET /events` connected to this node.
    pub event_streams: IntGauge,
    /// 1 when the last count of the sessions reached the store, else 0.
    pub store_up: IntGauge,
    /// When the last snapshot was written (Unix ms; 0: none yet), shown as its age.
    last_snapshot_ms: std::sync::atomic::AtomicU64,
    snapshot_age: prometheus::Gauge,
    /// Writes to the data directory that failed, by what was written.
    pub persistence_failures: IntCounterVec,
    /// The process's own figures (`process_*`: CPU, memory, open files), under their
    /// conventional names, without the `sessiond_` prefix.
    process: Registry,
}

/// What a failed write to the data directory was writing.
#[derive(Clone, Copy, Debug)]
pub enum Persisted {
    Snapshot,
    Journal,
    Outbox,
}

impl Persisted {
    pub const ALL: [Persisted; 3] = [Persisted::Snapshot, Persisted::Journal, Persisted::Outbox];

    pub fn label(self) -> &'static str {
        match self {
            Persisted::Snapshot => "snapshot",
            Persisted::Journal => "journal",
            Persisted::Outbox => "outbox",
        }
    }
}

/// What became of a webhook delivery (an attempt, or the delivery as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver took it.
    Delivered,
    /// An attempt failed; it will be retried.
    Failed,
    /// Retried for an hour without success.
    Abandoned,
    /// Never queued: the queue was full.
    Dropped,
}

impl DeliveryResult {
    pub const ALL: [DeliveryResult; 4] = [
        DeliveryResult::Delivered,
        DeliveryResult::Failed,
        DeliveryResult::Abandoned,
        DeliveryResult::Dropped,
    ];

    /// The `result` label it is counted under.
    pub fn label(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Failed => "failed",
            DeliveryResult::Abandoned => "abandoned",
            DeliveryResult::Dropped => "dropped",
        }
    }
}

/// Registers each metric as it is made.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        made: prometheus::Result<M>,
    ) -> M {
        let metric = made.expect("a valid metric");
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric names are distinct");
        metric
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }
}

impl Metrics {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("sessiond".into()), None).expect("a valid metric prefix");
        let r = Registrar(&registry);
        let sessions_ended = r.counters(
            "sessions_ended_total",
            "Sessions ended, by reason",
            &["reason"],
        );
        for reason in EndReason::ALL {
            sessions_ended.with_label_values(&[reason.as_str()]);
        }
        let webhook_deliveries = r.counters(
            "webhook_deliveries_total",
            "Webhook delivery attempts by result",
            &["result"],
        );
        for result in DeliveryResult::ALL {
            webhook_deliveries.with_label_values(&[result.label()]);
        }
        let persistence_failures = r.counters(
            "persistence_failures_total",
            "Writes to the data directory that failed, by what was written",
            &["what"],
        );
        for what in Persisted::ALL {
            persistence_failures.with_label_values(&[what.label()]);
        }
        let build_info = r.gauges(
            "build_info",
            "The running build: always 1, labelled with its version",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let process = Registry::new();
        process
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registers once");
        let http = ["method", "route", "status"];
        Metrics {
            process,
            store_up: r.add(IntGauge::new(
                "store_up",
                "1 when the last count of the sessions reached the store, else 0",
            )),
            last_snapshot_ms: std::sync::atomic::AtomicU64::new(0),
            snapshot_age: r.add(prometheus::Gauge::new(
                "snapshot_age_seconds",
                "Seconds since the last snapshot was written (with SESSIOND_DATA_DIR; -1 before the first)",
            )),
            persistence_failures,
            sessions_active: r.gauges(
                "sessions_active",
                "Live sessions by organisation and server name",
                &["organisation", "server_name"],
            ),
            seats_used: r.gauges(
                "organisation_seats_used",
                "Distinct users with live sessions, for organisations with seats",
                &["organisation"],
            ),
            seats_limit: r.gauges(
                "organisation_seats_limit",
                "The seats of each organisation that has a limit",
                &["organisation"],
            ),
            sessions_created: r.add(IntCounter::new(
                "sessions_created_total",
                "Sessions created",
            )),
            logins_denied: r.add(IntCounter::new(
                "logins_denied_total",
                "Logins refused by the concurrent-session policy",
            )),
            sessions_ended,
            http_requests: r.counters(
                "http_requests_total",
                "HTTP requests by route and status",
                &http,
            ),
            http_duration: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by route and status",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ]),
                &http,
            )),
            webhook_deliveries,
            webhook_queue: r.add(IntGauge::new(
                "webhook_queue_depth",
                "Webhook deliveries waiting in this node's queue",
            )),
            event_streams: r.add(IntGauge::new(
                "event_streams",
                "Readers of GET /events connected to this node",
            )),
            registry,
        }
    }

    /// A snapshot was written at `at` (now, or found at start-up).
    pub fn snapshot_written(&self, at: crate::domain::Millis) {
        self.last_snapshot_ms
            .store(at.0, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn persistence_failed(&self, what: Persisted) {
        self.persistence_failures
            .with_label_values(&[what.label()])
            .inc();
    }

    pub fn webhook(&self, result: DeliveryResult, count: u64) {
        self.webhook_deliveries
            .with_label_values(&[result.label()])
            .inc_by(count);
    }

    pub fn ended(&self, reason: EndReason, count: usize) {
        self.sessions_ended
            .with_label_values(&[reason.as_str()])
            .inc_by(count as u64);
    }

    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// The text exposition, with the active-session gauge set from `census`. Organisation and
    /// server names come from logins, so only the [`MAX_CENSUS_SERIES`] largest pairs get
    /// series of their own; the rest are summed under `(other)`.
    pub fn render(&self, picture: &Picture) -> String {
        self.sessions_active.reset();
        // The gauge's series are organisation and server, whatever the roles.
        let mut pairs: HashMap<(&str, &str), u64> = HashMap::new();
        for c in &picture.sessions {
            *pairs.entry((&c.organisation, &c.server_name)).or_default() += c.sessions;
        }
        let mut largest: Vec<((&str, &str), u64)> = pairs.into_iter().collect();
        largest.sort_unstable_by_key(|(_, sessions)| std::cmp::Reverse(*sessions));
        let rest: u64 = largest
            .iter()
            .skip(MAX_CENSUS_SERIES)
            .map(|(_, sessions)| sessions)
            .sum();
        for ((organisation, server_name), sessions) in largest.iter().take(MAX_CENSUS_SERIES) {
            self.sessions_active
                .with_label_values(&[organisation, server_name])
                .set(*sessions as i64);
        }
        if largest.len() > MAX_CENSUS_SERIES {
            self.sessions_active
                .with_label_values(&[OTHER, OTHER])
                .set(rest as i64);
        }
        // Only organisations named in SESSIOND_ORGANISATION_SEATS: a bounded set.
        for (organisation, used, limit) in &picture.seats {
            self.seats_used
                .with_label_values(&[organisation])
                .set(*used as i64);
            self.seats_limit
                .with_label_values(&[organisation])
                .set(i64::from(*limit));
        }
        let last = self
            .last_snapshot_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        self.snapshot_age.set(match last {
            0 => -1.0,
            at => crate::domain::Millis::now().0.saturating_sub(at) as f64 / 1000.0,
        });
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(
                &[self.registry.gather(), self.process.gather()].concat(),
                &mut out,
            )
            .expect("metrics always encode");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}
