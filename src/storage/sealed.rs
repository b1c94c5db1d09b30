//! Encryption at rest: version objects sealed with AES-256-GCM before they
//! leave the worker.
//!
//! A sealed object is `IWSEAL1\0`, one byte of key-id length, the key id,
//! a random 96-bit nonce, then the ciphertext and its tag. The header and
//! the object's storage key are authenticated as associated data, so a
//! sealed object cannot be swapped for another or relabelled. The first key
//! seals, every key opens, so keys can be rotated. Manifests (`.json`) stay
//! readable without keys: they hold no pixels and no user text, and record
//! the key id. Key material is zeroized when dropped and never logged.
//!
//! Objects written piece by piece (export archives) are sealed segment by
//! segment instead, in the streamed format of [`super::sealed_stream`];
//! reading opens either format.

use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::sealed_stream::{self, is_stream_sealed, SealingWriter};
use super::{ObjectWriter, OnDeleted, Storage, StorageError};
use crate::keys::{parse_key_list, KeyListError};

const MAGIC: &[u8; 8] = b"IWSEAL1\0";
const NONCE_LEN: usize = 12;

/// One 32-byte key and its id.
struct Key {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

/// The configured keys; the first one seals.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<Vec<Key>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("ids", &ids).finish()
    }
}

/// A malformed key list. Never shows key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The list is not `id:secret` pairs.
    #[error("encryption keys must be `id:BASE64` pairs of 32-byte keys, separated by commas")]
    List(#[from] KeyListError),
    /// A key id or key is unusable, or there is none.
    #[error("encryption keys must be `id:BASE64` pairs of 32-byte keys, separated by commas: {0}")]
    Key(String),
}

