//! The journal: every change of the memory store, appended before the response that
//! acknowledges it, so that a crash loses nothing acknowledged and brings back nothing ended.
//!
//! **Format.** The journal is a run of segment files `journal.<n>.log` in the data directory.
//! Each record is `u32` payload length, `u32` CRC-32 of the payload, then the payload: a kind
//! byte and its fields (integers little-endian):
//! - 1 created: the session as [`super::codec`] writes it;
//! - 2 ended: `u128` id, `u8` reason;
//! - 3 activity: `u32` count, then per session `u128` id and `u64` last-active ms.
//!
//! **Group commit.** Requests append to a shared buffer; one writer thread writes what has
//! gathered and flushes it with one `fdatasync`, then tells every request its record is
//! durable. With [`Fsync::EverySecond`] only ends wait for a flush; other records are flushed
//! within a second.
//!
//! **Snapshots compact it.** [`Journal::rotate`] closes the segment being written and starts the
//! next; a snapshot taken after that holds every change in the earlier segments, records the
//! first segment it does not cover, and then the earlier ones are removed.
//!
//! **Recovery** replays the segments from the snapshot's on. Damage in the last record of the
//! last segment is a torn write: it is cut off with one warning naming the bytes dropped.
//! Damage anywhere else stops start-up, naming the file and the offset.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::codec::{write_session, Reader};
use super::frames::{self, frame};
use crate::domain::{EndReason, Millis, SavedSession, SessionData, SessionId, TokenDigest};

/// When an acknowledgement waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    /// Every change is flushed before it is acknowledged.
    Always,
    /// Ends are flushed before they are acknowledged; other changes within a second.
    EverySecond,
}

/// One change, as replay applies it.
#[derive(Debug)]
pub enum Record {
    Created(SavedSession),
    Ended {
        id: SessionId,
        reason: EndReason,
    },
    /// Sessions' last activity: replay raises each to at least this.
    Activity(Vec<(SessionId, Millis)>),
}

const CREATED: u8 = 1;
const ENDED: u8 = 2;
const ACTIVITY: u8 = 3;
/// Sessions per activity record.
pub const ACTIVITY_PER_RECORD: usize = 4096;
/// How often the writer flushes what waits for no one, with [`Fsync::EverySecond`].
const EVERY_SECOND: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal {path} is damaged at offset {offset}: {reason}. Nothing was loaded; to start anyway, move the file away (the changes it holds from that offset on are then lost)")]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("journal.{number:010}.log"))
}

/// The segments in `dir`, by number.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let io = |source| JournalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal."))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

// ---- records ----

fn write_created(out: &mut Vec<u8>, digest: &TokenDigest, data: &SessionData, active: Millis) {
    out.push(CREATED);
    write_session(out, digest, data, active);
}

fn write_ended(out: &mut Vec<u8>, id: SessionId, reason: EndReason) {
    out.push(ENDED);
    out.extend_from_slice(&id.as_u128().to_le_bytes());
    let n = EndReason::ALL.iter().position(|r| *r == reason);
    out.push(n.expect("every reason is in ALL") as u8);
}

fn write_activity(out: &mut Vec<u8>, sessions: &[(SessionId, Millis)]) {
    out.push(ACTIVITY);
    out.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
    for (id, at) in sessions {
        out.extend_from_slice(&id.as_u128().to_le_bytes());
        out.extend_from_slice(&at.0.to_le_bytes());
    }
}

fn decode(payload: &[u8]) -> Result<Record, String> {
    let mut r = Reader::new(payload, 0);
    let record = match r.u8()? {
        CREATED => Record::Created(r.session()?),
        ENDED => {
            let id = SessionId::from_u128(r.u128()?);
            let n = r.u8()? as usize;
            let reason = *EndReason::ALL
                .get(n)
                .ok_or_else(|| format!("unknown end reason {n}"))?;
            Record::Ended { id, reason }
        }
        ACTIVITY => {
            let count = r.u32()? as usize;
            if count > ACTIVITY_PER_RECORD {
                return Err(format!("{count} sessions in one activity record"));
            }
            let mut sessions = Vec::with_capacity(count);
            for _ in 0..count {
                sessions.push((SessionId::from_u128(r.u128()?), Millis(r.u64()?)));
            }
            Record::Activity(sessions)
        }
        kind => return Err(format!("unknown record kind {kind}")),
    };
    if !r.done() {
        return Err("the record has trailing bytes".into());
    }
    Ok(record)
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub records: u64,
    pub segments: usize,
    /// The number the next segment takes.
    pub next_segment: u64,
}

