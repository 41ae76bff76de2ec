//! The trail kept in the data directory: JSON lines, rotated past a size, read back at start-up.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{AuditEvent, Stored};

/// The trail's file: JSON lines appended as events happen. Past [`ROTATE_AT`] bytes it is
/// renamed to `audit.1.jsonl` (replacing the one before) and a new one begun.
pub(super) struct TrailFile {
    dir: PathBuf,
    file: File,
    written: u64,
}

/// The size at which the trail's file is rotated.
const ROTATE_AT: u64 = 16 << 20;
pub(super) const CURRENT: &str = "audit.jsonl";
const PREVIOUS: &str = "audit.1.jsonl";

impl TrailFile {
    /// Opens the trail in `dir` and reads back its newest `capacity` events. Lines that
    /// cannot be read (a write cut short by a crash) are skipped with a warning.
    pub(super) fn open(
        dir: &Path,
        capacity: usize,
    ) -> std::io::Result<(Self, VecDeque<(u64, AuditEvent)>)> {
        std::fs::create_dir_all(dir)?;
        let mut kept = VecDeque::new();
        let mut unreadable = 0;
        for name in [PREVIOUS, CURRENT] {
            let text = match std::fs::read(dir.join(name)) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Stored>(line) {
                    Ok(stored) => {
                        let (Some(seq), event) = stored.into_event() else {
                            unreadable += 1;
                            continue;
                        };
                        kept.push_back((seq, event));
                        if kept.len() > capacity {
                            kept.pop_front();
                        }
                    }
                    Err(_) => unreadable += 1,
                }
            }
        }
        if unreadable > 0 {
            log::warn!(
                "the audit trail in {} had {unreadable} unreadable lines (a write cut short?); they were skipped",
                dir.display()
            );
        }
        let path = dir.join(CURRENT);
        let file = Self::open_for_append(&path)?;
        let written = file.metadata()?.len();
        // A torn last line must not swallow the next event.
        let mut trail = TrailFile {
            dir: dir.to_path_buf(),
            file,
            written,
        };
        if written > 0 && !std::fs::read(&path)?.ends_with(b"\n") {
            trail.file.write_all(b"\n")?;
        }
        Ok((trail, kept))
    }

    fn open_for_append(path: &Path) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    }

    pub(super) fn append(&mut self, line: &str) -> std::io::Result<()> {
        if self.written >= ROTATE_AT {
            std::fs::rename(self.dir.join(CURRENT), self.dir.join(PREVIOUS))?;
            self.file = Self::open_for_append(&self.dir.join(CURRENT))?;
            self.written = 0;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}
