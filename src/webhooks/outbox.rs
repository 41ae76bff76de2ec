//! The webhook outbox, with `SESSIOND_DATA_DIR`: every event to deliver is appended to
//! `webhooks.log` and flushed before the change it tells of is acknowledged, and each
//! delivery's end (delivered, abandoned, dropped) is appended after it. Start-up resumes, in
//! their order, the deliveries that never ended, so a crash loses none (receivers deduplicate by
//! `webhook-id`). The file is rewritten with only those once most of it has ended.
//!
//! Records are framed as the journal's are ([`crate::persistence::frames`]); a payload is a
//! kind byte, then texts as `u32` length + UTF-8: 1 queued (id, session or empty, body),
//! 2 ended (id).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::persistence::frames::{self, frame};
use crate::persistence::replace_file;

const FILE_NAME: &str = "webhooks.log";
const QUEUED: u8 = 1;
const ENDED: u8 = 2;
/// The file is rewritten once it holds this many ended deliveries.
const COMPACT_AFTER: usize = 20_000;

/// A delivery as the outbox keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub id: String,
    pub session: Option<String>,
    pub body: String,
}

enum Entry {
    Queued(Kept),
    Ended(String),
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn read_text(bytes: &mut &[u8]) -> Result<String, String> {
    let short = || "a text is cut short".to_string();
    let len = bytes.get(..4).ok_or_else(short)?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let value = bytes.get(4..4 + len).ok_or_else(short)?;
    let value = String::from_utf8(value.to_vec()).map_err(|_| "a text is not UTF-8")?;
    *bytes = &bytes[4 + len..];
    Ok(value)
}

fn decode(payload: &[u8]) -> Result<Entry, String> {
    let (&kind, mut rest) = payload.split_first().ok_or("an empty record")?;
    let entry = match kind {
        QUEUED => {
            let id = read_text(&mut rest)?;
            let session = Some(read_text(&mut rest)?).filter(|s| !s.is_empty());
            let body = read_text(&mut rest)?;
            Entry::Queued(Kept { id, session, body })
        }
        ENDED => Entry::Ended(read_text(&mut rest)?),
        other => return Err(format!("unknown record kind {other}")),
    };
    if !rest.is_empty() {
        return Err("the record has trailing bytes".into());
    }
    Ok(entry)
}

fn write_queued(out: &mut Vec<u8>, kept: &Kept) {
    frame(out, |out| {
        out.push(QUEUED);
        text(out, &kept.id);
        text(out, kept.session.as_deref().unwrap_or(""));
        text(out, &kept.body);
    });
}

struct State {
    file: File,
    /// Deliveries not ended, in the order they were queued.
    pending: BTreeMap<u64, Kept>,
    order: HashMap<String, u64>,
    next: u64,
    ended: usize,
}

pub struct Outbox {
    path: PathBuf,
    state: Mutex<State>,
}

impl Outbox {
    /// Opens the outbox in `dir`; returns it with the deliveries that never ended, in order.
    /// A torn last write is cut off; other damage is an error naming the offset.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Kept>), String> {
        let path = dir.join(FILE_NAME);
        let fail = |e: std::io::Error| format!("cannot use {}: {e}", path.display());
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(fail(e)),
        };
        let scan = frames::scan(&bytes, decode);
        if let Some(damage) = scan.damage {
            if !damage.at_tail {
                return Err(format!(
                    "{} is damaged at offset {}: {}; move it away to start without it",
                    path.display(),
                    scan.end,
                    damage.reason
                ));
            }
            log::warn!(
                "{} ends in a torn write: cut off {} bytes at offset {}",
                path.display(),
                bytes.len() - scan.end,
                scan.end
            );
        }
        let mut pending = BTreeMap::new();
        let mut order = HashMap::new();
        for (n, entry) in scan.records.into_iter().enumerate() {
            match entry {
                Entry::Queued(kept) => {
                    order.insert(kept.id.clone(), n as u64);
                    pending.insert(n as u64, kept);
                }
                Entry::Ended(id) => {
                    if let Some(n) = order.remove(&id) {
                        pending.remove(&n);
                    }
                }
            }
        }
        let next = pending.keys().next_back().map_or(0, |n| n + 1);
        let file = rewrite(&path, pending.values()).map_err(fail)?;
        let resumed = pending.values().cloned().collect();
        let outbox = Outbox {
            path,
            state: Mutex::new(State {
                file,
                pending,
                order,
                next,
                ended: 0,
            }),
        };
        Ok((outbox, resumed))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends deliveries and flushes them to disk.
    pub fn queued(&self, deliveries: &[Kept]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for kept in deliveries {
            write_queued(&mut bytes, kept);
        }
        let mut state = self.state();
        state.file.write_all(&bytes)?;
        state.file.sync_data()?;
        for kept in deliveries {
            let n = state.next;
            state.next += 1;
            state.order.insert(kept.id.clone(), n);
            state.pending.insert(n, kept.clone());
        }
        Ok(())
    }

