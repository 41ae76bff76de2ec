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
//! lapses (receivers deduplicate by `webhook-id`).
//!
//! With `SESSIOND_DATA_DIR` every delivery is kept in an [`outbox`] on disk before the change
//! it tells of is acknowledged, so a crash loses none. For any one session, a delivery waits
//! until the session's earlier one has ended (delivered or abandoned): `session-created`
//! always arrives before `session-ended`, also across retries and restarts. A stop takes at
//! most a few seconds, whatever the receiver does: attempts still in flight then are simply
//! made again after the restart.

mod claims;
mod outbox;
mod signing;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

pub use claims::{Claim, Claims, LocalClaims, Progress, RedisClaims};
pub use signing::{WebhookSecret, MIN_SECRET_BYTES};

use crate::events::{Change, Event, Hub};
use crate::metrics::{DeliveryResult, Metrics, Persisted};
use outbox::{Kept, Outbox};

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
/// How long a node's claim on a delivery lasts beyond an attempt's due time without being
/// renewed: longer than an attempt can take. A failed attempt holds the claim through its
/// backoff, so no node takes a delivery over while its holder waits to retry.
const LEASE: Duration = Duration::from_secs(TIMEOUT.as_secs() + 50);
/// How often a node looks again at a delivery another node holds: once that one is done, the
/// queue slot is free again.
const RECHECK: Duration = Duration::from_secs(10);
/// The file a graceful stop of an earlier version saved queued deliveries to.
const SAVED: &str = "webhooks.json";
/// How long a stop waits for attempts in flight.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Events the feed keeps in the outbox with one flush, at most.
const FEED_BATCH: usize = 1024;

/// One event to deliver.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Delivery {
    id: String,
    /// The session it is about, whose deliveries go out in order.
    #[serde(default)]
    session: Option<String>,
    body: String,
    /// Attempts made so far.
    attempts: u32,
    /// When the first attempt was made (Unix ms), or 0 before it.
    first_attempt_ms: u64,
}

struct Queue {
    due: BTreeMap<(Instant, u64), Delivery>,
    next: u64,
    /// Per session with a delivery under way: the deliveries waiting for it to end.
    behind: HashMap<String, VecDeque<Delivery>>,
    /// Deliveries held: due, under way or waiting.
    held: usize,
}

impl Queue {
    fn new() -> Self {
        Queue {
            due: BTreeMap::new(),
            next: 0,
            behind: HashMap::new(),
            held: 0,
        }
    }

    fn insert(&mut self, delivery: Delivery, at: Instant) {
        let n = self.next;
        self.next += 1;
        self.due.insert((at, n), delivery);
    }
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
    outbox: Option<Outbox>,
}

/// The node's webhook sender.
pub struct Webhooks {
    shared: Arc<Shared>,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
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
    /// Starts sending every event of `hub` to `url`; with `data_dir`, keeps deliveries in the
    /// outbox there and resumes those that never ended.
    pub fn start(
        url: String,
        secret: WebhookSecret,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        claims: Box<dyn Claims>,
        data_dir: Option<&Path>,
    ) -> Result<Arc<Self>, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let (outbox, resumed) = match data_dir {
            Some(dir) => {
                let (outbox, resumed) = Outbox::open(dir)?;
                (Some(outbox), resumed)
            }
            None => (None, Vec::new()),
        };
        let shared = Arc::new(Shared {
            url,
            secret,
            queue: Mutex::new(Queue::new()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            metrics,
            claims,
            agent,
            outbox,
        });
        if !resumed.is_empty() {
            log::info!("resuming {} webhook deliveries", resumed.len());
        }
        for kept in resumed {
            shared.offer(Delivery::of(kept));
        }
        if let Some(dir) = data_dir {
            shared.resume_saved(&dir.join(SAVED));
        }
        let workers = (0..WORKERS)
            .map(|n| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("webhook-{n}"))
                    .spawn(move || shared.work())
                    .expect("a webhook thread starts")
            })
            .collect();
        // Events are taken from the hub on a thread of their own too: serialising them costs
        // the request workers nothing.
        if let Some(live) = hub.join(None).map(|replay| replay.live) {
            let shared = shared.clone();
            thread::Builder::new()
                .name("webhook-feed".into())
                .spawn(move || shared.feed(live, &hub))
                .expect("the webhook feed thread starts");
        }
        Ok(Arc::new(Webhooks {
            shared,
            workers: Mutex::new(workers),
        }))
    }

    /// Stops delivering: waits a little for attempts in flight (a receiver that hangs is not
    /// waited for: with an outbox, those are made again after the restart), and gives up this
    /// node's claims so that other nodes deliver at once.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        let deadline = Instant::now() + STOP_WAIT;
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        while Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()) {
            thread::sleep(Duration::from_millis(20));
        }
        for worker in workers.drain(..).filter(|w| w.is_finished()) {
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
        if let Some(outbox) = &self.shared.outbox {
            outbox.flush();
        }
    }
}

