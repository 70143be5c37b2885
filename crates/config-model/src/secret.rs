//! Provider API keys at rest: sealed with ChaCha20-Poly1305 under a key derived
//! from `AIPROX_SECRET_KEY` (SHA-256 of its text), bound to the provider's name so
//! a sealed key cannot be moved to another provider. Only the admin API seals and
//! only gateways open; the database and the config bucket hold sealed keys only.
//!
//! Format: `v1.` then base64url (no padding) of the 12-byte random nonce followed by
//! the ciphertext and its tag.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The environment variable holding the master secret.
pub const ENV: &str = "AIPROX_SECRET_KEY";
/// Or a file holding it (a mounted Kubernetes secret).
pub const ENV_FILE: &str = "AIPROX_SECRET_KEY_FILE";

/// The file `aiprox all` keeps a generated secret in when none is given.
static DEFAULT_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Uses (creating it when missing, readable by its owner only) a file holding a
/// random secret when neither variable is set: a first `aiprox all` can store
/// provider keys without any set-up.
pub fn use_default_file(path: &std::path::Path) -> std::io::Result<()> {
    if std::env::var_os(ENV).is_some() || std::env::var_os(ENV_FILE).is_some() {
        return Ok(());
    }
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(
            &mut options.open(path)?,
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .as_bytes(),
        )?;
    }
    let _ = DEFAULT_FILE.set(path.to_owned());
    Ok(())
}
const MIN_LEN: usize = 32;
const PREFIX: &str = "v1.";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{ENV} (or {ENV_FILE}) is not set: it is needed to store and use provider API keys")]
    Missing,
    #[error("{ENV} is too short: use at least {MIN_LEN} characters (`openssl rand -base64 32`)")]
    TooShort,
    #[error("the sealed API key cannot be opened with this {ENV} (changed, or not the admin's)")]
    Open,
    #[error("cannot seal the API key: {0}")]
    Seal(String),
}

/// The master key.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn new(secret: &SecretString) -> Result<Self, SecretError> {
        let text = secret.expose_secret();
        if text.trim().len() < MIN_LEN {
            return Err(SecretError::TooShort);
        }
        let digest: [u8; 32] = Sha256::digest(text.trim().as_bytes()).into();
        Ok(Self(Key::from(digest)))
    }

    /// The key from `AIPROX_SECRET_KEY`, else the file `AIPROX_SECRET_KEY_FILE`
    /// names, else the default file (see [`use_default_file`]).
    pub fn from_env() -> Result<Self, SecretError> {
        if let Ok(v) = std::env::var(ENV)
            && !v.trim().is_empty()
        {
            return Self::new(&SecretString::from(v));
        }
        let file = std::env::var_os(ENV_FILE)
            .map(std::path::PathBuf::from)
            .or_else(|| DEFAULT_FILE.get().cloned());
        match file.map(std::fs::read_to_string) {
            Some(Ok(text)) if !text.trim().is_empty() => Self::new(&SecretString::from(text)),
            _ => Err(SecretError::Missing),
        }
    }

    /// Seals `api_key` for the provider `provider`.
    pub fn seal(&self, provider: &str, api_key: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Seal(e.to_string()))?;
        let cipher = ChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: api_key.as_bytes(),
                    aad: provider.as_bytes(),
                },
            )
            .map_err(|e| SecretError::Seal(e.to_string()))?;
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what [`SecretKey::seal`] sealed for `provider`.
    pub fn open(&self, provider: &str, sealed: &str) -> Result<SecretString, SecretError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or(SecretError::Open)?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: provider.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Open)
    }
}

/// What may be shown of an API key: its last four characters, when it is long
/// enough that they give nothing away.
pub fn mask(api_key: &str) -> String {
    let chars: Vec<char> = api_key.chars().collect();
    if chars.len() >= 16 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("…{tail}")
    } else {
        "…".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SecretKey {
        SecretKey::new(&SecretString::from(text.to_owned())).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_with_the_same_secret_and_provider() {
        let k = key("0123456789abcdef0123456789abcdef-one");
        let sealed = k.seal("openai", "sk-live-1234567890").unwrap();
        assert!(!sealed.contains("sk-live"));
        assert_eq!(
            k.open("openai", &sealed).unwrap().expose_secret(),
            "sk-live-1234567890"
        );
        assert_eq!(k.open("other", &sealed).unwrap_err(), SecretError::Open);
        let other = key("0123456789abcdef0123456789abcdef-two");
        assert_eq!(
            other.open("openai", &sealed).unwrap_err(),
            SecretError::Open
        );
        assert_eq!(
            k.open("openai", "v1.garbage").unwrap_err(),
            SecretError::Open
        );
        // Two seals of one key differ (random nonce).
        assert_ne!(sealed, k.seal("openai", "sk-live-1234567890").unwrap());
    }

    #[test]
    fn short_secrets_are_refused_and_masks_hide_all_but_four() {
        assert_eq!(
            SecretKey::new(&SecretString::from("short".to_owned())).unwrap_err(),
            SecretError::TooShort
        );
        assert_eq!(mask("sk-proj-abcdefghijklmnop"), "…mnop");
        assert_eq!(mask("short"), "…");
    }
}
