//! Snapshots of the in-memory store; with the journal (see [`super::journal`]) they are what
//! start-up loads before replaying the journal's records after them.
//!
//! The file is written whole to a temporary name, flushed to disk, renamed over the old one and
//! the directory flushed too: a crash at any moment leaves the previous snapshot or the new
//! one, never a torn file. A SHA-256 trailer catches truncation and corruption on load.
//!
//! Format, version 4 (integers little-endian): `"SESSIOND"`, `u32` version, `u64` written-at ms,
//! `u64` the first journal segment it does not cover, `u64` count, then the sessions as
//! [`super::codec`] writes them (its full form); then the SHA-256 of all before it. Version 3
//! wrote sessions in the codec's basic form; version 2 had no journal segment either (it is
//! read as covering none); version 1 kept the digest of a whole token, before
//! tokens carried their session's id, so its sessions cannot be validated and it is refused by
//! name.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::codec::{write_session, Form, Reader, Shared, MIN_SESSION_BYTES};
use super::replace_file;
use crate::domain::{Millis, SavedSession};

const MAGIC: &[u8; 8] = b"SESSIOND";
pub const VERSION: u32 = 4;
const FILE_NAME: &str = "sessions.snapshot";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {path} cannot be used: {reason}. It was left in place; move it away to start without it")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a snapshot file holds.
#[derive(Debug)]
pub struct Snapshot {
    /// When it was written.
    pub written_at: Millis,
    /// The first journal segment whose records it does not hold.
    pub journal_from: u64,
    pub sessions: Vec<SavedSession>,
}

/// Where snapshots live: one file in the data directory. Clones share one writer lock, so the
/// periodic and the shutdown snapshot never write at once.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    writing: Arc<Mutex<()>>,
}

