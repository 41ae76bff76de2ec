//! Writing the journal: requests append to a shared buffer; one writer thread writes what has
//! gathered, flushes it with one `fdatasync` and tells the waiting requests (group commit).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{
    remove_segments_before, segment_path, sync_dir, write_activity, write_amended, write_created,
    write_ended, Fsync, JournalError, ACTIVITY_PER_RECORD,
};
use crate::domain::{Amendment, EndReason, Millis, SessionData, SessionId, TokenDigest};
use crate::persistence::frames::frame;

thread_local! {
    static APPENDED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How often the writer flushes what waits for no one, with [`Fsync::EverySecond`].
const EVERY_SECOND: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, Default)]
struct Flushed {
    /// Every record up to this one is on disk.
    seq: u64,
    /// The last write or flush failed.
    failing: bool,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The number of the last record appended.
    seq: u64,
    /// Whether a record in `bytes` waits for its flush.
    urgent: bool,
    /// Whether the writer waits to be woken (it is woken only then, and only for what must
    /// be flushed soon: a wake-up per record would cost a context switch per request).
    writer_waiting: bool,
}

struct Segment {
    file: File,
    number: u64,
    len: u64,
    written_seq: u64,
    synced_seq: u64,
    synced_at: Instant,
}

impl Segment {
    fn create(dir: &Path, number: u64, seq: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(segment_path(dir, number))?;
        sync_dir(dir)?;
        Ok(Segment {
            file,
            number,
            len: 0,
            written_seq: seq,
            synced_seq: seq,
            synced_at: Instant::now(),
        })
    }

    /// Appends `bytes` whole, or leaves the file as it was.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.file.write_all(bytes) {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }
}

