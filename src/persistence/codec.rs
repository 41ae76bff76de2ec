//! How a session is written in the data directory's files (snapshots and journal records), and
//! a reader that turns any inconsistency into an error, never a panic.
//!
//! A session: `u128` id, 32-byte digest of the token's secret, strings user_id, name,
//! organisation, server_name (`u32` length + UTF-8), `u8` 0/1 + user_agent string, `u8` role
//! count + strings, `u8` 4/6 + address bytes, `u32` timeout, `u64` created ms, `u64` last-active
//! ms; integers little-endian. Then, in the [`Form::Full`] form (snapshot version 4, the
//! journal's second kind of created record): `u64` authenticated ms, `u8` assurance level,
//! `u64` reauthenticate-by ms (`u64::MAX`: none), `u8` 0/4/6 + the last reported address (0:
//! the login's), `u8` 0/1 + the device (`u8` kind, and browser and os each as `u8` 0/1 +
//! string). A session in the [`Form::Basic`] form, from before these, was authenticated at
//! its creation, at level 1, from its login's address, and its device is read from its user
//! agent when it is loaded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::domain::new_session::check_saved;
use crate::domain::{
    Device, DeviceKind, Millis, SavedSession, SessionData, SessionId, TokenDigest,
};

/// The fewest bytes one session takes (every text empty).
pub const MIN_SESSION_BYTES: usize = 16 + 32 + 4 * 4 + 1 + 1 + 1 + 4 + 4 + 8 + 8;

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn optional_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            text(out, s);
        }
        None => out.push(0),
    }
}

/// Appends an address: `u8` 4 or 6, then its bytes.
pub fn write_address(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// Which form sessions were written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Without the authentication, the last address and the device.
    Basic,
    Full,
}

