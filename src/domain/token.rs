//! Bearer tokens. The server keeps only their SHA-256 digest; the token itself leaves the
//! process once, in the response that creates the session.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// 32 bytes (256 bits) from the OS CSPRNG, base64url without padding: 43 characters.
pub const TOKEN_LEN: usize = 43;

/// A freshly generated token. `Debug` never shows it.
pub struct Token(String);

impl Token {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Token(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }

    /// The token's text, for the one response that returns it.
    pub fn expose(self) -> String {
        self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// SHA-256 of a token: what stores keep and look sessions up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest of a presented token, or `None` when it cannot be one of ours (wrong length or
    /// alphabet): such a token is refused without touching the store.
    pub fn of_presented(token: &str) -> Option<Self> {
        let well_formed = token.len() == TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self::of(token))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_of_256_bits() {
        let token = Token::generate().expose();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: std::collections::HashSet<String> =
            (0..1000).map(|_| Token::generate().expose()).collect();
        assert_eq!(tokens.len(), 1000);
    }

    #[test]
    fn digest_matches_presented_token() {
        let token = Token::generate();
        let digest = token.digest();
        let text = token.expose();
        assert!(TokenDigest::of_presented(&text) == Some(digest));
    }

    #[test]
    fn malformed_tokens_are_not_digested() {
        for bad in ["", "abc", &"a".repeat(44), &format!("{}=", "a".repeat(42))] {
            assert!(TokenDigest::of_presented(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()));
    }
}