impl Delivery {
    fn of(kept: Kept) -> Self {
        Delivery {
            id: kept.id,
            session: kept.session,
            body: kept.body,
            attempts: 0,
            first_attempt_ms: 0,
        }
    }

    fn of_event(event: &Event) -> Self {
        let session = match &event.change {
            Change::Created(created) => Some(created.id),
            Change::Ended(ended) => Some(ended.id),
            Change::Amended(amended) => Some(amended.id),
            Change::Denied(_) => None,
        };
        Delivery {
            id: event.id.to_string(),
            session: session.map(|id| id.to_string()),
            body: event.json().to_string(),
            attempts: 0,
            first_attempt_ms: 0,
        }
    }

    fn kept(&self) -> Kept {
        Kept {
            id: self.id.clone(),
            session: self.session.clone(),
            body: self.body.clone(),
        }
    }
}

impl Shared {
    /// Whether the queue has room for one more.
    fn has_room(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            < QUEUE_CAPACITY
    }

    /// Takes events from the hub until it closes or the node stops: keeps each batch in the
    /// outbox (one flush) and says so to the hub, then queues them. While the queue is full,
    /// events are dropped and counted, unread.
    fn feed(&self, mut live: broadcast::Receiver<Arc<Event>>, hub: &Hub) {
        let mut batch: Vec<Arc<Event>> = Vec::new();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            match live.blocking_recv() {
                Ok(event) => batch.push(event),
                Err(RecvError::Lagged(missed)) => {
                    self.metrics.webhook(DeliveryResult::Dropped, missed)
                }
                Err(RecvError::Closed) => return,
            }
            while batch.len() < FEED_BATCH {
                match live.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(TryRecvError::Lagged(missed)) => {
                        self.metrics.webhook(DeliveryResult::Dropped, missed)
                    }
                    Err(_) => break,
                }
            }
            let newest = hub.last().unwrap_or_default();
            if !self.has_room() {
                self.metrics
                    .webhook(DeliveryResult::Dropped, batch.len() as u64);
                batch.clear();
                hub.mark_kept(newest);
                continue;
            }
            let deliveries: Vec<Delivery> =
                batch.drain(..).map(|e| Delivery::of_event(&e)).collect();
            if let Some(outbox) = &self.outbox {
                let kept: Vec<Kept> = deliveries.iter().map(Delivery::kept).collect();
                if let Err(e) = outbox.queued(&kept) {
                    log::error!("cannot keep webhook deliveries in the outbox: {e}");
                    self.metrics.persistence_failed(Persisted::Outbox);
                }
            }
            // Missed events are counted as dropped: nothing waits for them.
            hub.mark_kept(newest);
            for delivery in deliveries {
                self.offer(delivery);
            }
        }
    }

    /// Reads back what a graceful stop of an earlier version saved, and removes the file.
    fn resume_saved(&self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        match serde_json::from_str::<Vec<Delivery>>(&text) {
            Ok(saved) => {
                log::info!(
                    "resuming {} webhook deliveries saved at a stop",
                    saved.len()
                );
                if let Some(outbox) = &self.outbox {
                    let kept: Vec<Kept> = saved.iter().map(Delivery::kept).collect();
                    if let Err(e) = outbox.queued(&kept) {
                        log::error!("cannot keep webhook deliveries in the outbox: {e}");
                    }
                }
                for delivery in saved {
                    self.offer(delivery);
                }
            }
            Err(e) => log::warn!(
                "the saved webhook deliveries in {} are unreadable: {e}",
                path.display()
            ),
        }
        let _ = std::fs::remove_file(path);
    }

    /// Queues a new delivery now, behind its session's delivery under way if there is one;
    /// drops it (counted) when the queue is full. Never blocks on the receiver.
    fn offer(&self, delivery: Delivery) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.held >= QUEUE_CAPACITY {
            drop(queue);
            self.metrics.webhook(DeliveryResult::Dropped, 1);
            if let Some(outbox) = &self.outbox {
                outbox.ended(&delivery.id);
            }
            return;
        }
        queue.held += 1;
        self.metrics.webhook_queue.set(queue.held as i64);
        if let Some(session) = &delivery.session {
            if let Some(waiting) = queue.behind.get_mut(session) {
                waiting.push_back(delivery);
                return;
            }
            queue.behind.insert(session.clone(), VecDeque::new());
        }
        queue.insert(delivery, Instant::now());
        drop(queue);
        self.wake.notify_one();
    }

    /// Puts a delivery under way back in the queue, due at `at`.
    fn schedule(&self, delivery: Delivery, at: Instant) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.insert(delivery, at);
        drop(queue);
        self.wake.notify_one();
    }

    /// A delivery has ended (delivered, abandoned, or done by another node): the next one of
    /// its session may go.
    fn finish(&self, delivery: &Delivery) {
        if let Some(outbox) = &self.outbox {
            outbox.ended(&delivery.id);
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.held -= 1;
        self.metrics.webhook_queue.set(queue.held as i64);
        let Some(session) = &delivery.session else {
            return;
        };
        let next = queue.behind.get_mut(session).and_then(VecDeque::pop_front);
        match next {
            Some(next) => {
                queue.insert(next, Instant::now());
                drop(queue);
                self.wake.notify_one();
            }
            None => {
                queue.behind.remove(session);
            }
        }
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
                            break queue.due.remove(&key).expect("the key was just seen");
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
            Claim::Done => return self.finish(&delivery),
            // Another node delivers it, or who does cannot be known now; look again later, in
            // case that node is gone.
            Claim::Others | Claim::Unknown => {
                return self.schedule(delivery, Instant::now() + RECHECK)
            }
            Claim::Mine(progress) => {
                // Taken over from a node that made attempts already: go on with its backoff.
                if progress.attempts > delivery.attempts {
                    delivery.attempts = progress.attempts;
                    delivery.first_attempt_ms = progress.first_attempt_ms;
                    let wait = progress.due_ms.saturating_sub(unix_ms());
                    if wait > 0 {
                        let due = Instant::now() + Duration::from_millis(wait);
                        return self.schedule(delivery, due);
                    }
                }
            }
        }
        if delivery.first_attempt_ms == 0 {
            delivery.first_attempt_ms = unix_ms();
        }
        delivery.attempts += 1;
        if self.send(&delivery) {
            self.metrics.webhook(DeliveryResult::Delivered, 1);
            self.claims.settle(&delivery.id);
            return self.finish(&delivery);
        }
        let elapsed = unix_ms().saturating_sub(delivery.first_attempt_ms);
        if Duration::from_millis(elapsed) >= RETRY_FOR {
            self.metrics.webhook(DeliveryResult::Abandoned, 1);
            log::warn!(
                "webhook delivery of event {} abandoned after {} attempts over an hour",
                delivery.id,
                delivery.attempts
            );
            self.claims.settle(&delivery.id);
            return self.finish(&delivery);
        }
        self.metrics.webhook(DeliveryResult::Failed, 1);
        let delay = backoff(delivery.attempts);
        let progress = Progress {
            attempts: delivery.attempts,
            first_attempt_ms: delivery.first_attempt_ms,
            due_ms: unix_ms() + delay.as_millis() as u64,
        };
        self.claims.progress(&delivery.id, progress, LEASE);
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
            queue: Mutex::new(Queue::new()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            metrics: metrics.clone(),
            claims: Box::new(LocalClaims),
            agent: ureq::Agent::new_with_defaults(),
            outbox: None,
        };
        for n in 0..QUEUE_CAPACITY + 5 {
            shared.offer(Delivery {
                id: n.to_string(),
                session: None,
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
