//! Connecting to the broker: plain `amqp://` or `amqps://` over rustls.
//!
//! rustls speaks TLS 1.2 and 1.3 only (it has no code for older versions)
//! and offers 1.3 first, so TLS 1.2 is the floor and 1.3 the preference
//! without any setting. The server is checked against the system roots plus
//! an optional CA file (PEM); a client certificate and key (PEM) can be given
//! for brokers that authenticate clients by certificate.
//!
//! A certificate the worker does not trust is a configuration error, not a
//! broker outage: [`connect`] reports it as [`QueueError::Tls`] and the
//! worker stops at once instead of retrying forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};

use super::QueueError;

/// How long a connection attempt (TCP, TLS handshake, AMQP handshake) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// TLS files for `amqps://` connections.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// Extra CA certificates (PEM) to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), with `key_file`.
    pub(crate) cert_file: Option<PathBuf>,
    /// Client private key (PEM, PKCS#8, PKCS#1 or SEC1), with `cert_file`.
    pub(crate) key_file: Option<PathBuf>,
}

/// A broker URL with its TLS settings, checked and loaded once.
#[derive(Clone)]
pub struct BrokerEndpoint {
    url: String,
    tls: OwnedTLSConfig,
}

/// The URL's password and the TLS material (a client key among it) are
/// never printed.
impl std::fmt::Debug for BrokerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerEndpoint")
            .field("url", &super::worker::redact(&self.url))
            .field("tls", &self.is_tls())
            .finish()
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, QueueError> {
    std::fs::read(path).map_err(|source| QueueError::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a URL is `amqps://`.
pub(crate) fn is_tls_url(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("amqps://"))
}

impl BrokerEndpoint {
    /// Check the URL scheme, the TLS files' pairing, and load them.
    pub fn new(url: impl Into<String>, files: &TlsFiles) -> Result<Self, QueueError> {
        let url = url.into();
        let tls_url = is_tls_url(&url);
        if !tls_url && !url.to_ascii_lowercase().starts_with("amqp://") {
            return Err(QueueError::Config(
                "the broker URL must start with amqp:// or amqps://".into(),
            ));
        }
        let any_file =
            files.ca_file.is_some() || files.cert_file.is_some() || files.key_file.is_some();
        if any_file && !tls_url {
            return Err(QueueError::Config(
                "TLS files were given but the broker URL is amqp://; use amqps://".into(),
            ));
        }
        let cert_chain = match &files.ca_file {
            Some(p) => {
                let pem = String::from_utf8(read(p, "CA file")?).map_err(|_| {
                    QueueError::Config(format!("the CA file {} is not PEM text", p.display()))
                })?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(QueueError::Config(format!(
                        "the CA file {} holds no PEM certificate",
                        p.display()
                    )));
                }
                Some(pem)
            }
            None => None,
        };
        let identity = match (&files.cert_file, &files.key_file) {
            (Some(c), Some(k)) => Some(OwnedIdentity::PKCS8 {
                pem: read(c, "client certificate")?,
                key: read(k, "client key")?,
            }),
            (None, None) => None,
            _ => {
                return Err(QueueError::Config(
                    "a client certificate needs both --amqp-cert-file and --amqp-key-file".into(),
                ))
            }
        };
        Ok(Self {
            url,
            tls: OwnedTLSConfig {
                identity,
                cert_chain,
            },
        })
    }

    /// The URL as given (holds the password: log [`super::worker::redact`]ed).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the connection is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        is_tls_url(&self.url)
    }

    /// Open a connection, bounded by [`CONNECT_TIMEOUT`].
    pub async fn connect(&self, props: ConnectionProperties) -> Result<Connection, QueueError> {
        let runtime = lapin::runtime::default_runtime()?;
        let attempt = Connection::connect_with_config(&self.url, props, self.tls.clone(), runtime);
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(QueueError::ConnectTimeout(CONNECT_TIMEOUT)),
        }
    }
}

/// The TLS failure inside a connection error, if it is one.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                    return Some(t.clone());
                }
            }
        }
        cur = err.source();
    }
    None
}

fn classify(e: lapin::Error) -> QueueError {
    match tls_failure(&e) {
        Some(why) => QueueError::Tls(why),
        None => QueueError::Broker(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_file_pairing_are_checked() {
        assert!(is_tls_url("AMQPS://h/"));
        assert!(!is_tls_url("amqp://h/"));
        let none = TlsFiles::default();
        assert!(BrokerEndpoint::new("amqp://h/%2f", &none).is_ok());
        assert!(matches!(
            BrokerEndpoint::new("http://h/", &none),
            Err(QueueError::Config(_))
        ));
        let ca = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = BrokerEndpoint::new("amqp://h/", &ca).unwrap_err();
        assert!(e.to_string().contains("use amqps://"), "{e}");
        let e = BrokerEndpoint::new("amqps://h/", &ca).unwrap_err();
        assert!(e.to_string().contains("cannot read the CA file"), "{e}");
        let source = std::error::Error::source(&e).expect("the I/O error is kept");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::NotFound)
        );
        let half = TlsFiles {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        let e = BrokerEndpoint::new("amqps://h/", &half).unwrap_err();
        assert!(e.to_string().contains("needs both"), "{e}");
    }
}
