//! Connecting to the broker: plain `amqp://` or `amqps://` over rustls, to
//! one node or to any node of a cluster.
//!
//! An endpoint holds one URL per broker node. Every (re)connection tries
//! them in a fresh random order, so workers spread over the nodes and a
//! worker whose node died moves to a live one.
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

/// The broker's URLs (one per node) with their TLS settings, checked and
/// loaded once.
#[derive(Clone)]
pub struct BrokerEndpoint {
    urls: Vec<String>,
    tls: OwnedTLSConfig,
}

/// The URLs' passwords and the TLS material (a client key among it) are
/// never printed.
impl std::fmt::Debug for BrokerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| super::worker::redact(u)).collect();
        f.debug_struct("BrokerEndpoint")
            .field("urls", &urls)
            .field("tls", &self.is_tls())
            .finish()
    }
}

/// A connection and the node it reached.
pub struct Connected {
    /// The open connection.
    pub connection: Connection,
    /// The node, as `host:port` (no credentials): for logs and metrics.
    pub node: String,
}

/// The `host:port` of an AMQP URL, without credentials (the URL itself
/// when it does not parse, redacted).
pub(crate) fn node_of(url: &str) -> String {
    match url.parse::<lapin::uri::AMQPUri>() {
        Ok(u) => format!("{}:{}", u.authority.host, u.authority.port),
        Err(_) => super::worker::redact(url),
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
    /// One broker node: check the URL scheme, the TLS files' pairing, and
    /// load them.
    pub fn new(url: impl Into<String>, files: &TlsFiles) -> Result<Self, QueueError> {
        Self::cluster(vec![url.into()], files)
    }

    /// Any of several nodes of one cluster (the same vhost and credentials
    /// on each): every URL is checked as [`BrokerEndpoint::new`] checks one,
    /// and they must all be `amqp://` or all `amqps://`.
    pub fn cluster(urls: Vec<String>, files: &TlsFiles) -> Result<Self, QueueError> {
        let Some(first) = urls.first() else {
            return Err(QueueError::Config("no broker URL was given".into()));
        };
        let tls_url = is_tls_url(first);
        for url in &urls {
            if !is_tls_url(url) && !url.to_ascii_lowercase().starts_with("amqp://") {
                return Err(QueueError::Config(
                    "the broker URL must start with amqp:// or amqps://".into(),
                ));
            }
            if let Err(why) = url.parse::<lapin::uri::AMQPUri>() {
                return Err(QueueError::Config(format!(
                    "the broker URL {} is not valid: {why}",
                    super::worker::redact(url)
                )));
            }
            if is_tls_url(url) != tls_url {
                return Err(QueueError::Config(
                    "the broker URLs mix amqp:// and amqps://; use one scheme for every node"
                        .into(),
                ));
            }
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
            urls,
            tls: OwnedTLSConfig {
                identity,
                cert_chain,
            },
        })
    }

    /// The URLs as given (they hold passwords: log [`node_of`] them).
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether connections are encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        is_tls_url(&self.urls[0])
    }

    /// Open a connection to any node (see [`BrokerEndpoint::connect_any`]).
    pub async fn connect(&self, props: ConnectionProperties) -> Result<Connection, QueueError> {
        Ok(self.connect_any(props).await?.connection)
    }

    /// Open a connection to the first node that answers, trying the nodes
    /// in a fresh random order, each bounded by [`CONNECT_TIMEOUT`]. When
    /// none answers, the error is the last node's, unless a TLS handshake
    /// failed: an untrusted certificate is a configuration error and wins.
    pub async fn connect_any(&self, props: ConnectionProperties) -> Result<Connected, QueueError> {
        let mut order: Vec<&String> = self.urls.iter().collect();
        fastrand::shuffle(&mut order);
        let mut failure = None;
        for url in order {
            match self.connect_one(url, props.clone()).await {
                Ok(connection) => {
                    return Ok(Connected {
                        connection,
                        node: node_of(url),
                    })
                }
                Err(e) => {
                    if self.urls.len() > 1 {
                        tracing::debug!(node = %node_of(url), error = %e, "broker node unreachable");
                    }
                    let keep = !matches!(failure, Some(QueueError::Tls(_)));
                    if keep {
                        failure = Some(e);
                    }
                }
            }
        }
        Err(failure.expect("an endpoint has at least one URL"))
    }

    async fn connect_one(
        &self,
        url: &str,
        props: ConnectionProperties,
    ) -> Result<Connection, QueueError> {
        let runtime = lapin::runtime::default_runtime()?;
        let attempt = Connection::connect_with_config(url, props, self.tls.clone(), runtime);
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

    #[test]
    fn a_cluster_is_one_scheme_and_nodes_are_named_without_credentials() {
        let none = TlsFiles::default();
        let urls = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = BrokerEndpoint::cluster(urls(&["amqp://u:p@a:5681/%2f", "amqp://b/%2f"]), &none)
            .unwrap();
        assert_eq!(ok.urls().len(), 2);
        let e =
            BrokerEndpoint::cluster(urls(&["amqp://a/%2f", "amqps://b/%2f"]), &none).unwrap_err();
        assert!(e.to_string().contains("mix amqp:// and amqps://"), "{e}");
        let e = BrokerEndpoint::cluster(Vec::new(), &none).unwrap_err();
        assert!(e.to_string().contains("no broker URL"), "{e}");
        let e = BrokerEndpoint::cluster(urls(&["amqp://u:secret@a:notaport/"]), &none).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            node_of("amqp://u:secret@rabbit-2:5682/%2f"),
            "rabbit-2:5682"
        );
        assert_eq!(node_of("amqps://h/%2f"), "h:5671");
    }

    #[tokio::test]
    async fn connecting_tries_every_node_and_reports_the_last_failure() {
        // Two ports nothing listens on: both refuse, quickly.
        let closed = |_: u8| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            format!("amqp://127.0.0.1:{port}/%2f")
        };
        let ep = BrokerEndpoint::cluster(vec![closed(0), closed(1)], &TlsFiles::default()).unwrap();
        let started = std::time::Instant::now();
        let e = ep
            .connect_any(ConnectionProperties::default())
            .await
            .err()
            .expect("no node listens");
        assert!(matches!(e, QueueError::Broker(_)), "{e}");
        assert!(
            started.elapsed() < CONNECT_TIMEOUT,
            "refusals are not timeouts"
        );
    }
}