    /// Records that a delivery ended (it is not resumed again). Not flushed: if a crash loses
    /// this, the delivery is sent once more.
    pub fn ended(&self, id: &str) {
        let mut state = self.state();
        let Some(n) = state.order.remove(id) else {
            return;
        };
        state.pending.remove(&n);
        let mut bytes = Vec::new();
        frame(&mut bytes, |out| {
            out.push(ENDED);
            text(out, id);
        });
        if let Err(e) = state.file.write_all(&bytes) {
            log::warn!("cannot write to {}: {e}", self.path.display());
        }
        state.ended += 1;
        if state.ended >= COMPACT_AFTER {
            match rewrite(&self.path, state.pending.values()) {
                Ok(file) => {
                    state.file = file;
                    state.ended = 0;
                }
                Err(e) => log::warn!("cannot rewrite {}: {e}", self.path.display()),
            }
        }
    }

    /// Flushes what was appended since the last flush.
    pub fn flush(&self) {
        if let Err(e) = self.state().file.sync_data() {
            log::warn!("cannot flush {}: {e}", self.path.display());
        }
    }
}

/// Writes `pending` as the whole outbox (a temporary file renamed over it); returns the file
/// opened for appending.
fn rewrite<'a>(path: &Path, pending: impl Iterator<Item = &'a Kept>) -> std::io::Result<File> {
    let mut bytes = Vec::new();
    for kept in pending {
        write_queued(&mut bytes, kept);
    }
    replace_file(path, &path.with_extension("log.tmp"), &bytes)?;
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(n: u32) -> Kept {
        Kept {
            id: format!("1795820400000-{n}"),
            session: (n % 2 == 0).then(|| format!("session-{}", n / 4)),
            body: format!("{{\"n\":{n}}}"),
        }
    }

    #[test]
    fn what_never_ended_is_resumed_in_order_after_a_crash() {
        let dir = std::env::temp_dir().join(format!("sessiond-outbox-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (outbox, resumed) = Outbox::open(&dir).unwrap();
        assert!(resumed.is_empty());
        outbox
            .queued(&(0..6).map(kept).collect::<Vec<_>>())
            .unwrap();
        outbox.ended(&kept(1).id);
        outbox.ended(&kept(4).id);
        // A crash: the outbox is dropped without anything else, and a torn write follows.
        drop(outbox);
        let path = dir.join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1]);
        fs::write(&path, bytes).unwrap();
        let (outbox, resumed) = Outbox::open(&dir).unwrap();
        assert_eq!(resumed, [0, 2, 3, 5].map(kept));
        outbox.ended(&kept(0).id);
        drop(outbox);
        let (_, resumed) = Outbox::open(&dir).unwrap();
        assert_eq!(resumed, [2, 3, 5].map(kept), "compacted, then appended to");
        fs::remove_dir_all(&dir).unwrap();
    }
}
