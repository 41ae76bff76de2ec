//! Standard Webhooks signing: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`,
//! keyed by the secret's bytes (the base64 after `whsec_`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signing secret, never shown.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The fewest random bytes a secret may hold.
pub const MIN_SECRET_BYTES: usize = 32;

impl WebhookSecret {
    /// `whsec_` + base64 of at least [`MIN_SECRET_BYTES`] bytes, as Standard Webhooks'
    /// libraries generate.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_ (the Standard Webhooks form)")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after whsec_ must be base64")?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "holds {} bytes; at least {MIN_SECRET_BYTES} are needed (make one with: echo whsec_$(openssl rand -base64 32))",
                bytes.len()
            ));
        }
        Ok(WebhookSecret(bytes))
    }

    /// The `webhook-signature` header's value for a message.
    pub fn sign(&self, id: &str, timestamp: u64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(secret.contains("24 bytes"), "{secret}");
        let secret = WebhookSecret(STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        for bad in [
            "",
            "abc",
            "whsec_",
            "whsec_!!!!",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad:?}");
        }
        let good = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        assert!(WebhookSecret::parse(&good).is_ok());
    }
}