impl Keyring {
    /// Parse `k1:BASE64[,k0:BASE64]`.
    pub fn parse(list: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (id, b64) in parse_key_list(list)? {
            if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(KeyringError::Key(
                    "a key id must be 1 to 64 printable characters".into(),
                ));
            }
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| KeyringError::Key(format!("key {id} is not base64")))?,
            );
            let bytes: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                KeyringError::Key(format!("key {id} is {} bytes, not 32", raw.len()))
            })?;
            keys.push(Key {
                id: id.to_string(),
                bytes: Zeroizing::new(bytes),
            });
        }
        if keys.is_empty() {
            return Err(KeyringError::Key("no key given".into()));
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// The id of the key that seals.
    pub(crate) fn sealing_id(&self) -> &str {
        &self.keys[0].id
    }

    pub(super) fn cipher(&self, id: &str) -> Option<Aes256Gcm> {
        let k = self.keys.iter().find(|k| k.id == id)?;
        Some(Aes256Gcm::new_from_slice(k.bytes.as_slice()).expect("32-byte key"))
    }

    /// Seal `data` stored under `key`.
    pub(crate) fn seal(&self, key: &str, data: &[u8]) -> Vec<u8> {
        let id = self.sealing_id();
        let mut header = MAGIC.to_vec();
        header.push(id.len() as u8);
        header.extend_from_slice(id.as_bytes());
        let nonce = Nonce::generate();
        let aad = [header.as_slice(), key.as_bytes()].concat();
        let sealed = self
            .cipher(id)
            .expect("the sealing key exists")
            .encrypt(
                &nonce,
                Payload {
                    msg: data,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory sizes");
        let mut out = header;
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        out
    }
}

/// Whether `data` is a sealed object.
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// Open a sealed object stored under `key` (`keys` may be absent).
pub fn open(keys: Option<&Keyring>, key: &str, data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let bad = |why: &str| StorageError::Sealed(format!("{key}: {why}"));
    let rest = &data[MAGIC.len()..];
    let (&id_len, rest) = rest.split_first().ok_or_else(|| bad("truncated header"))?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN + 16 {
        return Err(bad("truncated"));
    }
    let id = std::str::from_utf8(&rest[..id_len]).map_err(|_| bad("bad key id"))?;
    let header_len = MAGIC.len() + 1 + id_len;
    let nonce_bytes = &rest[id_len..id_len + NONCE_LEN];
    let body = &rest[id_len + NONCE_LEN..];
    let cipher = keys.and_then(|k| k.cipher(id)).ok_or_else(|| {
        bad(&format!(
            "sealed with key id {id:?}, which is not configured"
        ))
    })?;
    let nonce = Nonce::try_from(nonce_bytes).map_err(|_| bad("bad nonce"))?;
    let aad = [&data[..header_len], key.as_bytes()].concat();
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .map_err(|_| bad("authentication failed: the object was altered or the key is wrong"))
}

/// A storage that seals version objects on write and opens sealed objects
/// on read; manifests (`.json`) pass through in the clear.
#[derive(Debug)]
pub struct SealedStorage {
    inner: Arc<dyn Storage>,
    keys: Keyring,
}

impl SealedStorage {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Storage>, keys: Keyring) -> Self {
        Self { inner, keys }
    }
}

fn is_manifest(key: &str) -> bool {
    key.ends_with(".json")
}

#[async_trait]
impl Storage for SealedStorage {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
        // Sealing adds at most 8 + 1 + 64 + 12 + 16 bytes; the streamed
        // format 16 bytes per 64 KiB segment and one more tag.
        let overhead = 117 + max_bytes / 4096;
        let mut data = self
            .inner
            .get(key, max_bytes.saturating_add(overhead))
            .await?;
        if is_sealed(&data) {
            data = open(Some(&self.keys), key, &data)?;
        } else if is_stream_sealed(&data) {
            data = sealed_stream::open(Some(&self.keys), key, &data)?;
        }
        if data.len() as u64 > max_bytes {
            Err(StorageError::TooLarge {
                key: key.to_string(),
                size: data.len() as u64,
                max: max_bytes,
            })
        } else {
            Ok(data)
        }
    }

    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        if is_manifest(key) {
            return self.inner.put(key, data).await;
        }
        let sealed = self.keys.seal(key, data);
        self.inner.put(key, &sealed).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.delete(key).await
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(dir).await
    }

    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError> {
        self.inner.delete_tree(dir, deleted).await
    }

    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        self.inner.list_tree(dir).await
    }

    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let inner = self.inner.put_streamed(key).await?;
        if is_manifest(key) {
            return Ok(inner);
        }
        Ok(Box::new(SealingWriter::new(&self.keys, key, inner)))
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn describe(&self) -> String {
        format!(
            "{} (sealed with key {})",
            self.inner.describe(),
            self.keys.sealing_id()
        )
    }

    fn sealing_key_id(&self) -> Option<String> {
        Some(self.keys.sealing_id().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(list: &str) -> Keyring {
        Keyring::parse(list).unwrap()
    }

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn seal_open_rotate_and_tamper() {
        let k1 = ring(K1);
        let sealed = k1.seal("a/b/v1.png", b"pixels");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"pixels"));
        assert_eq!(open(Some(&k1), "a/b/v1.png", &sealed).unwrap(), b"pixels");
        // Rotation: k2 seals, k1 still opens old objects.
        let both = ring(&format!("{K2},{K1}"));
        assert_eq!(both.sealing_id(), "k2");
        assert_eq!(open(Some(&both), "a/b/v1.png", &sealed).unwrap(), b"pixels");
        // Missing key, no keys, wrong storage key, tampered bytes.
        assert!(matches!(
            open(Some(&ring(K2)), "a/b/v1.png", &sealed),
            Err(StorageError::Sealed(_))
        ));
        assert!(matches!(
            open(None, "a/b/v1.png", &sealed),
            Err(StorageError::Sealed(_))
        ));
        assert!(matches!(
            open(Some(&k1), "a/b/v2.png", &sealed),
            Err(StorageError::Sealed(_))
        ));
        let mut t = sealed.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open(Some(&k1), "a/b/v1.png", &t),
            Err(StorageError::Sealed(_))
        ));
        // Nonces are random: sealing twice differs.
        assert_ne!(k1.seal("a/b/v1.png", b"pixels"), sealed);
    }

    #[test]
    fn key_lists_are_checked_and_never_printed() {
        assert!(Keyring::parse("k1:c2hvcnQ=").is_err());
        assert!(Keyring::parse("nocolon").is_err());
        assert!(Keyring::parse("").is_err());
        let k = ring(K1);
        assert!(!format!("{k:?}").contains("AQEB"));
    }
}
