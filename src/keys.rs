//! Storage key validation: image ids, object names and versions.
//!
//! Every key a job names is checked here before storage is touched; anything
//! that does not match the grammar of DESIGN.md ("Storage layout") is
//! `forbidden_key`. The checks are whitelists, so traversal (`..`), absolute
//! paths, backslashes, NUL bytes and Unicode look-alikes are all refused.

use crate::error::JobError;

/// Longest image id, in characters.
pub const MAX_IMAGE_LEN: usize = 256;
/// Longest version name.
pub const MAX_VERSION_LEN: usize = 64;

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
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
pub fn prefix_matches(key: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty()
        || key == p
        || key
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A validated object name inside an image folder: `name` or `name.ext`, with
/// `name` in `[A-Za-z0-9_-]{1,64}` and `ext` in `[A-Za-z0-9]{1,10}`.
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
            !e.is_empty() && e.len() <= 10 && e.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !(stem_ok && ext_ok) {
            return Err(JobError::forbidden_key(
                "object name must be [A-Za-z0-9_-]{1,64} with an optional .ext of [A-Za-z0-9]{1,10}",
            ));
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
pub fn validate_version(s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.len() > MAX_VERSION_LEN || !s.chars().all(is_segment_char) {
        return Err(JobError::forbidden_key(
            "version must be [A-Za-z0-9_-]{1,64}",
        ));
    }
    Ok(())
}

/// Validate a full storage key of another image's object (overlays from a
/// watermark prefix): `image/object`, with the image under an allowed prefix.
pub fn parse_foreign_key(s: &str, allowed: &[String]) -> Result<(ImageId, ObjectName), JobError> {
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
    fn versions() {
        assert!(validate_version("v2").is_ok());
        assert!(validate_version(&"v".repeat(65)).is_err());
        assert!(validate_version("..").is_err());
        assert!(validate_version("v2.jpg").is_err());
    }
}
