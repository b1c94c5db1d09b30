//! RabbitMQ: the worker loop (`imgworker serve`), job submission
//! (`imgworker submit`), the topology and job signatures.
//!
//! Delivery is at least once: a job is acked only after its outputs and
//! manifests are stored and its result is confirmed by the broker, so a
//! crash at any point leads to a redelivery, and a redelivered job writes
//! the same objects.

pub mod publish;
pub mod signing;
pub mod submit;
pub mod tls;
pub mod topology;
pub mod worker;

pub use signing::SigningKeys;
pub use tls::BrokerEndpoint;
pub(crate) use tls::TlsFiles;
pub use topology::Topology;
pub use worker::{serve, ServeConfig};

/// Header on dead-lettered messages holding the error code.
pub(crate) const ERROR_HEADER: &str = "x-imgworker-error";
/// Header on dead-lettered messages holding the number of attempts.
pub(crate) const ATTEMPTS_HEADER: &str = "x-imgworker-attempts";

/// Failures of the queue layer (the broker, not a job).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker refused or dropped something.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker did not confirm a publish.
    #[error("the broker did not confirm a publish (nack)")]
    Nacked,
    /// A mandatory publish reached no queue: the broker returned it.
    #[error("the broker routed a publish to no queue (returned)")]
    Returned,
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// A file named by a setting cannot be read.
    #[error("cannot read the {what} {}", path.display())]
    File {
        /// What the file is (`CA file`, `client key`).
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: an untrusted or invalid certificate, or no
    /// common protocol version. A configuration error; retrying cannot help.
    #[error(
        "TLS handshake with the broker failed (check --amqp-ca-file and the broker's certificate)"
    )]
    Tls(#[source] rustls::Error),
    /// A message could not be encoded.
    #[error("cannot encode a message")]
    Encode(#[from] serde_json::Error),
    /// The broker did not confirm a publish in time.
    #[error("the broker did not confirm a publish within {0:?}")]
    Unconfirmed(std::time::Duration),
    /// Connecting took too long.
    #[error("connecting to the broker took longer than {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// Waiting for results timed out.
    #[error("timed out waiting for {0} result(s)")]
    Timeout(usize),
}
