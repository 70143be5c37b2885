//! Client API keys as gateways know them: an id and the SHA-256 of the key. The key
//! itself is shown once, when the admin API creates it, and stored nowhere.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::KeyLimits;

/// A client key the gateway accepts: its id and the SHA-256 of the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientKey {
    pub id: String,
    /// Hex SHA-256 of the whole key.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "KeyLimits::is_empty")]
    pub limits: KeyLimits,
}

/// The SHA-256 a client key is known by.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_known_by_its_sha256() {
        assert_eq!(
            hex::encode(key_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
