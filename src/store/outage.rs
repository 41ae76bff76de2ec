//! Whether a shared store is reachable, told in the log once when an outage starts and once
//! when it ends (with its length), not once per failed request or reconnection attempt.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Outage {
    what: &'static str,
    down: AtomicBool,
    since: Mutex<Option<Down>>,
}

struct Down {
    at: Instant,
    failures: u64,
}

impl Outage {
    pub fn new(what: &'static str) -> Self {
        Outage {
            what,
            down: AtomicBool::new(false),
            since: Mutex::new(None),
        }
    }

    /// A call failed: the first failure of an outage is logged, the rest only at DEBUG.
    pub fn failed(&self, reason: &dyn Display) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match since.as_mut() {
            Some(down) => {
                down.failures += 1;
                log::debug!("{} still unreachable: {reason}", self.what);
            }
            None => {
                log::error!(
                    "{} unreachable: {reason}; requests that need it answer 503 until it is back",
                    self.what
                );
                *since = Some(Down {
                    at: Instant::now(),
                    failures: 1,
                });
                self.down.store(true, Ordering::Release);
            }
        }
    }

    /// A call succeeded: ends the outage, if there was one (one atomic load when there was not).
    pub fn succeeded(&self) {
        if !self.down.load(Ordering::Acquire) {
            return;
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(down) = since.take() {
            self.down.store(false, Ordering::Release);
            log::warn!(
                "{} reachable again after {:.1} s ({} failed calls)",
                self.what,
                down.at.elapsed().as_secs_f64(),
                down.failures
            );
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_once_and_ends_once() {
        let outage = Outage::new("Redis");
        outage.succeeded();
        assert!(!outage.is_down());
        outage.failed(&"connection refused");
        outage.failed(&"connection refused");
        assert!(outage.is_down());
        assert_eq!(outage.since.lock().unwrap().as_ref().unwrap().failures, 2);
        outage.succeeded();
        assert!(!outage.is_down());
        assert!(outage.since.lock().unwrap().is_none());
    }
}
