//! Who reads the event stream on this node: at most a node's limit in all and a few per
//! session, so that one token cannot hold thousands of connections (each costs memory and a
//! descriptor, and every event is sent to each).

use std::sync::{Arc, Mutex, PoisonError};

use hashbrown::HashMap;
use prometheus::IntGauge;

use crate::domain::SessionId;

/// Streams one session may hold at once.
pub const PER_SESSION: usize = 4;

pub struct Readers {
    max: usize,
    open: Mutex<Open>,
    /// `sessiond_event_streams`.
    gauge: IntGauge,
}

#[derive(Default)]
struct Open {
    all: usize,
    by_session: HashMap<SessionId, usize>,
}

/// Which limit a new reader would pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Node(usize),
    Session,
}

/// One admitted reader; it leaves when this is dropped (with its stream).
pub struct Reader {
    readers: Arc<Readers>,
    session: SessionId,
}

impl Readers {
    pub fn new(max: usize, gauge: IntGauge) -> Self {
        Readers {
            max,
            open: Mutex::default(),
            gauge,
        }
    }

    /// Admits a reader holding `session`, unless a limit is reached.
    pub fn admit(self: &Arc<Self>, session: SessionId) -> Result<Reader, Full> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.all >= self.max {
            return Err(Full::Node(self.max));
        }
        let mine = open.by_session.entry(session).or_default();
        if *mine >= PER_SESSION {
            return Err(Full::Session);
        }
        *mine += 1;
        open.all += 1;
        self.gauge.inc();
        Ok(Reader {
            readers: self.clone(),
            session,
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut open = self
            .readers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.all -= 1;
        if let Some(mine) = open.by_session.get_mut(&self.session) {
            *mine -= 1;
            if *mine == 0 {
                open.by_session.remove(&self.session);
            }
        }
        self.readers.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_a_reader_that_leaves_frees_its_place() {
        let readers = Arc::new(Readers::new(6, IntGauge::new("r", "r").unwrap()));
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let of_a: Vec<Reader> = (0..PER_SESSION)
            .map(|_| readers.admit(a).unwrap())
            .collect();
        assert_eq!(readers.admit(a).err(), Some(Full::Session));
        let of_b: Vec<Reader> = (0..2).map(|_| readers.admit(b).unwrap()).collect();
        assert_eq!(readers.admit(b).err(), Some(Full::Node(6)));
        drop(of_a);
        assert!(readers.admit(a).is_ok());
        assert_eq!(readers.gauge.get(), 2);
        drop(of_b);
    }
}
