//! Storage key validation: image ids, object names and versions; and the
//! `id:secret` lists that configure signing and encryption keys.
//!
//! Every key a job names is checked here before storage is touched; anything
//! that does not match the grammar of docs/contract.md ("Storage layout") is
//! `forbidden_key`. The checks are whitelists, so traversal (`..`), absolute
//! paths, backslashes, NUL bytes and Unicode look-alikes are all refused.
//!
//! [`parse_key_list`] splits `--signing-keys` and `--encryption-keys`
//! (`k1:secret,k0:secret`); each user checks the secrets its own way.

use crate::error::JobError;

/// Why an `id:secret[,id:secret…]` list is malformed. It names the entry by
/// position only, never its text, which holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyListError {
    /// An entry without the `:` between id and secret.
    #[error("entry {0} has no `:`")]
    NoColon(usize),
    /// An entry whose id or secret is empty.
    #[error("entry {0} has an empty key id or secret")]
    Empty(usize),
}

/// Split a key list `id:secret[,id:secret…]` into `(id, secret)` pairs, in
/// order. Entries are separated by commas and trimmed; empty entries are
/// skipped, so an empty list gives no pairs. Each entry splits at its first
/// `:` (secrets may contain more). Entries are numbered from 1 in errors.
pub(crate) fn parse_key_list(list: &str) -> Result<Vec<(&str, &str)>, KeyListError> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| {
            let (id, secret) = entry.split_once(':').ok_or(KeyListError::NoColon(i + 1))?;
            if id.is_empty() || secret.is_empty() {
                return Err(KeyListError::Empty(i + 1));
            }
            Ok((id, secret))
        })
        .collect()
}

/// Longest image id, in characters.
pub(crate) const MAX_IMAGE_LEN: usize = 256;
/// Longest version name, which is also the longest object name stem.
pub(crate) const MAX_VERSION_LEN: usize = 64;
/// Longest object name extension (after the `.`).
pub(crate) const MAX_EXT_LEN: usize = 10;
/// Longest object name: a stem, a `.` and an extension.
pub(crate) const MAX_OBJECT_NAME_LEN: usize = MAX_VERSION_LEN + 1 + MAX_EXT_LEN;

/// The characters of an image id segment, a version name and an object name
/// stem ([`is_segment_char`]), as a regex class.
const SEGMENT_CLASS: &str = "[A-Za-z0-9_-]";
/// The characters of an object name extension, as a regex class.
const EXT_CLASS: &str = "[A-Za-z0-9]";

/// Line terminators, as a regex class of the characters themselves (not
/// escapes, which regex dialects spell differently). A string holding one
/// is never a valid id, key or colour, but the schemas' `^...$` patterns
/// alone let a final one through in validators whose `$` also matches
/// before a final line break (Python's `re`, which `jsonschema` uses;
/// Java's), so the schemas refuse them separately ([`line_break_refusal`]).
pub(crate) const LINE_BREAKS: &str = "[\n\r\u{85}\u{2028}\u{2029}]";

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// JSON Schema `pattern` of one name: at least one of `[A-Za-z0-9_-]` (job
/// ids and version names; their lengths are separate `minLength` and
/// `maxLength`).
pub(crate) fn name_pattern() -> String {
    format!("^{SEGMENT_CLASS}+$")
}

/// JSON Schema `pattern` of an image id ([`ImageId::parse`]): segments joined
/// by `/` (its length, [`MAX_IMAGE_LEN`], is a separate `maxLength`).
pub(crate) fn image_pattern() -> String {
    format!("^{SEGMENT_CLASS}+(?:/{SEGMENT_CLASS}+)*$")
}

/// The object name grammar of [`ObjectName::parse`] as a regex, unanchored.
fn object_name_regex() -> String {
    format!("{SEGMENT_CLASS}{{1,{MAX_VERSION_LEN}}}(?:\\.{EXT_CLASS}{{1,{MAX_EXT_LEN}}})?")
}

