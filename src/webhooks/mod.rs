//! Webhooks: every event `POST`ed as JSON to `SESSIOND_WEBHOOK_URL`, signed as the Standard
//! Webhooks specification says (`webhook-id` = the event id, `webhook-timestamp`,
//! `webhook-signature`).
//!
//! Deliveries wait in a bounded queue served by a few threads of their own, so a receiver that
//! hangs, fails or refuses connections costs logins and validations nothing: when the queue is
//! full a new event is dropped and counted. A non-2xx answer or a timeout (10 s) is retried
//! with exponential backoff and jitter (the first retry within 10 s) for an hour. With several
//! nodes on Redis, every node sees every event and each delivery is claimed in Redis for a
//! lease: one node delivers it, and if that node dies another takes over once the lease
//! lapses (receivers deduplicate by `webhook-id`). A graceful stop with `SESSIOND_DATA_DIR`
//! saves what is still queued, and the next start resumes it.

mod claims;
mod signing;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

pub use claims::{Claim, Claims, LocalClaims, RedisClaims};
pub use signing::{WebhookSecret, MIN_SECRET_BYTES};

use crate::events::Hub;
use crate::metrics::Metrics;

/// Deliveries a node holds at most.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Threads delivering at once: a receiver that hangs holds one each, for [`TIMEOUT`].
const WORKERS: usize = 4;
/// How long a delivery waits for the receiver's answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing delivery is retried.
pub const RETRY_FOR: Duration = Duration::from_secs(3600);
/// The first retry's delay (before jitter); each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a node's claim on a delivery lasts without being renewed.
const LEASE: Duration = Duration::from_secs(60);
/// How often a node looks again at a delivery another node holds: once that one is done, the
/// queue slot is free again.
const RECHECK: Duration = Duration::from_secs(10);
/// How long the feed rests while the queue is full.
const FULL_PAUSE: Duration = Duration::from_millis(100);
/// The file a graceful stop saves queued deliveries to, in the data directory.
const SAVED: &str = "webhooks.json";

/// One event to deliver.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Delivery {
    id: String,
    body: String,
    /// Attempts made so far.
    attempts: u32,
    /// When the first attempt was made (Unix ms), or 0 before it.
    first_attempt_ms: u64,
}

struct Queue {
    due: BTreeMap<(Instant, u64), Delivery>,
    next: u64,
}

struct Shared {
    url: String,
    secret: WebhookSecret,
    queue: Mutex<Queue>,
    wake: Condvar,
    stopping: AtomicBool,
    metrics: Arc<Metrics>,
    claims: Box<dyn Claims>,
    agent: ureq::Agent,
}

/// The node's webhook sender.
pub struct Webhooks {
    shared: Arc<Shared>,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
    saved_to: Option<PathBuf>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The delay before retry `attempt` (1 = the first retry): exponential, capped, with up to
/// 20% jitter either way so that many failing deliveries do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    let base = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    let mut noise = [0u8; 2];
    let _ = getrandom::fill(&mut noise);
    let jitter = f64::from(u16::from_le_bytes(noise)) / f64::from(u16::MAX) * 0.4 + 0.8;
    base.mul_f64(jitter)
}

