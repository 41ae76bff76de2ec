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
use std::path::{Path, PathBuf};

use super::codec::{write_address, write_session, Form, Reader};
use super::frames;

mod writer;
use crate::domain::{
    Amendment, Authentication, EndReason, Millis, SavedSession, SessionData, SessionId, TokenDigest,
};
pub use writer::Journal;

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
    Created(Box<SavedSession>),
    Ended {
        id: SessionId,
        reason: EndReason,
    },
    /// Sessions' last activity: replay raises each to at least this.
    Activity(Vec<(SessionId, Millis)>),
    /// A live session changed in place: a new token, authentication or client address.
    Amended {
        id: SessionId,
        amendment: Amendment,
    },
}

/// A session created, in the codec's basic form (written by earlier versions).
const CREATED: u8 = 1;
const ENDED: u8 = 2;
const ACTIVITY: u8 = 3;
/// A session created, in the codec's full form.
const CREATED_FULL: u8 = 4;
/// A session changed in place: `u128` id, `u8` what (1 digest, 2 authentication, 4 address),
/// then the 32-byte digest; `u64` authenticated ms, `u8` level, `u32` timeout, `u64`
/// reauthenticate-by ms (`u64::MAX`: none); `u8` 4/6 + the address — each if present.
const AMENDED: u8 = 5;
const NEW_DIGEST: u8 = 1;
const NEW_AUTHENTICATION: u8 = 2;
const NEW_ADDRESS: u8 = 4;
/// Sessions per activity record.
pub const ACTIVITY_PER_RECORD: usize = 4096;

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

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
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

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn write_created(
    out: &mut Vec<u8>,
    digest: &TokenDigest,
    data: &SessionData,
    active: Millis,
) {
    out.push(CREATED_FULL);
    write_session(out, digest, data, active);
}

pub(super) fn write_ended(out: &mut Vec<u8>, id: SessionId, reason: EndReason) {
    out.push(ENDED);
    out.extend_from_slice(&id.as_u128().to_le_bytes());
    let n = EndReason::ALL.iter().position(|r| *r == reason);
    out.push(n.expect("every reason is in ALL") as u8);
}

pub(super) fn write_activity(out: &mut Vec<u8>, sessions: &[(SessionId, Millis)]) {
    out.push(ACTIVITY);
    out.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
    for (id, at) in sessions {
        out.extend_from_slice(&id.as_u128().to_le_bytes());
        out.extend_from_slice(&at.0.to_le_bytes());
    }
}

pub(super) fn write_amended(out: &mut Vec<u8>, id: SessionId, amendment: &Amendment) {
    out.push(AMENDED);
    out.extend_from_slice(&id.as_u128().to_le_bytes());
    let what = [
        (amendment.digest.is_some(), NEW_DIGEST),
        (amendment.authentication.is_some(), NEW_AUTHENTICATION),
        (amendment.last_ip_address.is_some(), NEW_ADDRESS),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .fold(0, |all, (_, bit)| all | bit);
    out.push(what);
    if let Some(digest) = amendment.digest {
        out.extend_from_slice(&digest.0);
    }
    if let Some(auth) = amendment.authentication {
        out.extend_from_slice(&auth.at.0.to_le_bytes());
        out.push(auth.assurance_level);
        out.extend_from_slice(&auth.timeout_seconds.to_le_bytes());
        out.extend_from_slice(
            &auth
                .reauthenticate_by
                .map_or(u64::MAX, |by| by.0)
                .to_le_bytes(),
        );
    }
    if let Some(ip) = amendment.last_ip_address {
        write_address(out, ip);
    }
}

fn read_amended(r: &mut Reader<'_>) -> Result<Record, String> {
    let id = SessionId::from_u128(r.u128()?);
    let what = r.u8()?;
    if what & !(NEW_DIGEST | NEW_AUTHENTICATION | NEW_ADDRESS) != 0 {
        return Err(format!("unknown amendment {what}"));
    }
    let mut amendment = Amendment::default();
    if what & NEW_DIGEST != 0 {
        amendment.digest = Some(TokenDigest(r.array()?));
    }
    if what & NEW_AUTHENTICATION != 0 {
        amendment.authentication = Some(Authentication {
            at: Millis(r.u64()?),
            assurance_level: r.u8()?,
            timeout_seconds: r.u32()?,
            reauthenticate_by: Some(r.u64()?).filter(|&by| by != u64::MAX).map(Millis),
        });
    }
    if what & NEW_ADDRESS != 0 {
        amendment.last_ip_address = Some(r.address()?);
    }
    Ok(Record::Amended { id, amendment })
}

fn decode(payload: &[u8]) -> Result<Record, String> {
    let mut r = Reader::new(payload, 0);
    let record = match r.u8()? {
        CREATED => Record::Created(Box::new(r.session(Form::Basic)?)),
        CREATED_FULL => Record::Created(Box::new(r.session(Form::Full)?)),
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
        AMENDED => read_amended(&mut r)?,
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
pub(super) mod tests {
    use super::*;
    use crate::persistence::frames::{frame, HEADER};
    use std::sync::Arc;

    pub(super) fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sessiond-journal-{}", SessionId::generate()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub(super) fn session(n: u8) -> SavedSession {
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
                device: crate::domain::Device::of(
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/131.0.0.0",
                )
                .map(Arc::new),
                timeout_seconds: 1800,
                created_at: Millis(1_000),
                authenticated_at: Millis(1_500),
                assurance_level: 2,
                reauthenticate_by: Some(Millis(90_000)),
                last_ip_address: "203.0.113.9".parse().unwrap(),
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
    fn an_amendment_round_trips_whatever_it_holds() {
        let id = SessionId::generate();
        let full = Amendment {
            digest: Some(TokenDigest([9; 32])),
            authentication: Some(Authentication {
                at: Millis(5),
                assurance_level: 3,
                timeout_seconds: 900,
                reauthenticate_by: Some(Millis(43_200_005)),
            }),
            last_ip_address: Some("2001:db8::9".parse().unwrap()),
            report: false,
        };
        let address_only = Amendment {
            last_ip_address: Some("10.0.0.9".parse().unwrap()),
            ..Amendment::default()
        };
        for amendment in [full, address_only] {
            let mut payload = Vec::new();
            write_amended(&mut payload, id, &amendment);
            let Record::Amended {
                id: read,
                amendment: back,
            } = decode(&payload).unwrap()
            else {
                panic!("not an amendment");
            };
            assert_eq!(read, id);
            assert_eq!(back.digest.map(|d| d.0), amendment.digest.map(|d| d.0));
            assert_eq!(back.authentication, amendment.authentication);
            assert_eq!(back.last_ip_address, amendment.last_ip_address);
        }
        let mut unknown = Vec::new();
        write_amended(&mut unknown, id, &Amendment::default());
        unknown[17] = 8;
        assert!(decode(&unknown).is_err());
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
}
