//! What the memory store keeps in its data directory: snapshots and the journal of changes
//! since the last one, with the one encoding of a session both use.

pub mod codec;
pub mod frames;
pub mod journal;
pub mod recovery;
pub mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `bytes` whole: written to `temporary` (readable by this user only,
/// always a fresh file, never a link someone left there), flushed, renamed over `path`, and the
/// directory flushed. A crash leaves the old file or the new one, never a torn one.
pub fn replace_file(path: &Path, temporary: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // `remove_file` removes a link itself, and `create_new` (O_EXCL) never follows one.
    match fs::remove_file(temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(temporary, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