impl Webhooks {
    /// Starts sending every event of `hub` to `url`; resumes deliveries a graceful stop saved
    /// in `data_dir`.
    pub fn start(
        url: String,
        secret: WebhookSecret,
        hub: &Hub,
        metrics: Arc<Metrics>,
        claims: Box<dyn Claims>,
        data_dir: Option<&Path>,
    ) -> Arc<Self> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let webhooks = Arc::new(Webhooks {
            shared: Arc::new(Shared {
                url,
                secret,
                queue: Mutex::new(Queue {
                    due: BTreeMap::new(),
                    next: 0,
                }),
                wake: Condvar::new(),
                stopping: AtomicBool::new(false),
                metrics,
                claims,
                agent,
            }),
            workers: Mutex::new(Vec::new()),
            saved_to: data_dir.map(|dir| dir.join(SAVED)),
        });
        if let Some(path) = &webhooks.saved_to {
            webhooks.resume(path);
        }
        let workers = (0..WORKERS)
            .map(|n| {
                let shared = webhooks.shared.clone();
                thread::Builder::new()
                    .name(format!("webhook-{n}"))
                    .spawn(move || shared.work())
                    .expect("a webhook thread starts")
            })
            .collect();
        *webhooks
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = workers;
        // Events are taken from the hub on a thread of their own too: serialising them costs
        // the request workers nothing. While the queue is full the thread rests, and the events
        // it missed meanwhile are counted as dropped in one step (the feed reports how many).
        if let Some(mut live) = hub.join(None).map(|replay| replay.live) {
            let shared = webhooks.shared.clone();
            thread::Builder::new()
                .name("webhook-feed".into())
                .spawn(move || loop {
                    if shared.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if !shared.has_room() {
                        thread::sleep(FULL_PAUSE);
                        continue;
                    }
                    match live.blocking_recv() {
                        Ok(event) => shared.offer(Delivery {
                            id: event.id.to_string(),
                            body: event.json().to_string(),
                            attempts: 0,
                            first_attempt_ms: 0,
                        }),
                        Err(RecvError::Lagged(missed)) => shared.metrics.webhook("dropped", missed),
                        Err(RecvError::Closed) => return,
                    }
                })
                .expect("the webhook feed thread starts");
        }
        webhooks
    }

    /// Reads back what the last graceful stop saved, and removes the file.
    fn resume(&self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        match serde_json::from_str::<Vec<Delivery>>(&text) {
            Ok(saved) => {
                log::info!(
                    "resuming {} webhook deliveries saved at the last stop",
                    saved.len()
                );
                for delivery in saved {
                    self.shared.offer(delivery);
                }
            }
            Err(e) => log::warn!(
                "the saved webhook deliveries in {} are unreadable: {e}",
                path.display()
            ),
        }
        let _ = std::fs::remove_file(path);
    }

    /// Stops delivering (waiting for attempts in flight), gives up this node's claims so that
    /// other nodes deliver at once, and, with a data directory, saves what is still queued for
    /// the next start.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for worker in self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = worker.join();
        }
        let queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for delivery in queue.due.values() {
            self.shared.claims.release(&delivery.id);
        }
        let Some(path) = &self.saved_to else { return };
        if queue.due.is_empty() {
            return;
        }
        let saved: Vec<&Delivery> = queue.due.values().collect();
        let json = serde_json::to_string(&saved).expect("deliveries serialise");
        match write_private(path, &json) {
            Ok(()) => log::info!(
                "saved {} webhook deliveries to {}",
                saved.len(),
                path.display()
            ),
            Err(e) => log::error!(
                "could not save webhook deliveries to {}: {e}",
                path.display()
            ),
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

impl Shared {
    /// Whether the queue has room for one more.
    fn has_room(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due
            .len()
            < QUEUE_CAPACITY
    }

    /// Queues a delivery now; drops it (counted) when the queue is full. Never blocks on the
    /// receiver.
    fn offer(&self, delivery: Delivery) {
        self.schedule(delivery, Instant::now());
    }

    fn schedule(&self, delivery: Delivery, at: Instant) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.due.len() >= QUEUE_CAPACITY {
            drop(queue);
            self.metrics.webhook("dropped", 1);
            return;
        }
        let n = queue.next;
        queue.next += 1;
        queue.due.insert((at, n), delivery);
        self.metrics.webhook_queue.set(queue.due.len() as i64);
        drop(queue);
        self.wake.notify_one();
    }

    /// A worker: takes the next due delivery, waiting until one is due.
    fn work(&self) {
        loop {
            let delivery = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = Instant::now();
                    match queue.due.keys().next().copied() {
                        Some(key) if key.0 <= now => {
                            let delivery = queue.due.remove(&key).expect("the key was just seen");
                            self.metrics.webhook_queue.set(queue.due.len() as i64);
                            break delivery;
                        }
                        Some(key) => {
                            queue = self
                                .wake
                                .wait_timeout(queue, key.0 - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        None => {
                            queue = self
                                .wake
                                .wait(queue)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            };
            self.attempt(delivery);
        }
    }

    fn attempt(&self, mut delivery: Delivery) {
        match self.claims.claim(&delivery.id, LEASE) {
            Claim::Done => return,
            // Another node delivers it; look again later, in case that node is gone.
            Claim::Others => return self.schedule(delivery, Instant::now() + RECHECK),
            Claim::Mine => {}
        }
        if delivery.first_attempt_ms == 0 {
            delivery.first_attempt_ms = unix_ms();
        }
        delivery.attempts += 1;
        if self.send(&delivery) {
            self.metrics.webhook("delivered", 1);
            self.claims.settle(&delivery.id);
            return;
        }
        let elapsed = unix_ms().saturating_sub(delivery.first_attempt_ms);
        if Duration::from_millis(elapsed) >= RETRY_FOR {
            self.metrics.webhook("abandoned", 1);
            log::warn!(
                "webhook delivery of event {} abandoned after {} attempts over an hour",
                delivery.id,
                delivery.attempts
            );
            self.claims.settle(&delivery.id);
            return;
        }
        self.metrics.webhook("failed", 1);
        let delay = backoff(delivery.attempts);
        self.schedule(delivery, Instant::now() + delay);
    }

    /// One POST; whether the receiver took it (a 2xx answer).
    fn send(&self, delivery: &Delivery) -> bool {
        let timestamp = unix_ms() / 1000;
        let signature = self.secret.sign(&delivery.id, timestamp, &delivery.body);
        let answer = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", &timestamp.to_string())
            .header("webhook-signature", &signature)
            .send(delivery.body.as_bytes());
        match answer {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                log::warn!(
                    "webhook delivery of event {} answered {}",
                    delivery.id,
                    response.status()
                );
                false
            }
            Err(e) => {
                log::warn!("webhook delivery of event {} failed: {e}", delivery.id);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_new_deliveries_and_counts_them() {
        let metrics = Arc::new(Metrics::new());
        let shared = Shared {
            url: "http://127.0.0.1:9/".into(),
            secret: WebhookSecret::parse(&format!("whsec_{}", "A".repeat(44))).unwrap(),
            queue: Mutex::new(Queue {
                due: BTreeMap::new(),
                next: 0,
            }),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            metrics: metrics.clone(),
            claims: Box::new(LocalClaims),
            agent: ureq::Agent::new_with_defaults(),
        };
        for n in 0..QUEUE_CAPACITY + 5 {
            shared.offer(Delivery {
                id: n.to_string(),
                body: "{}".into(),
                attempts: 0,
                first_attempt_ms: 0,
            });
        }
        assert_eq!(metrics.webhook_queue.get(), QUEUE_CAPACITY as i64);
        assert_eq!(
            metrics
                .webhook_deliveries
                .with_label_values(&["dropped"])
                .get(),
            5
        );
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_start_within_10_seconds() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
        }
        assert!(backoff(3) >= Duration::from_secs(16));
        assert!(backoff(40) <= MAX_BACKOFF.mul_f64(1.2));
        // Enough attempts fit in an hour that retrying goes on for at least that long.
        let total: Duration = (1..=12)
            .map(|n| FIRST_BACKOFF.saturating_mul(1 << (n - 1)).min(MAX_BACKOFF))
            .sum();
        assert!(total >= RETRY_FOR.mul_f64(0.8), "{total:?}");
    }
}
