//! Values that must never reach a log: [`Secret`] (key lists),
//! [`AmqpUrl`] (a broker URL, which may hold a password) and [`AmqpUrls`]
//! (one per node of a cluster). Their `Debug` output is redacted and their
//! memory is zeroed when they are dropped.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use zeroize::Zeroize;

/// A secret string (signing keys, encryption keys). `Debug` prints
/// `Secret(<redacted>)`; the value is reached only through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the code that uses it (never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A broker URL (`amqp://user:password@host:port/vhost`). `Debug` prints it
/// with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct AmqpUrl(Secret);

impl AmqpUrl {
    /// The URL as given, password included (for connecting, never for logs).
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl From<&str> for AmqpUrl {
    fn from(value: &str) -> Self {
        Self(Secret(value.to_owned()))
    }
}

impl FromStr for AmqpUrl {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.into())
    }
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AmqpUrl")
            .field(&crate::queue::worker::redact(self.expose()))
            .finish()
    }
}

/// The broker's URLs, one per node of a cluster (at least one). In a
/// settings file either a list or one string; a string, like the
/// environment variable, may hold several URLs separated by commas.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpUrls(Vec<AmqpUrl>);

impl AmqpUrls {
    /// The URLs, passwords included (for connecting, never for logs).
    pub fn expose_all(&self) -> Vec<String> {
        self.0.iter().map(|u| u.expose().to_string()).collect()
    }

    /// The URLs.
    pub fn as_slice(&self) -> &[AmqpUrl] {
        &self.0
    }
}

impl From<&str> for AmqpUrls {
    /// One URL, or several separated by commas.
    fn from(value: &str) -> Self {
        Self(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(AmqpUrl::from)
                .collect(),
        )
    }
}

impl From<Vec<AmqpUrl>> for AmqpUrls {
    fn from(value: Vec<AmqpUrl>) -> Self {
        Self(value)
    }
}

impl<'de> serde::Deserialize<'de> for AmqpUrls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let urls = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Self::from(s.as_str()),
            OneOrMany::Many(list) => {
                Self(list.iter().flat_map(|s| Self::from(s.as_str()).0).collect())
            }
        };
        if urls.0.is_empty() {
            return Err(serde::de::Error::custom("amqp_url holds no URL"));
        }
        Ok(urls)
    }
}

impl fmt::Debug for AmqpUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets_and_url_passwords() {
        let secret: Secret = "k1:hunter2".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "k1:hunter2");
        let url: AmqpUrl = "amqps://worker:hunter2@broker:5671/%2f".parse().unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("worker:***@broker:5671"), "{shown}");
        assert_eq!(url.expose(), "amqps://worker:hunter2@broker:5671/%2f");
        let urls = AmqpUrls::from("amqp://w:pw1@a:5672/%2f, amqp://w:pw2@b:5673/%2f");
        let shown = format!("{urls:?}");
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
        assert_eq!(
            urls.expose_all(),
            ["amqp://w:pw1@a:5672/%2f", "amqp://w:pw2@b:5673/%2f"]
        );
    }
}