impl SnapshotFile {
    /// The snapshot in `dir`, prepared as [`super::prepare_dir`] says.
    pub fn in_dir(dir: &Path) -> Result<Self, SnapshotError> {
        let path = dir.join(FILE_NAME);
        let error = |source| SnapshotError::Write {
            path: path.clone(),
            source,
        };
        super::prepare_dir(dir).map_err(error)?;
        Ok(SnapshotFile {
            path,
            writing: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last snapshot, or `None` when none was written yet.
    pub fn load(&self) -> Result<Option<Snapshot>, SnapshotError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SnapshotError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        decode(&bytes)
            .map(Some)
            .map_err(|reason| SnapshotError::Invalid {
                path: self.path.clone(),
                reason,
            })
    }

    /// Writes `sessions` atomically, replacing the previous snapshot. The file is readable by
    /// this user only, and written to a fresh temporary name that is never a link someone
    /// left there.
    pub fn save(
        &self,
        sessions: &[SavedSession],
        journal_from: u64,
        now: Millis,
    ) -> Result<(), SnapshotError> {
        let bytes = encode(sessions, journal_from, now);
        let _one_at_a_time = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let temporary = self.path.with_extension("snapshot.tmp");
        replace_file(&self.path, &temporary, &bytes).map_err(|source| SnapshotError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

pub fn encode(sessions: &[SavedSession], journal_from: u64, now: Millis) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sessions.len() * 160);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&now.0.to_le_bytes());
    out.extend_from_slice(&journal_from.to_le_bytes());
    out.extend_from_slice(&(sessions.len() as u64).to_le_bytes());
    for s in sessions {
        write_session(&mut out, &s.digest, &s.data, s.last_active_at);
    }
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

/// Reads what [`encode`] wrote; every inconsistency is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err("it is not a sessiond snapshot".into());
    }
    if bytes.len() < 28 + 32 {
        return Err("it is truncated".into());
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != checksum {
        return Err("its checksum does not match (truncated or corrupt)".into());
    }
    let mut r = Reader::new(body, 8);
    let version = r.u32()?;
    if version == 1 {
        return Err(
            "it has format version 1, written by a sessiond whose tokens carried no \
             session id, and those tokens cannot be validated by this version (format 2)"
                .into(),
        );
    }
    if !(2..=VERSION).contains(&version) {
        return Err(format!(
            "it has format version {version}; this sessiond reads versions 2 to {VERSION}"
        ));
    }
    let written_at = Millis(r.u64()?);
    let journal_from = if version >= 3 { r.u64()? } else { 0 };
    let count = r.u64()?;
    let form = if version >= 4 {
        Form::Full
    } else {
        Form::Basic
    };
    // The count is only a claim until the sessions are found: it sizes nothing larger than
    // the file could hold. Their starts are found first (lengths only), then they are read in
    // parallel.
    let mut starts =
        Vec::with_capacity(count.min((body.len() / MIN_SESSION_BYTES) as u64) as usize);
    for n in 0..count {
        starts.push(r.at());
        r.skip_session(form)
            .map_err(|reason| format!("session {} of {count}: {reason}", n + 1))?;
    }
    if !r.done() {
        return Err("it has trailing bytes".into());
    }
    const CHUNK: usize = 4096;
    let sessions = starts
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(chunk, starts)| {
            let mut shared = Shared::default();
            starts
                .iter()
                .enumerate()
                .map(|(n, &start)| {
                    Reader::new(body, start)
                        .session_sharing(form, &mut shared)
                        .map_err(|reason| {
                            format!("session {} of {count}: {reason}", chunk * CHUNK + n + 1)
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<Vec<_>>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(Snapshot {
        written_at,
        journal_from,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SessionData, SessionId, TokenDigest};
    use std::sync::Arc;

    fn saved(i: u32) -> SavedSession {
        SavedSession {
            digest: TokenDigest([i as u8; 32]),
            data: SessionData {
                id: SessionId::generate(),
                user_id: format!("user-{i}").into(),
                name: "Teresa Pringle".into(),
                organisation: "Default".into(),
                ip_address: if i % 2 == 0 {
                    "59.100.242.122".parse().unwrap()
                } else {
                    "2001:db8::7".parse().unwrap()
                },
                server_name: "LOCAL".into(),
                roles: vec![Arc::from("admin"), Arc::from("x")].into(),
                user_agent: (i % 3 == 0).then(|| Arc::from("Mozilla/5.0")),
                device: (i % 3 == 0).then(|| {
                    Arc::new(crate::domain::Device {
                        browser: Some("Chrome 131".into()),
                        os: None,
                        kind: crate::domain::DeviceKind::Phone,
                    })
                }),
                timeout_seconds: 1800 + i,
                created_at: Millis(1_000 + u64::from(i)),
                authenticated_at: Millis(1_200 + u64::from(i)),
                assurance_level: 1 + (i % 3) as u8,
                reauthenticate_by: (i % 2 == 0).then_some(Millis(9_000)),
                last_ip_address: if i % 4 == 0 {
                    "10.0.0.4".parse().unwrap()
                } else if i % 2 == 0 {
                    "59.100.242.122".parse().unwrap()
                } else {
                    "2001:db8::7".parse().unwrap()
                },
            },
            last_active_at: Millis(2_000 + u64::from(i)),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let sessions: Vec<SavedSession> = (0..10).map(saved).collect();
        let snapshot = decode(&encode(&sessions, 7, Millis(5))).unwrap();
        assert_eq!(snapshot.written_at, Millis(5));
        assert_eq!(snapshot.journal_from, 7);
        let decoded = snapshot.sessions;
        assert_eq!(decoded.len(), 10);
        for (a, b) in sessions.iter().zip(&decoded) {
            assert_eq!(a.digest, b.digest);
            assert_eq!(format!("{:?}", a.data), format!("{:?}", b.data));
            assert_eq!(a.last_active_at, b.last_active_at);
        }
    }

    #[test]
    fn refuses_every_truncation_and_any_flipped_byte() {
        let bytes = encode(&(0..3).map(saved).collect::<Vec<_>>(), 0, Millis(5));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for at in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "byte {at} flipped");
        }
    }

    #[test]
    fn refuses_another_version() {
        let mut bytes = encode(&[], 0, Millis(5));
        let body_len = bytes.len() - 32;
        for (version, named) in [(5, "version 5"), (1, "format version 1")] {
            bytes[8] = version;
            let checksum = Sha256::digest(&bytes[..body_len]);
            bytes[body_len..].copy_from_slice(&checksum);
            assert!(decode(&bytes).unwrap_err().contains(named));
        }
    }

    #[test]
    fn a_crafted_field_is_refused_not_trusted() {
        let mut long = saved(1);
        long.data.user_id = "u".repeat(70_000).into();
        let error = decode(&encode(&[saved(0), long], 0, Millis(5))).unwrap_err();
        assert!(error.contains("session 2 of 2: user_id"), "{error}");
        let mut hidden = saved(2);
        hidden.data.name = "Ada\u{202E}".into();
        assert!(decode(&encode(&[hidden], 0, Millis(5))).is_err());
    }

    #[test]
    fn a_claimed_count_sizes_nothing_before_the_sessions_are_read() {
        let mut bytes = encode(&[saved(0)], 0, Millis(5));
        bytes[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
        let body_len = bytes.len() - 32;
        let checksum = Sha256::digest(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&checksum);
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn files_are_private_and_links_are_not_followed() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("sessiond-snap-{}", SessionId::generate()));
        let file = SnapshotFile::in_dir(&dir).unwrap();
        // A link planted where the temporary file goes must not be written through.
        let target = dir.join("elsewhere");
        fs::write(&target, b"untouched").unwrap();
        std::os::unix::fs::symlink(&target, file.path.with_extension("snapshot.tmp")).unwrap();
        file.save(&[saved(0)], 0, Millis(5)).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(file.path()).unwrap().mode() & 0o777, 0o600);
        assert_eq!(file.load().unwrap().unwrap().sessions.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
