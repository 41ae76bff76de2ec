//! Framed records, as the journal and the webhook outbox write them: `u32` payload length,
//! `u32` CRC-32 of the payload, then the payload (little-endian). Reading tells a torn last
//! write (nothing whole follows the damage) from damage in the middle.

use rayon::prelude::*;

/// The bytes before a payload.
pub const HEADER: usize = 8;
/// No record is larger.
const MAX_RECORD: usize = 16 << 20;

/// Frames the payload that `write` appends to `out`: length, checksum, payload.
pub fn frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    write(out);
    let payload = &out[start + HEADER..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// What a file's bytes hold: its whole records, and where and why it stops early.
pub struct Scan<T> {
    pub records: Vec<T>,
    /// The offset after the last whole record, where the damage (if any) begins.
    pub end: usize,
    pub damage: Option<Damage>,
}

pub struct Damage {
    pub reason: String,
    /// Whether it can be a torn last write: no whole record follows it.
    pub at_tail: bool,
}

/// The payload of the record framed at the start of `bytes`, or why there is none.
fn framed(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < HEADER {
        return Err(format!(
            "a record header is cut short ({} bytes)",
            bytes.len()
        ));
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..HEADER].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD {
        return Err(format!("a record claims {len} bytes"));
    }
    let payload = bytes
        .get(HEADER..HEADER + len)
        .ok_or_else(|| format!("a record of {len} bytes is cut short"))?;
    if crc32fast::hash(payload) != crc {
        return Err("a record's checksum does not match".into());
    }
    Ok(payload)
}

/// Reads every record of `bytes` with `decode`, up to the first damage. The records are
/// framed in order first (lengths and checksums), then decoded in parallel.
pub fn scan<T: Send>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, String> + Sync) -> Scan<T> {
    let mut payloads: Vec<(usize, &[u8])> = Vec::new();
    let mut at = 0;
    let mut framing = None;
    while at < bytes.len() {
        match framed(&bytes[at..]) {
            Ok(payload) => {
                payloads.push((at, payload));
                at += HEADER + payload.len();
            }
            Err(reason) => {
                framing = Some(reason);
                break;
            }
        }
    }
    let decoded: Vec<Result<T, String>> = payloads.par_iter().map(|(_, p)| decode(p)).collect();
    let mut records = Vec::with_capacity(decoded.len());
    for ((start, _), record) in payloads.iter().zip(decoded) {
        match record {
            Ok(record) => records.push(record),
            // Its checksum matches: written whole, so never a torn write.
            Err(e) => {
                return Scan {
                    records,
                    end: *start,
                    damage: Some(Damage {
                        reason: format!("a record cannot be read: {e}"),
                        at_tail: false,
                    }),
                }
            }
        }
    }
    let damage = framing.map(|reason| {
        let rest = &bytes[at..];
        Damage {
            reason,
            // A whole record after it: the damage is not where the last write ended.
            at_tail: !(1..rest.len())
                .any(|from| framed(&rest[from..]).is_ok_and(|p| decode(p).is_ok())),
        }
    });
    Scan {
        records,
        end: at,
        damage,
    }
}
