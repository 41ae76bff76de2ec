//! The node's event hub: the latest events in a bounded ring (what a reconnecting reader
//! resumes from) and a broadcast to every live reader.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{Change, Event, EventId};
use crate::domain::Millis;

/// Events kept for readers that resume: at least the 10,000 the contract promises.
pub const HUB_CAPACITY: usize = 16_384;

/// How far a live reader may fall behind before it is cut off (it can resume from the ring).
const READER_BACKLOG: usize = 4_096;

pub struct Hub {
    ring: Mutex<Ring>,
    capacity: usize,
    /// Whether anyone has ever read the events here (a stream, webhooks). Until then this
    /// node's own changes are not kept, nor a shared log read: nobody can hold an id to resume
    /// from, and a login pays nothing for events no one reads.
    wanted: AtomicBool,
    /// When events were first wanted (Unix ms): events from the shared log made since then
    /// (give or take a second of clock difference) reach readers that had joined.
    wanted_at: AtomicU64,
    /// Whether readers may join: at once when this node numbers its events; once the shared
    /// log's newest events are in the ring when they come from elsewhere (Redis).
    ready: watch::Sender<bool>,
    /// With a webhook outbox: the newest event it holds on disk (changes are acknowledged only
    /// once their events are there).
    kept: Option<watch::Sender<EventId>>,
    /// The newest event in the ring, for readers waiting to resume from one numbered elsewhere
    /// that has not reached this node yet.
    newest: watch::Sender<EventId>,
    /// Whether events are numbered elsewhere (a shared log) rather than here.
    shared: AtomicBool,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// The newest id numbered or passed on; before any, the hub's origin: for a hub that
    /// numbers its own events, the time it started at (so an id from an earlier run is never
    /// taken for one of this run's), else `0-0`.
    last: EventId,
    /// Whether `last` is still the origin, or every event since it is in the ring: a reader
    /// resuming from the origin then misses nothing.
    from_origin: Option<EventId>,
    /// The newest event that has left the ring.
    dropped: Option<EventId>,
    /// `None` once the hub is closed: readers' streams end.
    sender: Option<broadcast::Sender<Arc<Event>>>,
}