/// Applies, in order, every record of the segments in `dir` numbered `from` on. A torn last
/// record is cut off the file (with a warning); any other damage is an error.
pub fn replay(
    dir: &Path,
    from: u64,
    mut apply: impl FnMut(Record),
) -> Result<Replayed, JournalError> {
    let found: Vec<(u64, PathBuf)> = segments(dir)?
        .into_iter()
        .filter(|(n, _)| *n >= from)
        .collect();
    let mut replayed = Replayed {
        next_segment: from,
        ..Replayed::default()
    };
    for (i, (number, path)) in found.iter().enumerate() {
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let bytes = fs::read(path).map_err(io)?;
        let scan = frames::scan(&bytes, decode);
        if let Some(damage) = scan.damage {
            let last = i + 1 == found.len();
            if !(last && damage.at_tail) {
                return Err(JournalError::Damaged {
                    path: path.clone(),
                    offset: scan.end as u64,
                    reason: damage.reason,
                });
            }
            log::warn!(
                "the journal {} ends in a torn write ({}): cut off {} bytes at offset {}",
                path.display(),
                damage.reason,
                bytes.len() - scan.end,
                scan.end
            );
            let file = OpenOptions::new().write(true).open(path).map_err(io)?;
            file.set_len(scan.end as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        replayed.records += scan.records.len() as u64;
        scan.records.into_iter().for_each(&mut apply);
        replayed.segments += 1;
        replayed.next_segment = number + 1;
    }
    Ok(replayed)
}

// ---- writing ----

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
    pub fn open(dir: &Path, number: u64, fsync: Fsync) -> Result<Arc<Self>, JournalError> {
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

    pub fn activity(&self, sessions: &[(SessionId, Millis)]) {
        for chunk in sessions.chunks(ACTIVITY_PER_RECORD) {
            self.append(false, |out| write_activity(out, chunk));
        }
    }

    /// The number of the last record appended.
    pub fn appended(&self) -> u64 {
        lock(&self.shared.pending).seq
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

/// Removes the segments in `dir` numbered before `number`.
pub fn remove_segments_before(dir: &Path, number: u64) -> Result<usize, JournalError> {
    let mut removed = 0;
    for (n, path) in segments(dir)? {
        if n < number {
            fs::remove_file(&path).map_err(|source| JournalError::Io { path, source })?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir).map_err(|source| JournalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::frames::HEADER;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sessiond-journal-{}", SessionId::generate()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn session(n: u8) -> SavedSession {
        SavedSession {
            digest: TokenDigest([n; 32]),
            data: SessionData {
                id: SessionId::generate(),
                user_id: format!("user-{n}").into(),
                name: "Teresa Pringle".into(),
                organisation: "Default".into(),
                ip_address: "59.100.242.122".parse().unwrap(),
                server_name: "LOCAL".into(),
                roles: vec![Arc::from("admin")].into(),
                user_agent: Some("Mozilla/5.0".into()),
                timeout_seconds: 1800,
                created_at: Millis(1_000),
            },
            last_active_at: Millis(2_000),
        }
    }

    /// Three records: created, ended, activity; and where each starts.
    fn three_records() -> (Vec<u8>, [usize; 3], SessionId) {
        let s = session(1);
        let id = s.data.id;
        let mut bytes = Vec::new();
        let mut starts = [0; 3];
        frame(&mut bytes, |out| {
            write_created(out, &s.digest, &s.data, s.last_active_at)
        });
        starts[1] = bytes.len();
        frame(&mut bytes, |out| write_ended(out, id, EndReason::Admin));
        starts[2] = bytes.len();
        frame(&mut bytes, |out| write_activity(out, &[(id, Millis(9))]));
        (bytes, starts, id)
    }

    fn replay_file(bytes: &[u8]) -> (Result<Replayed, JournalError>, Vec<Record>, PathBuf) {
        let dir = temp_dir();
        fs::write(segment_path(&dir, 3), bytes).unwrap();
        let mut records = Vec::new();
        let result = replay(&dir, 0, |r| records.push(r));
        (result, records, dir)
    }

    #[test]
    fn every_kind_of_record_round_trips() {
        let (bytes, _, id) = three_records();
        let (result, records, dir) = replay_file(&bytes);
        assert_eq!(result.unwrap().next_segment, 4);
        assert!(
            matches!(&records[0], Record::Created(s) if s.data.id == id && s.last_active_at == Millis(2_000))
        );
        assert!(matches!(records[1], Record::Ended { id: i, reason: EndReason::Admin } if i == id));
        assert!(matches!(&records[2], Record::Activity(a) if a[..] == [(id, Millis(9))]));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_record() {
        let (bytes, starts, _) = three_records();
        // Every cut inside the last record, and a last record whose bytes never reached disk.
        let mut torn: Vec<Vec<u8>> = (starts[2] + 1..bytes.len())
            .map(|len| bytes[..len].to_vec())
            .collect();
        let mut zeroed = bytes.clone();
        zeroed[starts[2] + HEADER..].fill(0);
        torn.push(zeroed);
        let mut garbage_header = bytes[..starts[2]].to_vec();
        garbage_header.extend_from_slice(&[0; 20]);
        torn.push(garbage_header);
        for file in torn {
            let (result, records, dir) = replay_file(&file);
            result.unwrap_or_else(|e| panic!("{} bytes: {e}", file.len()));
            assert_eq!(records.len(), 2, "{} bytes", file.len());
            let cut = fs::metadata(segment_path(&dir, 3)).unwrap().len();
            assert_eq!(
                cut, starts[2] as u64,
                "the file is cut at the last whole record"
            );
            fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn a_bad_record_in_the_middle_stops_naming_file_and_offset() {
        let (bytes, starts, _) = three_records();
        for at in [starts[1] + HEADER + 3, starts[1] + 1, starts[1] + 5] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x55;
            let (result, records, dir) = replay_file(&bad);
            match result {
                Err(JournalError::Damaged { path, offset, .. }) => {
                    assert_eq!(path, segment_path(&dir, 3));
                    assert_eq!(offset, starts[1] as u64);
                }
                other => panic!("byte {at}: {other:?}"),
            }
            assert_eq!(
                records.len(),
                0,
                "nothing is applied from a damaged journal"
            );
            assert_eq!(
                fs::read(segment_path(&dir, 3)).unwrap(),
                bad,
                "left as it was"
            );
            fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn damage_in_an_earlier_segment_is_never_a_torn_tail() {
        let (bytes, starts, _) = three_records();
        let dir = temp_dir();
        fs::write(segment_path(&dir, 1), &bytes[..bytes.len() - 1]).unwrap();
        fs::write(segment_path(&dir, 2), &bytes[..starts[1]]).unwrap();
        let error = replay(&dir, 0, |_| {}).unwrap_err().to_string();
        assert!(error.contains("journal.0000000001.log"), "{error}");
        assert!(error.contains(&format!("offset {}", starts[2])), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_crafted_record_with_a_good_checksum_is_refused() {
        let mut bytes = Vec::new();
        frame(&mut bytes, |out| out.extend_from_slice(&[ENDED, 1, 2]));
        frame(&mut bytes, |out| out.push(ENDED));
        let (result, _, dir) = replay_file(&bytes);
        assert!(matches!(
            result,
            Err(JournalError::Damaged { offset: 0, .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn appends_are_durable_in_order_across_rotations() {
        let dir = temp_dir();
        let journal = Journal::open(&dir, 5, Fsync::Always).unwrap();
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
            Record::Activity(_) => {}
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
