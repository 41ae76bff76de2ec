//! How a session is written in the data directory's files (snapshots and journal records), and
//! a reader that turns any inconsistency into an error, never a panic.
//!
//! A session: `u128` id, 32-byte digest of the token's secret, strings user_id, name,
//! organisation, server_name (`u32` length + UTF-8), `u8` 0/1 + user_agent string, `u8` role
//! count + strings, `u8` 4/6 + address bytes, `u32` timeout, `u64` created ms, `u64` last-active
//! ms; integers little-endian.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::domain::new_session::check_saved;
use crate::domain::{Millis, SavedSession, SessionData, SessionId, TokenDigest};

/// The fewest bytes one session takes (every text empty).
pub const MIN_SESSION_BYTES: usize = 16 + 32 + 4 * 4 + 1 + 1 + 1 + 4 + 4 + 8 + 8;

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a session to `out`.
pub fn write_session(
    out: &mut Vec<u8>,
    digest: &TokenDigest,
    d: &SessionData,
    last_active_at: Millis,
) {
    out.extend_from_slice(&d.id.as_u128().to_le_bytes());
    out.extend_from_slice(&digest.0);
    text(out, &d.user_id);
    text(out, &d.name);
    text(out, &d.organisation);
    text(out, &d.server_name);
    match &d.user_agent {
        Some(ua) => {
            out.push(1);
            text(out, ua);
        }
        None => out.push(0),
    }
    out.push(d.roles.len() as u8);
    for role in d.roles.iter() {
        text(out, role);
    }
    match d.ip_address {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&d.timeout_seconds.to_le_bytes());
    out.extend_from_slice(&d.created_at.0.to_le_bytes());
    out.extend_from_slice(&last_active_at.0.to_le_bytes());
}

/// Reads bytes written by this module's writers.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], at: usize) -> Self {
        Reader { bytes, at }
    }

    /// Whether every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("it ends in the middle of a session")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn u128(&mut self) -> Result<u128, String> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| "a text field is not UTF-8".to_string())
    }

    fn text(&mut self) -> Result<Arc<str>, String> {
        self.str().map(Arc::from)
    }

    /// Passes over a session as [`write_session`] wrote it, reading only its lengths: where
    /// the next one starts, so that sessions can be read in parallel.
    pub fn skip_session(&mut self) -> Result<(), String> {
        self.take(16 + 32)?;
        for _ in 0..4 {
            self.str()?;
        }
        if self.u8()? == 1 {
            self.str()?;
        }
        for _ in 0..self.u8()? {
            self.str()?;
        }
        let address = if self.u8()? == 4 { 4 } else { 16 };
        self.take(address + 4 + 8 + 8)?;
        Ok(())
    }

    /// Where the next byte is read.
    pub fn at(&self) -> usize {
        self.at
    }

    /// A session as [`write_session`] wrote it. A file with the right checksum can still have
    /// been crafted: every field is held to the rules a login is.
    pub fn session(&mut self) -> Result<SavedSession, String> {
        self.session_sharing(&mut Shared::default())
    }

    /// [`Reader::session`], taking the values many sessions repeat (organisation, server name,
    /// user agent, roles) from `shared`: one allocation each, not one per session.
    pub fn session_sharing(&mut self, shared: &mut Shared) -> Result<SavedSession, String> {
        let id = SessionId::from_u128(self.u128()?);
        let digest = TokenDigest(self.array()?);
        let user_id = self.text()?;
        let name = self.text()?;
        let organisation = shared.text(self.str()?);
        let server_name = shared.text(self.str()?);
        let user_agent = match self.u8()? {
            0 => None,
            1 => Some(shared.text(self.str()?)),
            other => return Err(format!("bad user-agent marker {other}")),
        };
        let count = self.u8()?;
        let mut roles = Vec::with_capacity(count as usize);
        for _ in 0..count {
            roles.push(self.str()?);
        }
        let roles = shared.roles(&roles);
        let ip_address = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            other => return Err(format!("bad address family {other}")),
        };
        let timeout_seconds = self.u32()?;
        let created_at = Millis(self.u64()?);
        let last_active_at = Millis(self.u64()?);
        let data = SessionData {
            id,
            user_id,
            name,
            organisation,
            ip_address,
            server_name,
            roles,
            user_agent,
            timeout_seconds,
            created_at,
        };
        check_saved(&data)?;
        Ok(SavedSession {
            digest,
            data,
            last_active_at,
        })
    }
}

/// Values that many sessions repeat, each kept once while a run of sessions is read.
#[derive(Default)]
pub struct Shared {
    texts: HashSet<Arc<str>>,
    roles: HashMap<Vec<Arc<str>>, Arc<[Arc<str>]>>,
}

impl Shared {
    fn text(&mut self, text: &str) -> Arc<str> {
        if let Some(kept) = self.texts.get(text) {
            return kept.clone();
        }
        let kept: Arc<str> = Arc::from(text);
        self.texts.insert(kept.clone());
        kept
    }

    fn roles(&mut self, roles: &[&str]) -> Arc<[Arc<str>]> {
        let roles: Vec<Arc<str>> = roles.iter().map(|r| self.text(r)).collect();
        self.roles
            .entry(roles)
            .or_insert_with_key(|roles| roles.iter().cloned().collect())
            .clone()
    }
}
