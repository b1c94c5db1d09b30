//! Values that must never reach a log: [`Secret`] (key lists) and
//! [`AmqpUrl`] (a broker URL, which may hold a password). Their `Debug`
//! output is redacted and their memory is zeroed when they are dropped.

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
    }
}