/// JSON Schema `pattern` of an object name ([`ObjectName::parse`]).
pub(crate) fn object_name_pattern() -> String {
    format!("^{}$", object_name_regex())
}

/// JSON Schema `pattern` of an object reference: an object name, or
/// `image/object` ([`parse_foreign_key`]) with the image at most
/// [`MAX_IMAGE_LEN`] characters. The image's segments are not checked for
/// emptiness here (`a//b`): [`foreign_key_refusal`] refuses `//`. Whether the
/// image lies under a configured prefix is not part of the grammar.
pub(crate) fn object_ref_pattern() -> String {
    let image = format!(
        "{SEGMENT_CLASS}(?:[A-Za-z0-9_/-]{{0,{}}}{SEGMENT_CLASS})?",
        MAX_IMAGE_LEN - 2
    );
    format!("^(?:{image}/)?{}$", object_name_regex())
}

/// The JSON Schema a key or id field puts under `not`: strings holding a
/// line break ([`LINE_BREAKS`]). Other types pass, so `null` stays allowed
/// where the field is optional.
pub(crate) fn line_break_refusal() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": LINE_BREAKS })
}

/// [`line_break_refusal`] for an [`object_ref_pattern`] field, which also
/// refuses the empty image segment (`//`) that the pattern lets through.
pub(crate) fn foreign_key_refusal() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": format!("//|{LINE_BREAKS}") })
}

/// A validated image id: `[A-Za-z0-9_-]+` segments joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageId(String);

