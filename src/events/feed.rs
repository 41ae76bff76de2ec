//! One reader's view of the hub: the events it missed, then live ones, filtered to what it may
//! see and asked for. A reader that falls too far behind is cut off (it resumes from the ring
//! with the last id it saw); it never holds memory or slows anyone.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Change, Event, EventType, Replay};
use crate::domain::{Scope, SessionId};

/// Which events a reader gets: those its scope admits, of the types it named (all if none).
pub struct Filter {
    pub scope: Scope,
    pub types: Vec<EventType>,
    /// The reader's own session: its stream ends with it (logout, expiry, an administrator).
    pub own: SessionId,
}

impl Filter {
    fn ends_reader(&self, event: &Event) -> bool {
        matches!(&event.change, Change::Ended(ended) if ended.id == self.own)
    }

    fn admits(&self, event: &Event) -> bool {
        (self.types.is_empty() || self.types.contains(&event.kind()))
            && event.visible_to(&self.scope)
    }
}

/// What a reader is told.
pub enum Item {
    Event(Arc<Event>),
    /// Events after the id it resumed from had already left the buffer.
    Missed,
    /// It fell too far behind and is cut off; the stream ends.
    Behind,
    /// Its own session ended; so does the stream.
    Gone,
}

struct State {
    missed: std::vec::IntoIter<Arc<Event>>,
    gap: bool,
    live: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    done: bool,
}

/// The reader's stream; it ends when the hub closes or the reader falls behind.
pub fn feed(replay: Replay, filter: Filter) -> impl Stream<Item = Item> {
    let Replay { missed, gap, live } = replay;
    let state = State {
        missed: missed.into_iter(),
        gap,
        live,
        filter,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if std::mem::take(&mut state.gap) {
            return Some((Item::Missed, state));
        }
        for event in state.missed.by_ref() {
            if state.filter.ends_reader(&event) {
                state.done = true;
                return Some((Item::Gone, state));
            }
            if state.filter.admits(&event) {
                return Some((Item::Event(event), state));
            }
        }
        loop {
            match state.live.recv().await {
                Ok(event) if state.filter.ends_reader(&event) => {
                    state.done = true;
                    return Some((Item::Gone, state));
                }
                Ok(event) if state.filter.admits(&event) => {
                    return Some((Item::Event(event), state))
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    state.done = true;
                    return Some((Item::Behind, state));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Millis;
    use crate::events::{denied, Hub};
    use futures_util::StreamExt;

    #[test]
    fn a_reader_that_falls_too_far_behind_is_told_and_cut_off() {
        let hub = Hub::new(100);
        let filter = Filter {
            scope: Scope::All,
            types: Vec::new(),
            own: SessionId::generate(),
        };
        let mut stream = Box::pin(feed(hub.join(None).unwrap(), filter));
        // More events than a reader may have waiting, none read meanwhile.
        for n in 0..5_000 {
            hub.publish(denied(), Millis(n));
        }
        let items: Vec<Item> =
            actix_web::rt::System::new().block_on(async { stream.by_ref().collect().await });
        assert!(matches!(items.last(), Some(Item::Behind)));
        assert!(
            items.len() < 5_000,
            "it did not get everything it had missed"
        );
    }
}
