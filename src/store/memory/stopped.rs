//! Why a token stopped working, kept for the newest ended sessions (and rotated tokens): a
//! `401` tells the holder of the real secret, and nobody else, why.
//!
//! Two generations of at most [`KEEP`] entries each: when the newer fills, the older is
//! dropped and the newer takes its place, so at least the newest `KEEP` are always kept. An
//! entry is 16 bytes of id, 16 of the token's digest (enough to tell the real secret from a
//! guess), a time and a reason: 40 bytes, about 54 with the hash table's own, in tables
//! sized for `KEEP` up front.

use std::sync::{Mutex, PoisonError};

use hashbrown::HashMap;
use subtle::ConstantTimeEq;

use crate::domain::{Millis, PresentedToken, SessionId, Stopped, TokenDigest};

/// How many are kept at least.
pub const KEEP: usize = 100_000;
/// How long a reason is told.
const TOLD_FOR_SECONDS: u32 = 24 * 3600;

#[derive(Clone, Copy)]
struct Entry {
    tag: [u8; 16],
    at_seconds: u32,
    why: u8,
}

#[derive(Default)]
struct Generations {
    newer: HashMap<[u64; 2], Entry>,
    older: HashMap<[u64; 2], Entry>,
}

#[derive(Default)]
pub(super) struct StoppedTokens {
    generations: Mutex<Generations>,
}

fn key(id: SessionId) -> [u64; 2] {
    let v = id.as_u128();
    [(v >> 64) as u64, v as u64]
}

fn tag(digest: &TokenDigest) -> [u8; 16] {
    digest.0[..16].try_into().expect("16 of 32 bytes")
}

fn seconds(at: Millis) -> u32 {
    u32::try_from(at.0 / 1000).unwrap_or(u32::MAX)
}

impl StoppedTokens {
    /// The token of session `id` whose secret has `digest` stopped working at `now`.
    pub(super) fn record(&self, id: SessionId, digest: &TokenDigest, why: Stopped, now: Millis) {
        let entry = Entry {
            tag: tag(digest),
            at_seconds: seconds(now),
            why: Stopped::ALL
                .iter()
                .position(|s| *s == why)
                .unwrap_or_default() as u8,
        };
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if generations.newer.len() >= KEEP {
            let newer = std::mem::replace(&mut generations.newer, HashMap::with_capacity(KEEP));
            generations.older = newer;
        } else if generations.newer.capacity() == 0 {
            generations.newer.reserve(KEEP);
        }
        generations.newer.insert(key(id), entry);
    }

    /// Why `token` stopped working, if it did within the last day and is the real one.
    pub(super) fn why(&self, token: &PresentedToken, now: Millis) -> Option<Stopped> {
        let generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = generations
            .newer
            .get(&key(token.id))
            .or_else(|| generations.older.get(&key(token.id)))?;
        let genuine: bool = entry.tag.ct_eq(&tag(&token.digest)).into();
        let recent = seconds(now).saturating_sub(entry.at_seconds) < TOLD_FOR_SECONDS;
        (genuine && recent).then(|| Stopped::ALL[usize::from(entry.why)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Token;

    fn token() -> (Token, PresentedToken) {
        let token = Token::issue();
        let presented = PresentedToken {
            id: token.id(),
            digest: token.digest(),
        };
        (token, presented)
    }

    #[test]
    fn only_the_real_secret_learns_why_and_only_for_a_day() {
        let kept = StoppedTokens::default();
        let (real, presented) = token();
        kept.record(
            real.id(),
            &real.digest(),
            Stopped::Revoked,
            Millis(1_000_000),
        );
        assert_eq!(
            kept.why(&presented, Millis(2_000_000)),
            Some(Stopped::Revoked)
        );
        let guess = PresentedToken {
            id: real.id(),
            digest: Token::generate(real.id()).digest(),
        };
        assert_eq!(kept.why(&guess, Millis(2_000_000)), None);
        let a_day_later = Millis(1_000_000 + 86_400_000);
        assert_eq!(kept.why(&presented, a_day_later), None);
    }

    #[test]
    fn at_least_the_newest_are_kept() {
        let kept = StoppedTokens::default();
        let tokens: Vec<(Token, PresentedToken)> = (0..KEEP + 10).map(|_| token()).collect();
        for (token, _) in &tokens {
            kept.record(token.id(), &token.digest(), Stopped::Logout, Millis(5_000));
        }
        for (_, presented) in &tokens[10..] {
            assert_eq!(kept.why(presented, Millis(6_000)), Some(Stopped::Logout));
        }
        kept.record(
            tokens[0].0.id(),
            &tokens[0].0.digest(),
            Stopped::Admin,
            Millis(5_000),
        );
        let size = std::mem::size_of::<([u64; 2], Entry)>();
        assert!(size <= 40, "{size}");
    }
}