impl ImageId {
    /// Validate an image id, and check it against the allow-list of prefixes
    /// (empty list: everything allowed).
    pub fn parse(s: &str, allow_prefixes: &[String]) -> Result<Self, JobError> {
        if s.is_empty() || s.len() > MAX_IMAGE_LEN {
            return Err(JobError::forbidden_key(format!(
                "image must be 1..={MAX_IMAGE_LEN} characters"
            )));
        }
        if !s
            .split('/')
            .all(|seg| !seg.is_empty() && seg.chars().all(is_segment_char))
        {
            return Err(JobError::forbidden_key(
                "image must be segments of [A-Za-z0-9_-] joined by '/', with no empty segment",
            ));
        }
        if !allow_prefixes.is_empty() && !allow_prefixes.iter().any(|p| prefix_matches(s, p)) {
            return Err(JobError::forbidden_key(
                "image is outside the prefixes this worker may touch",
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The storage key of an object inside this image's folder.
    pub fn key(&self, object: &ObjectName) -> String {
        format!("{}/{}", self.0, object.as_str())
    }
}

/// Whether `key` lies under `prefix`, matching whole segments: `users/` and
/// `users` both allow `users/1` but neither allows `users2/1`.
pub(crate) fn prefix_matches(key: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty()
        || key == p
        || key
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A validated object name inside an image folder: `name` or `name.ext`, with
/// `name` in `[A-Za-z0-9_-]{1,64}` ([`MAX_VERSION_LEN`]) and `ext` in
/// `[A-Za-z0-9]{1,10}` ([`MAX_EXT_LEN`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName(String);

impl ObjectName {
    /// Validate an object name.
    pub fn parse(s: &str) -> Result<Self, JobError> {
        let (stem, ext) = match s.split_once('.') {
            Some((stem, ext)) => (stem, Some(ext)),
            None => (s, None),
        };
        let stem_ok =
            !stem.is_empty() && stem.len() <= MAX_VERSION_LEN && stem.chars().all(is_segment_char);
        let ext_ok = ext.is_none_or(|e| {
            !e.is_empty() && e.len() <= MAX_EXT_LEN && e.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !(stem_ok && ext_ok) {
            return Err(JobError::forbidden_key(format!(
                "object name must be [A-Za-z0-9_-]{{1,{MAX_VERSION_LEN}}} with an optional .ext of [A-Za-z0-9]{{1,{MAX_EXT_LEN}}}",
            )));
        }
        Ok(Self(s.to_string()))
    }

    /// The object name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the extension: the version name.
    pub fn stem(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(s, _)| s)
    }

    /// The manifest object that describes this object: `{stem}.json`.
    pub fn manifest(&self) -> ObjectName {
        ObjectName(format!("{}.json", self.stem()))
    }
}

/// Validate a version name: `[A-Za-z0-9_-]{1,64}`.
pub(crate) fn validate_version(s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.len() > MAX_VERSION_LEN || !s.chars().all(is_segment_char) {
        return Err(JobError::forbidden_key(format!(
            "version must be [A-Za-z0-9_-]{{1,{MAX_VERSION_LEN}}}",
        )));
    }
    Ok(())
}

/// Validate a full storage key of another image's object (overlays from a
/// watermark prefix): `image/object`, with the image under an allowed prefix.
pub(crate) fn parse_foreign_key(
    s: &str,
    allowed: &[String],
) -> Result<(ImageId, ObjectName), JobError> {
    let (image, object) = s
        .rsplit_once('/')
        .ok_or_else(|| JobError::forbidden_key("overlay key must be image/object"))?;
    let object = ObjectName::parse(object)?;
    if allowed.is_empty() {
        return Err(JobError::forbidden_key(
            "overlay from another image needs a configured watermark prefix",
        ));
    }
    let image = ImageId::parse(image, allowed)?;
    Ok((image, object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn image_ids() {
        for ok in ["a", "users/42/images/7", "A_b-9/x"] {
            assert!(ImageId::parse(ok, &[]).is_ok(), "{ok}");
        }
        let long = "a".repeat(257);
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../a",
            "a/../b",
            "a/./b",
            "a\\b",
            "a b",
            "a\0b",
            "ä",
            long.as_str(),
        ] {
            assert_eq!(
                ImageId::parse(bad, &[]).unwrap_err().code,
                ErrorCode::ForbiddenKey,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn allow_list_matches_whole_segments() {
        let allow = vec!["users/".to_string()];
        assert!(ImageId::parse("users/1", &allow).is_ok());
        assert!(ImageId::parse("users2/1", &allow).is_err());
        assert!(ImageId::parse("other/1", &allow).is_err());
    }

    #[test]
    fn object_names() {
        for ok in ["original.jpg", "v2", "v2-thumb.webp", "a_b.JPEG"] {
            assert!(ObjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".jpg", "a.", "../x.jpg", "a/b.jpg", "a.b.c", "x.jp g", "%2e%2e",
        ] {
            assert!(ObjectName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ObjectName::parse("v2.jpg").unwrap().manifest().as_str(),
            "v2.json"
        );
    }

    #[test]
    fn key_lists() {
        assert_eq!(
            parse_key_list(" k1:a:b , k0:c,,").unwrap(),
            [("k1", "a:b"), ("k0", "c")]
        );
        assert!(parse_key_list("").unwrap().is_empty());
        assert!(parse_key_list(" , ").unwrap().is_empty());
        assert_eq!(
            parse_key_list("k1:s3cret,nocolon"),
            Err(KeyListError::NoColon(2))
        );
        assert_eq!(parse_key_list(":secret"), Err(KeyListError::Empty(1)));
        assert_eq!(parse_key_list("id:"), Err(KeyListError::Empty(1)));
        let e = parse_key_list("k1:s3cret,k2").unwrap_err().to_string();
        assert!(!e.contains("s3cret") && !e.contains("k2"), "{e}");
    }

    #[test]
    fn versions() {
        assert!(validate_version("v2").is_ok());
        assert!(validate_version(&"v".repeat(65)).is_err());
        assert!(validate_version("..").is_err());
        assert!(validate_version("v2.jpg").is_err());
    }
}