/// What a reader gets on joining: the events it missed and the live feed after them.
pub struct Replay {
    pub missed: Vec<Arc<Event>>,
    /// Whether it may have missed events: its id is not one this hub holds (it left the ring,
    /// or was numbered before a restart or by a log that started over).
    pub gap: bool,
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(HUB_CAPACITY)
    }
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(READER_BACKLOG);
        let origin = EventId {
            ms: Millis::now().0,
            seq: 0,
        };
        Hub {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(1024)),
                last: origin,
                from_origin: Some(origin),
                dropped: None,
                sender: Some(sender),
            }),
            capacity: capacity.max(1),
            wanted: AtomicBool::new(false),
            wanted_at: AtomicU64::new(0),
            ready: watch::Sender::new(true),
            kept: None,
            newest: watch::Sender::new(origin),
            shared: AtomicBool::new(false),
        }
    }

    /// A hub whose events are kept on disk by a reader (the webhook outbox), which says how
    /// far with [`Hub::mark_kept`].
    pub fn kept_on_disk(capacity: usize) -> Self {
        Hub {
            kept: Some(watch::Sender::new(EventId::default())),
            ..Hub::new(capacity)
        }
    }

    /// Says that every event up to `id` is kept on disk.
    pub fn mark_kept(&self, id: EventId) {
        if let Some(kept) = &self.kept {
            kept.send_if_modified(|k| {
                let newer = id > *k;
                *k = (*k).max(id);
                newer
            });
        }
    }

    /// Waits until the events published so far are kept on disk (at once without an outbox,
    /// or when the hub closes).
    pub async fn kept(&self) {
        let (Some(kept), Some(last)) = (&self.kept, self.last()) else {
            return;
        };
        let mut kept = kept.subscribe();
        let _ = kept.wait_for(|k| *k >= last).await;
    }

    /// Whether events are to be published and read: once anyone has wanted them.
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Says that someone will read events here.
    pub fn want(&self) {
        if !self.wanted.swap(true, Ordering::Relaxed) {
            self.wanted_at.store(Millis::now().0, Ordering::Relaxed);
        }
    }

    /// Events will come from a shared log, read once they are wanted: readers wait for
    /// [`Hub::seed`] and [`Hub::mark_ready`].
    pub fn fed_elsewhere(&self) {
        self.ready.send_replace(false);
        self.shared.store(true, Ordering::Relaxed);
        let mut ring = self.ring();
        ring.last = EventId::default();
        ring.from_origin = Some(EventId::default());
        self.newest.send_replace(EventId::default());
    }

    pub fn mark_ready(&self) {
        self.ready.send_replace(true);
    }

    /// Waits (at most `limit`) until readers may join; whether they may.
    pub async fn ready(&self, limit: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        let waited = tokio::time::timeout(limit, ready.wait_for(|ready| *ready)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Fills the ring with the shared log's newest events, read once events were wanted here:
    /// those from before then are kept for readers that resume; later ones (webhooks joined
    /// at start-up and wait for them) are passed on as well.
    pub fn seed(&self, events: impl IntoIterator<Item = Event>) {
        let since = self.wanted_at.load(Ordering::Relaxed).saturating_sub(1_000);
        let mut ring = self.ring();
        let mut events = events.into_iter().peekable();
        if events.peek().is_some() {
            // The shared log may have held more than it still does: only a log that was empty
            // when it was first read is known to be held here from its origin.
            ring.from_origin = None;
        }
        for event in events {
            if event.id <= ring.last {
                continue;
            }
            if event.time.0 >= since {
                self.keep(&mut ring, event);
            } else {
                self.push(&mut ring, Arc::new(event));
            }
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers a change made on this node and passes it on.
    pub fn publish(&self, change: Change, time: Millis) {
        let mut ring = self.ring();
        let id = ring.last.next(time);
        self.keep(&mut ring, Event::new(id, time, change));
    }

    /// Passes on an event numbered elsewhere (by Redis); one not after the last is a repeat.
    pub fn accept(&self, event: Event) {
        let mut ring = self.ring();
        if event.id > ring.last {
            self.keep(&mut ring, event);
        }
    }

    fn keep(&self, ring: &mut Ring, event: Event) {
        let event = Arc::new(event);
        self.push(ring, event.clone());
        if let Some(sender) = &ring.sender {
            // No receiver is no error: nobody is listening.
            let _ = sender.send(event);
        }
    }

    fn push(&self, ring: &mut Ring, event: Arc<Event>) {
        ring.last = event.id;
        // Only a reader of a shared log ever waits for an event (see `reached`): a hub that
        // numbers its own events spends nothing on it.
        if self.shared.load(Ordering::Relaxed) {
            self.newest.send_replace(event.id);
        }
        if ring.events.len() == self.capacity {
            ring.dropped = ring.events.pop_front().map(|e| e.id);
            ring.from_origin = None;
        }
        ring.events.push_back(event);
    }

    /// The id of the newest event, if any.
    pub fn last(&self) -> Option<EventId> {
        let ring = self.ring();
        ring.events.back().map(|e| e.id)
    }

    /// Where a reader that has seen every change so far resumes from: the newest event
    /// numbered or passed on here, or the hub's origin before any. Events are wanted from now on.
    pub fn position(&self) -> EventId {
        self.want();
        self.ring().last
    }

    /// Waits (at most `limit`) until the event `id`, numbered elsewhere, has reached this hub
    /// (a list read on this node may be ahead of its events); at once for a hub that numbers
    /// its own.
    pub async fn reached(&self, id: EventId, limit: Duration) {
        if !self.shared.load(Ordering::Relaxed) {
            return;
        }
        let mut newest = self.newest.subscribe();
        let _ = tokio::time::timeout(limit, newest.wait_for(|newest| *newest >= id)).await;
    }

    /// Joins the feed: with `after`, first every kept event after it. `None` once closed.
    pub fn join(&self, after: Option<EventId>) -> Option<Replay> {
        let ring = self.ring();
        self.want();
        let live = ring.sender.as_ref()?.subscribe();
        let Some(after) = after else {
            return Some(Replay {
                missed: Vec::new(),
                gap: false,
                live,
            });
        };
        let start = ring.events.partition_point(|e| e.id <= after);
        // A reader resumes exactly only from an event this hub holds (or the last to leave
        // it): any other id left the ring long ago, was numbered before a restart, or comes
        // from a shared log that started over. Events may be lost to it: say so.
        let held = ring
            .events
            .get(start.wrapping_sub(1))
            .is_some_and(|e| e.id == after)
            || ring.dropped == Some(after)
            || ring.from_origin == Some(after);
        let gap = !held;
        Some(Replay {
            missed: ring.events.range(start..).cloned().collect(),
            gap,
            live,
        })
    }

    /// Ends every reader's feed (the server is stopping).
    pub fn close(&self) {
        self.ring().sender = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EndReason;
    use crate::events::{denied, Ended};

    #[test]
    fn a_reader_resumes_from_the_origin_of_this_run_only() {
        let hub = Hub::new(10);
        let origin = hub.position();
        hub.publish(denied(), Millis(5));
        let replay = hub.join(Some(origin)).unwrap();
        assert_eq!(replay.missed.len(), 1);
        assert!(!replay.gap, "everything since the origin is held");
        let earlier_run = EventId {
            ms: origin.ms - 1,
            seq: 0,
        };
        assert!(hub.join(Some(earlier_run)).unwrap().gap);
    }

    #[test]
    fn a_reader_resumes_after_the_last_event_it_saw() {
        let hub = Hub::new(10);
        for t in 0..5 {
            hub.publish(denied(), Millis(1000 + t));
        }
        let all = hub.join(Some(EventId::default())).unwrap().missed;
        let ids: Vec<EventId> = all.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 5);
        let replay = hub.join(Some(ids[2])).unwrap();
        let resumed: Vec<EventId> = replay.missed.iter().map(|e| e.id).collect();
        assert_eq!(resumed, ids[3..]);
        assert!(!replay.gap);
    }

    #[test]
    fn the_ring_keeps_the_newest_and_says_when_a_reader_missed_more() {
        let hub = Hub::new(3);
        for t in 0..5 {
            hub.publish(denied(), Millis(1000 + t));
        }
        let replay = hub.join(Some(EventId { ms: 1000, seq: 0 })).unwrap();
        assert_eq!(replay.missed.len(), 3);
        assert!(replay.gap);
    }

    #[test]
    fn a_seed_is_kept_and_only_what_came_since_events_were_wanted_is_passed_on() {
        let hub = Hub::new(10);
        hub.fed_elsewhere();
        let mut live = hub.join(None).unwrap().live;
        let now = Millis::now().0;
        let at = |ms: u64| Event::new(EventId { ms, seq: 0 }, Millis(ms), denied());
        hub.seed([at(now - 60_000), at(now - 30_000), at(now + 5)]);
        assert_eq!(
            live.try_recv().unwrap().id.ms,
            now + 5,
            "only the recent one"
        );
        assert!(live.try_recv().is_err());
        let kept = hub.join(Some(EventId::default())).unwrap().missed;
        assert_eq!(kept.len(), 3, "all are kept for resuming");
    }

    #[test]
    fn live_readers_get_new_events_and_repeats_are_dropped() {
        let hub = Hub::new(10);
        hub.fed_elsewhere();
        let mut replay = hub.join(None).unwrap();
        let event = Event::new(
            EventId { ms: 5, seq: 0 },
            Millis(5),
            Change::Ended(Ended {
                id: crate::domain::SessionId::generate(),
                user_id: "u".into(),
                organisation: "A".into(),
                server_name: "S".into(),
                reason: EndReason::Logout,
                holds_admin: false,
            }),
        );
        hub.accept(event.clone());
        hub.accept(event);
        assert_eq!(
            replay.live.try_recv().unwrap().id,
            EventId { ms: 5, seq: 0 }
        );
        assert!(replay.live.try_recv().is_err());
        hub.close();
        assert!(hub.join(None).is_none());
    }
}