/// Never: a session whose authentication does not become too old.
const NEVER: u64 = u64::MAX;

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
    optional_text(out, d.user_agent.as_deref());
    out.push(d.roles.len() as u8);
    for role in d.roles.iter() {
        text(out, role);
    }
    write_address(out, d.ip_address);
    out.extend_from_slice(&d.timeout_seconds.to_le_bytes());
    out.extend_from_slice(&d.created_at.0.to_le_bytes());
    out.extend_from_slice(&last_active_at.0.to_le_bytes());
    out.extend_from_slice(&d.authenticated_at.0.to_le_bytes());
    out.push(d.assurance_level);
    out.extend_from_slice(&d.reauthenticate_by.map_or(NEVER, |by| by.0).to_le_bytes());
    match d.last_ip_address == d.ip_address {
        true => out.push(0),
        false => write_address(out, d.last_ip_address),
    }
    match &d.device {
        Some(device) => {
            out.push(1);
            let kind = DeviceKind::ALL.iter().position(|k| *k == device.kind);
            out.push(kind.unwrap_or_default() as u8);
            optional_text(out, device.browser.as_deref());
            optional_text(out, device.os.as_deref());
        }
        None => out.push(0),
    }
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

    fn optional_str(&mut self) -> Result<Option<&'a str>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            other => Err(format!("bad text marker {other}")),
        }
    }

    pub fn address(&mut self) -> Result<IpAddr, String> {
        match self.u8()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            other => Err(format!("bad address family {other}")),
        }
    }

    /// Passes over a session as [`write_session`] wrote it (in `form`), reading only its
    /// lengths: where the next one starts, so that sessions can be read in parallel.
    pub fn skip_session(&mut self, form: Form) -> Result<(), String> {
        self.take(16 + 32)?;
        for _ in 0..4 {
            self.str()?;
        }
        self.optional_str()?;
        for _ in 0..self.u8()? {
            self.str()?;
        }
        let address = if self.u8()? == 4 { 4 } else { 16 };
        self.take(address + 4 + 8 + 8)?;
        if form == Form::Full {
            self.take(8 + 1 + 8)?;
            if self.u8()? != 0 {
                self.at -= 1;
                self.address()?;
            }
            if self.u8()? == 1 {
                self.u8()?;
                self.optional_str()?;
                self.optional_str()?;
            }
        }
        Ok(())
    }

    /// Where the next byte is read.
    pub fn at(&self) -> usize {
        self.at
    }

    /// A session as [`write_session`] wrote it. A file with the right checksum can still have
    /// been crafted: every field is held to the rules a login is.
    pub fn session(&mut self, form: Form) -> Result<SavedSession, String> {
        self.session_sharing(form, &mut Shared::default())
    }

    /// [`Reader::session`], taking the values many sessions repeat (organisation, server name,
    /// user agent, roles, devices) from `shared`: one allocation each, not one per session.
    pub fn session_sharing(
        &mut self,
        form: Form,
        shared: &mut Shared,
    ) -> Result<SavedSession, String> {
        let id = SessionId::from_u128(self.u128()?);
        let digest = TokenDigest(self.array()?);
        let user_id = self.text()?;
        let name = self.text()?;
        let organisation = shared.text(self.str()?);
        let server_name = shared.text(self.str()?);
        let user_agent = self.optional_str()?.map(|agent| shared.text(agent));
        let count = self.u8()?;
        let mut roles = Vec::with_capacity(count as usize);
        for _ in 0..count {
            roles.push(self.str()?);
        }
        let roles = shared.roles(&roles);
        let ip_address = self.address()?;
        let timeout_seconds = self.u32()?;
        let created_at = Millis(self.u64()?);
        let last_active_at = Millis(self.u64()?);
        let mut data = SessionData {
            id,
            user_id,
            name,
            organisation,
            ip_address,
            server_name,
            roles,
            device: None,
            user_agent,
            timeout_seconds,
            created_at,
            authenticated_at: created_at,
            assurance_level: 1,
            reauthenticate_by: None,
            last_ip_address: ip_address,
        };
        match form {
            Form::Basic => data.device = shared.device_of(data.user_agent.as_deref()),
            Form::Full => {
                data.authenticated_at = Millis(self.u64()?);
                data.assurance_level = self.u8()?;
                data.reauthenticate_by = Some(self.u64()?).filter(|&by| by != NEVER).map(Millis);
                if self.u8()? != 0 {
                    self.at -= 1;
                    data.last_ip_address = self.address()?;
                }
                data.device = match self.u8()? {
                    0 => None,
                    1 => {
                        let kind = self.u8()?;
                        let kind = *DeviceKind::ALL
                            .get(usize::from(kind))
                            .ok_or_else(|| format!("bad device kind {kind}"))?;
                        let browser = self.optional_str()?.map(|b| shared.text(b));
                        let os = self.optional_str()?.map(|o| shared.text(o));
                        Some(shared.device(Device { browser, os, kind }))
                    }
                    other => return Err(format!("bad device marker {other}")),
                };
            }
        }
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
    devices: HashSet<Arc<Device>>,
    /// Devices read from user agents (of sessions saved before devices were).
    agents: HashMap<Arc<str>, Option<Arc<Device>>>,
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

    fn device(&mut self, device: Device) -> Arc<Device> {
        if let Some(kept) = self.devices.get(&device) {
            return kept.clone();
        }
        let kept = Arc::new(device);
        self.devices.insert(kept.clone());
        kept
    }

    /// The device a user agent tells of, read once per agent.
    fn device_of(&mut self, agent: Option<&str>) -> Option<Arc<Device>> {
        let agent = agent?;
        if let Some(device) = self.agents.get(agent) {
            return device.clone();
        }
        let device = Device::of(agent).map(|d| self.device(d));
        self.agents.insert(agent.into(), device.clone());
        device
    }

    fn roles(&mut self, roles: &[&str]) -> Arc<[Arc<str>]> {
        let roles: Vec<Arc<str>> = roles.iter().map(|r| self.text(r)).collect();
        self.roles
            .entry(roles)
            .or_insert_with_key(|roles| roles.iter().cloned().collect())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session written before authentication, addresses and devices were kept reads as
    /// authenticated at its creation, at level 1, from its login's address, its device read
    /// from its user agent.
    #[test]
    fn a_session_in_the_basic_form_gets_its_logins_defaults() {
        let agent =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/131.0.0.0 Safari/537.36";
        let data = SessionData {
            id: SessionId::generate(),
            user_id: "u".into(),
            name: "N".into(),
            organisation: "O".into(),
            ip_address: "10.0.0.1".parse().unwrap(),
            server_name: "S".into(),
            roles: Arc::from(Vec::<Arc<str>>::new()),
            user_agent: Some(agent.into()),
            device: None,
            timeout_seconds: 60,
            created_at: Millis(1_000),
            authenticated_at: Millis(1_000),
            assurance_level: 1,
            reauthenticate_by: None,
            last_ip_address: "10.0.0.1".parse().unwrap(),
        };
        let mut bytes = Vec::new();
        write_session(&mut bytes, &TokenDigest([7; 32]), &data, Millis(2_000));
        // The full form's tail: authenticated, level, reauthenticate-by, no other address, no
        // device.
        bytes.truncate(bytes.len() - (8 + 1 + 8 + 1 + 1));
        let read = Reader::new(&bytes, 0).session(Form::Basic).unwrap();
        assert_eq!(read.data.authenticated_at, Millis(1_000));
        assert_eq!(read.data.assurance_level, 1);
        assert_eq!(read.data.last_ip_address, data.ip_address);
        assert_eq!(
            read.data.device.unwrap().browser.as_deref(),
            Some("Chrome 131")
        );
        assert!(Reader::new(&bytes, 0).session(Form::Full).is_err());
    }
}
