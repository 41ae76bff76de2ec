//! Bearer tokens. A token is its session's id (a selector, so that validation is one lookup)
//! followed by a secret of 256 bits; the server keeps only the secret's SHA-256 digest, and the
//! token itself leaves the process once, in the response that creates the session. Knowing a
//! session's id grants nothing without the secret.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SessionId;

/// The selector: the session id's 16 bytes, base64url without padding.
const SELECTOR_LEN: usize = 22;
/// The secret: 32 bytes (256 bits) from the OS CSPRNG, base64url without padding.
const SECRET_LEN: usize = 43;
/// Selector and secret, side by side: 65 URL-safe characters.
pub const TOKEN_LEN: usize = SELECTOR_LEN + SECRET_LEN;

/// A freshly generated token. `Debug` never shows it.
pub struct Token {
    id: SessionId,
    text: String,
    digest: TokenDigest,
}

impl Token {
    /// A new session id and its token, from one read of the OS CSPRNG.
    pub fn issue() -> Self {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let (id, secret) = bytes.split_at(16);
        let id = SessionId::from_random(id.try_into().expect("16 bytes"));
        Self::with_secret(id, secret.try_into().expect("32 bytes"))
    }

    /// A new token for the session `id`.
    pub fn generate(id: SessionId) -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        Self::with_secret(id, secret)
    }

    fn with_secret(id: SessionId, secret: [u8; 32]) -> Self {
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let mut text = URL_SAFE_NO_PAD.encode(id.as_u128().to_be_bytes());
        text.push_str(&secret);
        Token {
            id,
            digest: TokenDigest::of_secret(&secret),
            text,
        }
    }

    /// The session this token names.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The digest of the secret part: what a store keeps.
    pub fn digest(&self) -> TokenDigest {
        self.digest
    }

    /// The token's text, for the one response that returns it.
    pub fn expose(self) -> String {
        self.text
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// SHA-256 of a token's secret part: what stores keep and compare, in constant time.
#[derive(Clone, Copy)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    fn of_secret(secret: &str) -> Self {
        TokenDigest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether two digests are equal, in time that does not depend on where they differ.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for TokenDigest {}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// A token as a client presented it: the session it names and the digest of its secret.
#[derive(Clone, Copy, Debug)]
pub struct PresentedToken {
    pub id: SessionId,
    pub digest: TokenDigest,
}

impl PresentedToken {
    /// `None` when the text cannot be one of our tokens (wrong length or alphabet): such a token
    /// is refused without touching the store.
    pub fn parse(token: &str) -> Option<Self> {
        let well_formed = token.len() == TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return None;
        }
        let (selector, secret) = token.split_at(SELECTOR_LEN);
        let mut id = [0u8; 16];
        // 22 characters carry 132 bits; the decoder refuses any whose last 4 are not zero, so
        // each id has exactly one selector.
        let decoded = URL_SAFE_NO_PAD.decode_slice(selector, &mut id).ok()?;
        (decoded == 16).then_some(())?;
        Some(PresentedToken {
            id: SessionId::from_u128(u128::from_be_bytes(id)),
            digest: TokenDigest::of_secret(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_with_a_256_bit_secret() {
        let id = SessionId::generate();
        let token = Token::generate(id).expose();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&token[SELECTOR_LEN..])
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn an_issued_token_names_a_version_4_id() {
        let token = Token::issue();
        let id = token.id();
        assert_eq!(&id.to_string()[14..15], "4");
        assert_eq!(PresentedToken::parse(&token.expose()).unwrap().id, id);
    }

    #[test]
    fn secrets_do_not_repeat() {
        let id = SessionId::generate();
        let tokens: std::collections::HashSet<String> =
            (0..1000).map(|_| Token::generate(id).expose()).collect();
        assert_eq!(tokens.len(), 1000);
    }

    #[test]
    fn a_presented_token_names_its_session_and_digest() {
        let id = SessionId::generate();
        let token = Token::generate(id);
        let digest = token.digest();
        let presented = PresentedToken::parse(&token.expose()).unwrap();
        assert_eq!(presented.id, id);
        assert!(presented.digest.matches(&digest));
    }

    #[test]
    fn another_secret_for_the_same_id_does_not_match() {
        let id = SessionId::generate();
        let (a, b) = (Token::generate(id), Token::generate(id));
        let presented = PresentedToken::parse(&b.expose()).unwrap();
        assert!(!presented.digest.matches(&a.digest()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate(SessionId::generate()).expose();
        let non_canonical = format!("{}B{}", &good[..21], &good[22..]);
        for bad in [
            "",
            "abc",
            &good[1..],
            &format!("{good}a"),
            &format!("{}=", &good[1..]),
            &good.replace(|c: char| c.is_ascii_digit(), "+"),
            &non_canonical,
        ] {
            if bad == good {
                continue;
            }
            assert!(PresentedToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::generate(SessionId::generate());
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()));
    }
}
