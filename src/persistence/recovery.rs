//! What start-up finds in the data directory: the last snapshot and the journal after it,
//! merged into the sessions as they stood when the process stopped (or crashed).
//!
//! Session ids are never reused, so the merge needs no order beyond the journal's own: a
//! session is back if a snapshot or a `created` record holds it and no `ended` record names it,
//! with the latest activity any record gives it and every `amended` record applied in order. (A snapshot is taken while changes go on, so
//! it may hold a session whose `created` record follows it too: the store keeps one.)

use std::path::Path;

use hashbrown::HashMap;

use super::journal::{self, JournalError, Record, Replayed};
use super::snapshot::{SnapshotError, SnapshotFile};
use crate::domain::{Amendment, EndReason, Millis, SavedSession, SessionId, Stopped, TokenDigest};

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The sessions found, and where they came from.
pub struct Recovered {
    /// Ended ones left out; expired ones not (the store drops them as it restores).
    pub sessions: Vec<SavedSession>,
    /// When the snapshot was written, if there was one.
    pub snapshot_written_at: Option<Millis>,
    /// The first journal segment the snapshot does not hold.
    pub journal_from: u64,
    pub replayed: Replayed,
    /// The tokens the journal saw stop (their sessions ended, or they were rotated), so that
    /// a `401` after the restart still says why.
    pub stopped: Vec<(SessionId, TokenDigest, Stopped)>,
}

pub fn recover(dir: &Path, file: &SnapshotFile) -> Result<Recovered, RecoveryError> {
    let (mut sessions, snapshot_written_at, journal_from) = match file.load()? {
        Some(snapshot) => (
            snapshot.sessions,
            Some(snapshot.written_at),
            snapshot.journal_from,
        ),
        None => (Vec::new(), None, 0),
    };
    let mut ended: HashMap<SessionId, EndReason> = HashMap::new();
    let mut amendments: Vec<(SessionId, Amendment)> = Vec::new();
    let mut active: HashMap<SessionId, Millis> = HashMap::new();
    let replayed = journal::replay(dir, journal_from, |record| match record {
        Record::Created(session) => sessions.push(*session),
        Record::Ended { id, reason } => {
            ended.insert(id, reason);
        }
        Record::Amended { id, amendment } => amendments.push((id, amendment)),
        Record::Activity(seen) => {
            for (id, at) in seen {
                let latest = active.entry(id).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
    })?;
    let mut stopped = Vec::new();
    if !amendments.is_empty() {
        // In journal order, to every copy of the session (a snapshot and a `created` record
        // may both hold it).
        let mut copies: HashMap<SessionId, Vec<usize>> = HashMap::new();
        for (n, session) in sessions.iter().enumerate() {
            copies.entry(session.data.id).or_default().push(n);
        }
        for (id, amendment) in &amendments {
            for &n in copies.get(id).into_iter().flatten() {
                let session = &mut sessions[n];
                amendment.apply(&mut session.data);
                if let Some(digest) = amendment.digest {
                    stopped.push((*id, session.digest, Stopped::Rotated));
                    session.digest = digest;
                }
            }
        }
    }
    if !ended.is_empty() {
        sessions.retain(|s| match ended.get(&s.data.id) {
            Some(&reason) => {
                stopped.push((s.data.id, s.digest, reason.into()));
                false
            }
            None => true,
        });
    }
    if !active.is_empty() {
        for session in &mut sessions {
            if let Some(&at) = active.get(&session.data.id) {
                session.last_active_at = session.last_active_at.max(at);
            }
        }
    }
    Ok(Recovered {
        sessions,
        snapshot_written_at,
        journal_from,
        replayed,
        stopped,
    })
}
