//! Encryption at rest for objects too large to hold in memory (export
//! archives): the STREAM construction (Hoang, Reyhanitabar, Rogaway and
//! Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance"), through RustCrypto's `aead-stream`, over
//! AES-256-GCM.
//!
//! A streamed sealed object is `IWSEAL2\0`, one byte of key-id length, the
//! key id and a random 7-byte nonce prefix, then segments: every 64 KiB of
//! plaintext is sealed on its own, with its tag, under the nonce prefix, a
//! 32-bit segment counter and a last-segment flag. The header and the
//! object's storage key are every segment's associated data. Segments
//! cannot be reordered, dropped, truncated at a boundary (the last one is
//! marked) or moved to another object; a writer holds one segment at a
//! time, whatever the object's size.

use aead_stream::{DecryptorBE32, EncryptorBE32, StreamBE32};
use aes_gcm::aead::{Generate, Payload};
use aes_gcm::Aes256Gcm;
use async_trait::async_trait;

use super::sealed::Keyring;
use super::{ObjectWriter, StorageError};

/// The header's first bytes.
pub(super) const STREAM_MAGIC: &[u8; 8] = b"IWSEAL2\0";
/// Plaintext bytes per segment.
const SEGMENT: usize = 64 << 10;
/// AES-GCM's tag, after each segment's ciphertext.
const TAG: usize = 16;
/// The nonce prefix: AES-GCM's 12 bytes less STREAM's 5 (counter, flag).
const PREFIX: usize = 7;

type Prefix = aead_stream::Nonce<Aes256Gcm, StreamBE32<Aes256Gcm>>;

/// Whether `data` is a streamed sealed object.
pub fn is_stream_sealed(data: &[u8]) -> bool {
    data.starts_with(STREAM_MAGIC)
}

/// The header of an object sealed with key `id`, and its nonce prefix.
fn header(id: &str) -> (Vec<u8>, [u8; PREFIX]) {
    let prefix = <[u8; PREFIX]>::generate();
    let mut h = STREAM_MAGIC.to_vec();
    h.push(id.len() as u8);
    h.extend_from_slice(id.as_bytes());
    h.extend_from_slice(&prefix);
    (h, prefix)
}

/// A writer that seals segment by segment into `inner`.
pub(super) struct SealingWriter {
    inner: Box<dyn ObjectWriter>,
    encryptor: EncryptorBE32<Aes256Gcm>,
    /// The header (written first) and the storage key.
    aad: Vec<u8>,
    header_len: usize,
    header_written: bool,
    /// Plaintext not sealed yet: at most one segment, kept until more comes
    /// so that the last segment is known when the writer finishes.
    pending: Vec<u8>,
}

impl SealingWriter {
    /// Seal what is written for `key` with the keyring's sealing key.
    pub(super) fn new(keys: &Keyring, key: &str, inner: Box<dyn ObjectWriter>) -> Self {
        let id = keys.sealing_id();
        let (head, prefix) = header(id);
        let cipher = keys.cipher(id).expect("the sealing key exists");
        let encryptor = EncryptorBE32::from_aead(cipher, &Prefix::from(prefix));
        Self {
            inner,
            encryptor,
            header_len: head.len(),
            aad: [head.as_slice(), key.as_bytes()].concat(),
            header_written: false,
            pending: Vec::with_capacity(SEGMENT),
        }
    }

    async fn write_header(&mut self) -> Result<(), StorageError> {
        if !self.header_written {
            self.header_written = true;
            let head = self.aad[..self.header_len].to_vec();
            self.inner.write(&head).await?;
        }
        Ok(())
    }
}

fn seal_failed() -> StorageError {
    StorageError::Sealed("a streamed object exceeds 2^32 segments".into())
}

#[async_trait]
impl ObjectWriter for SealingWriter {
    async fn write(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        self.write_header().await?;
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                // More follows, so the full segment is not the last.
                let sealed = self
                    .encryptor
                    .encrypt_next(Payload {
                        msg: &self.pending,
                        aad: &self.aad,
                    })
                    .map_err(|_| seal_failed())?;
                self.pending.clear();
                self.inner.write(&sealed).await?;
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        self.write_header().await?;
        let Self {
            mut inner,
            encryptor,
            aad,
            pending,
            ..
        } = *self;
        let sealed = encryptor
            .encrypt_last(Payload {
                msg: &pending,
                aad: &aad,
            })
            .map_err(|_| seal_failed())?;
        inner.write(&sealed).await?;
        inner.finish().await
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

/// Open a whole streamed sealed object stored under `key`.
pub(super) fn open(
    keys: Option<&Keyring>,
    key: &str,
    data: &[u8],
) -> Result<Vec<u8>, StorageError> {
    let bad = |why: &str| StorageError::Sealed(format!("{key}: {why}"));
    let rest = &data[STREAM_MAGIC.len()..];
    let (&id_len, rest) = rest.split_first().ok_or_else(|| bad("truncated header"))?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + PREFIX + TAG {
        return Err(bad("truncated"));
    }
    let id = std::str::from_utf8(&rest[..id_len]).map_err(|_| bad("bad key id"))?;
    let header_len = STREAM_MAGIC.len() + 1 + id_len + PREFIX;
    let prefix: [u8; PREFIX] = rest[id_len..id_len + PREFIX]
        .try_into()
        .expect("checked length");
    let cipher = keys.and_then(|k| k.cipher(id)).ok_or_else(|| {
        bad(&format!(
            "sealed with key id {id:?}, which is not configured"
        ))
    })?;
    let aad = [&data[..header_len], key.as_bytes()].concat();
    let mut decryptor = DecryptorBE32::from_aead(cipher, &Prefix::from(prefix));
    let altered = || bad("authentication failed: the object was altered or the key is wrong");
    let mut body = &data[header_len..];
    let mut out = Vec::with_capacity(body.len());
    // Every segment but the last is exactly SEGMENT + TAG bytes.
    while body.len() > SEGMENT + TAG {
        let (segment, next) = body.split_at(SEGMENT + TAG);
        let plain = decryptor
            .decrypt_next(Payload {
                msg: segment,
                aad: &aad,
            })
            .map_err(|_| altered())?;
        out.extend_from_slice(&plain);
        body = next;
    }
    let plain = decryptor
        .decrypt_last(Payload {
            msg: body,
            aad: &aad,
        })
        .map_err(|_| altered())?;
    out.extend_from_slice(&plain);
    Ok(out)
}
