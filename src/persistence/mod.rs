//! What the memory store keeps in its data directory: snapshots and the journal of changes
//! since the last one, with the one encoding of a session both use.

pub mod codec;
pub mod frames;
pub mod journal;
pub mod recovery;
pub mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Makes `dir` ready for sessiond's files: a missing directory is created readable by this
/// user only (it will hold the digests tokens are checked against); an existing one keeps the
/// mode its operator gave it. A path that is a file, or a directory this process cannot
/// write, is refused now, in one line, rather than at the first snapshot.
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    match fs::metadata(dir) {
        Ok(found) if found.is_dir() => {}
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a directory",
                dir.display()
            )))
        }
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?,
    }
    let probe = dir.join(format!(".sessiond-write-check-{}", std::process::id()));
    let _ = fs::remove_file(&probe);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("{} is not writable: {e}", dir.display()))
        })
}

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
