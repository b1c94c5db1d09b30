//! A worker assembled from its [`Settings`]: the engine (backend, storage,
//! encryption at rest), the broker connection settings, and `serve` itself
//! with its HTTP endpoints. The `imgworker` binary is a thin layer over
//! these functions, and tests drive them in-process.
//!
//! - [`memory`]: this process's peak resident memory.

pub mod memory;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, BackendError};
use crate::metrics::Metrics;
use crate::pipeline::Engine;
use crate::queue::submit::SubmitConfig;
use crate::queue::{BrokerEndpoint, QueueError, ServeConfig, SigningKeys};
use crate::settings::{Settings, SettingsError};
use crate::storage::{Keyring, SealedStorage, StorageError};

/// Why a worker could not be assembled, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting is missing, malformed or out of range.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The backend asked for is not available.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The storage URL cannot be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The encryption key list is malformed.
    #[error(transparent)]
    EncryptionKeys(#[from] crate::storage::sealed::KeyringError),
    /// The signing key list is malformed.
    #[error(transparent)]
    SigningKeys(#[from] crate::queue::signing::KeyListError),
    /// TLS is required but a connection would be in the clear.
    #[error("TLS is required (--require-tls) but {0}")]
    PlainTransport(String),
    /// The HTTP endpoints' address cannot be bound.
    #[error("binding the HTTP endpoints on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker refused or failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The engine of `run` and `serve`: the backend, the storage (sealed when
/// encryption keys are set) and the limits. With `require_tls`, a storage
/// endpoint reached over plain HTTP is refused.
pub fn build_engine(settings: &Settings) -> Result<Engine, AppError> {
    let gpu_memory = settings.gpu_memory_bytes()?;
    let backend = Backend::select(settings.backend)?;
    if let Backend::Gpu(g) = &backend {
        g.set_memory_budget(gpu_memory);
    }
    if settings.require_tls {
        if let Some(why) = crate::storage::plain_transport(&settings.storage) {
            return Err(AppError::PlainTransport(why));
        }
    }
    let mut storage = crate::storage::open(&settings.storage)?;
    if let Some(keys) = settings
        .encryption_keys
        .as_ref()
        .filter(|k| !k.expose().is_empty())
    {
        let ring = Keyring::parse(keys.expose())?;
        storage = Arc::new(SealedStorage::new(storage, ring));
    }
    let cfg = settings.worker_config()?;
    tracing::info!(
        storage = %storage.describe(),
        backend = backend.name(),
        content_credentials = cfg.content_credentials.is_some(),
        "worker ready"
    );
    Ok(Engine::new(cfg, storage, backend))
}

/// The broker endpoint with its TLS files loaded; refused when TLS is
/// required and the URL is plain `amqp://`.
pub fn broker(settings: &Settings) -> Result<BrokerEndpoint, AppError> {
    let broker = BrokerEndpoint::cluster(settings.amqp_url.expose_all(), &settings.tls_files())?;
    if settings.require_tls && !broker.is_tls() {
        return Err(AppError::PlainTransport(
            "the broker URL is plain amqp://; use amqps://".into(),
        ));
    }
    Ok(broker)
}

/// The job signing keys (none: signing is off).
pub fn signing_keys(settings: &Settings) -> Result<SigningKeys, AppError> {
    let list = settings.signing_keys.as_ref().map_or("", |k| k.expose());
    Ok(SigningKeys::parse(list)?)
}

/// The settings of `serve`'s queue loop, checked.
pub(crate) fn serve_config(settings: &Settings) -> Result<ServeConfig, AppError> {
    let grace = settings.grace()?;
    let topology = settings.topology()?;
    Ok(ServeConfig {
        concurrency: settings.concurrency,
        grace,
        signing: signing_keys(settings)?,
        topology,
        retry_backoff: settings.retry_backoff(),
        ..ServeConfig::new(broker(settings)?)
    })
}

/// The settings of `submit`; `wait`: how long to wait for the results.
pub fn submit_config(
    settings: &Settings,
    wait: Option<Duration>,
) -> Result<SubmitConfig, AppError> {
    Ok(SubmitConfig {
        broker: broker(settings)?,
        topology: settings.topology_unchecked(),
        signing: signing_keys(settings)?,
        wait,
    })
}

/// A worker ready to consume: its engine built and its HTTP endpoints
/// bound (so that a test can read [`Worker::http_addr`] before it runs).
pub struct Worker {
    engine: Engine,
    cfg: ServeConfig,
    metrics: Arc<Metrics>,
    listener: tokio::net::TcpListener,
}

impl Worker {
    /// Check the settings, build the engine and bind the HTTP endpoints.
    pub async fn new(settings: &Settings) -> Result<Self, AppError> {
        let cfg = serve_config(settings)?;
        let engine = build_engine(settings)?;
        let addr = settings.http_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        Ok(Self {
            engine,
            cfg,
            metrics: Arc::new(Metrics::new()),
            listener,
        })
    }

    /// Where /metrics, /healthz and /readyz answer (the port chosen by the
    /// system when the settings asked for port 0).
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve the HTTP endpoints and consume jobs until `shutdown`
    /// completes, then drain (at most the grace period), close the
    /// endpoints and return.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let router = crate::metrics::router(self.metrics.clone());
        let http_addr = self.http_addr().ok();
        let http = tokio::spawn(async move {
            if let Err(e) = axum::serve(self.listener, router).await {
                tracing::error!(error = %e, "HTTP endpoints stopped");
            }
        });
        if let Some(addr) = http_addr {
            tracing::info!(http_addr = %addr, "metrics and health endpoints listening");
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let served = crate::queue::serve(self.engine, self.cfg, self.metrics, rx).await;
        // The endpoints and the shutdown watch end with the worker.
        for task in [signal, http] {
            task.abort();
            let _ = task.await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// `imgworker serve`: build the engine, bind the HTTP endpoints, and consume
/// jobs until `shutdown` completes; then drain and return.
pub async fn serve(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    Worker::new(&settings).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_are_checked_before_anything_starts() {
        let s = Settings {
            grace_secs: -1.0,
            ..Settings::default()
        };
        let e = serve(s, async {}).await.unwrap_err();
        assert!(matches!(e, AppError::Settings(SettingsError::Grace)), "{e}");

        let s = Settings {
            gpu_memory_mib: 0,
            backend: crate::backend::BackendChoice::Cpu,
            ..Settings::default()
        };
        let e = build_engine(&s).unwrap_err();
        assert!(
            matches!(e, AppError::Settings(SettingsError::GpuMemory)),
            "{e}"
        );

        let s = Settings {
            require_tls: true,
            ..Settings::default()
        };
        let e = serve(s, async {}).await.unwrap_err();
        assert!(e.to_string().contains("use amqps://"), "{e}");

        let s = Settings {
            signing_keys: Some("no-colon".parse().unwrap()),
            ..Settings::default()
        };
        let e = submit_config(&s, None).unwrap_err();
        assert!(matches!(e, AppError::SigningKeys(_)), "{e}");
    }

    #[tokio::test]
    async fn a_busy_http_address_is_reported_with_its_cause() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = Settings {
            storage: "memory://".into(),
            backend: crate::backend::BackendChoice::Cpu,
            http_addr: taken.local_addr().unwrap(),
            ..Settings::default()
        };
        let Err(e) = Worker::new(&s).await else {
            panic!("bound an address already in use");
        };
        assert!(matches!(e, AppError::Bind { .. }), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn engine_settings_are_checked() {
        let mut s = Settings {
            storage: "memory://".into(),
            backend: crate::backend::BackendChoice::Cpu,
            encryption_keys: Some("k1:not-base64".parse().unwrap()),
            ..Settings::default()
        };
        let e = build_engine(&s).map(|_| ()).unwrap_err();
        assert!(matches!(e, AppError::EncryptionKeys(_)), "{e}");
        s.encryption_keys = Some("".parse().unwrap());
        assert!(
            build_engine(&s).is_ok(),
            "an empty key list is no encryption"
        );
        s.limits.deadline_secs = 0.0;
        let e = build_engine(&s).map(|_| ()).unwrap_err();
        assert!(
            matches!(e, AppError::Settings(SettingsError::Deadline)),
            "{e}"
        );
    }
}