struct Shared {
    dir: PathBuf,
    fsync: Fsync,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing: whoever holds it writes the pending records, in order.
    segment: Mutex<Segment>,
    flushed: watch::Sender<Flushed>,
    stopping: AtomicBool,
    /// Counts every failed write or flush.
    failures: prometheus::IntCounter,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes what is pending to `segment` and flushes it when someone waits (or a flush is
    /// due), then says what is durable. The caller holds the segment.
    fn write_pending(&self, segment: &mut Segment, flush: bool) -> std::io::Result<()> {
        let (bytes, seq, urgent) = {
            let mut pending = lock(&self.pending);
            let urgent = std::mem::take(&mut pending.urgent);
            (std::mem::take(&mut pending.bytes), pending.seq, urgent)
        };
        if !bytes.is_empty() {
            if let Err(e) = segment.write(&bytes) {
                // Put back in front of what came since, to be written in order later.
                let mut pending = lock(&self.pending);
                let mut retry = bytes;
                retry.append(&mut pending.bytes);
                pending.bytes = retry;
                pending.urgent |= urgent;
                return Err(self.failed(e));
            }
            segment.written_seq = seq;
        }
        let due = flush
            || urgent
            || self.fsync == Fsync::Always
            || segment.synced_at.elapsed() >= EVERY_SECOND;
        if segment.written_seq > segment.synced_seq && due {
            segment.file.sync_data().map_err(|e| self.failed(e))?;
            segment.synced_seq = segment.written_seq;
            segment.synced_at = Instant::now();
            let synced = segment.synced_seq;
            self.flushed.send_if_modified(|f| {
                if f.failing {
                    log::info!("the journal is written again");
                }
                let changed = f.seq != synced || f.failing;
                *f = Flushed {
                    seq: synced,
                    failing: false,
                };
                changed
            });
        }
        Ok(())
    }

    fn failed(&self, error: std::io::Error) -> std::io::Error {
        self.failures.inc();
        self.flushed.send_if_modified(|f| {
            if !f.failing {
                log::error!(
                    "cannot write the journal in {}: {error}; changes are refused (503) until it can be written",
                    self.dir.display()
                );
            }
            let changed = !f.failing;
            f.failing = true;
            changed
        });
        error
    }

    fn run(&self) {
        loop {
            {
                let mut pending = lock(&self.pending);
                let idle = match self.fsync {
                    Fsync::Always => pending.bytes.is_empty(),
                    Fsync::EverySecond => !pending.urgent,
                };
                if idle && !self.stopping.load(Ordering::Acquire) {
                    pending.writer_waiting = true;
                    let (mut pending, _) = self
                        .wake
                        .wait_timeout(pending, EVERY_SECOND)
                        .unwrap_or_else(PoisonError::into_inner);
                    pending.writer_waiting = false;
                }
            }
            let stopping = self.stopping.load(Ordering::Acquire);
            let written = self.write_pending(&mut lock(&self.segment), stopping);
            if written.is_err() {
                // Try again shortly; requests meanwhile are refused, not queued forever.
                std::thread::sleep(Duration::from_millis(200));
            }
            if stopping && lock(&self.pending).bytes.is_empty() {
                return;
            }
        }
    }
}

/// The journal being written: appends from request threads, one writer thread.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Journal {
    /// Starts writing segment `number` in `dir` (the one after those replayed).
    pub fn open(
        dir: &Path,
        number: u64,
        fsync: Fsync,
        failures: prometheus::IntCounter,
    ) -> Result<Arc<Self>, JournalError> {
        let segment = Segment::create(dir, number, 0).map_err(|source| JournalError::Io {
            path: segment_path(dir, number),
            source,
        })?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            fsync,
            pending: Mutex::default(),
            wake: Condvar::new(),
            segment: Mutex::new(segment),
            flushed: watch::Sender::new(Flushed::default()),
            stopping: AtomicBool::new(false),
            failures,
        });
        let writer = std::thread::Builder::new()
            .name("sessiond-journal".into())
            .spawn({
                let shared = shared.clone();
                move || shared.run()
            })
            .map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Arc::new(Journal {
            shared,
            writer: Mutex::new(Some(writer)),
        }))
    }

    pub fn fsync(&self) -> Fsync {
        self.shared.fsync
    }

    fn append(&self, urgent: bool, write: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = lock(&self.shared.pending);
        frame(&mut pending.bytes, write);
        pending.seq += 1;
        APPENDED_HERE.set(pending.seq);
        pending.urgent |= urgent;
        let wake = pending.writer_waiting && (urgent || self.shared.fsync == Fsync::Always);
        drop(pending);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    pub fn created(&self, digest: &TokenDigest, data: &SessionData, last_active_at: Millis) {
        self.append(false, |out| {
            write_created(out, digest, data, last_active_at)
        });
    }

    /// An end is flushed before it is acknowledged, whatever [`Fsync`] says.
    pub fn ended(&self, id: SessionId, reason: EndReason) {
        self.append(true, |out| write_ended(out, id, reason));
    }

    /// A session changed in place. A new token ends the old one, so it is flushed like an
    /// end.
    pub fn amended(&self, id: SessionId, amendment: &Amendment) {
        self.append(amendment.digest.is_some(), |out| {
            write_amended(out, id, amendment)
        });
    }

    pub fn activity(&self, sessions: &[(SessionId, Millis)]) {
        for chunk in sessions.chunks(ACTIVITY_PER_RECORD) {
            self.append(false, |out| write_activity(out, chunk));
        }
    }

    /// The number of the last record appended.
    pub fn appended(&self) -> u64 {
        lock(&self.shared.pending).seq
    }

    /// The number of the last record this thread appended: what a request that just made a
    /// change (with no await since) waits for. Waiting for [`Journal::appended`] instead could
    /// wait a flush longer, for records of other threads' requests.
    pub fn appended_here(&self) -> u64 {
        APPENDED_HERE.get()
    }

    /// Waits until every record up to `seq` is on disk.
    pub async fn durable(&self, seq: u64) -> Result<(), String> {
        let mut flushed = self.shared.flushed.subscribe();
        let outcome = match flushed.wait_for(|f| f.seq >= seq || f.failing).await {
            Ok(f) if f.seq >= seq => Ok(()),
            Ok(_) => Err("the journal cannot be written (see the server's log)".into()),
            Err(_) => Err("the journal has stopped".into()),
        };
        outcome
    }

    /// Flushes the segment being written and starts the next; returns its number. Every change
    /// made before this call is in the earlier segments.
    pub fn rotate(&self) -> Result<u64, JournalError> {
        let shared = &self.shared;
        let mut segment = lock(&shared.segment);
        let path = segment_path(&shared.dir, segment.number);
        let io = |source| JournalError::Io { path, source };
        let next = segment.number + 1;
        let started = shared
            .write_pending(&mut segment, true)
            .and_then(|()| Segment::create(&shared.dir, next, segment.synced_seq));
        *segment = started.map_err(io)?;
        Ok(next)
    }

    /// Removes the segments before `number` (a snapshot now holds their changes).
    pub fn remove_before(&self, number: u64) -> Result<usize, JournalError> {
        remove_segments_before(&self.shared.dir, number)
    }

    /// Writes and flushes what is pending, and stops the writer.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _waiting = lock(&self.shared.pending);
        self.shared.wake.notify_one();
        drop(_waiting);
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{replay, tests::session, Record};
    use super::*;
    use crate::domain::SavedSession;
    use std::fs;

    #[test]
    fn appends_are_durable_in_order_across_rotations() {
        let dir = super::super::tests::temp_dir();
        let failures = prometheus::IntCounter::new("f", "f").unwrap();
        let journal = Journal::open(&dir, 5, Fsync::Always, failures).unwrap();
        let sessions: Vec<SavedSession> = (0..50).map(session).collect();
        for (i, s) in sessions.iter().enumerate() {
            journal.created(&s.digest, &s.data, s.last_active_at);
            if i == 20 {
                assert_eq!(journal.rotate().unwrap(), 6);
            }
        }
        journal.ended(sessions[3].data.id, EndReason::Logout);
        let seq = journal.appended();
        assert_eq!(seq, 51);
        actix_web::rt::System::new()
            .block_on(journal.durable(seq))
            .unwrap();
        journal.stop();
        let mut ids = Vec::new();
        let replayed = replay(&dir, 6, |r| match r {
            Record::Created(s) => ids.push(s.data.id),
            Record::Ended { id, .. } => ids.push(id),
            Record::Activity(_) | Record::Amended { .. } => {}
        })
        .unwrap();
        assert_eq!(replayed.next_segment, 7);
        let expected: Vec<SessionId> = sessions[21..]
            .iter()
            .map(|s| s.data.id)
            .chain([sessions[3].data.id])
            .collect();
        assert_eq!(
            ids, expected,
            "segment 6 holds what came after the rotation"
        );
        assert_eq!(remove_segments_before(&dir, 6).unwrap(), 1);
        fs::remove_dir_all(dir).unwrap();
    }
}
