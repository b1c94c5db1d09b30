//! The worker's settings, merged from layers (each overrides the one before):
//!
//! 1. the defaults ([`Settings::default`], the contract's limits);
//! 2. the TOML file (`--config` or `IMGWORKER_CONFIG`; `deploy/worker.toml`
//!    is an example): the keys are the fields of [`Settings`], the limits in
//!    a `[limits]` table, and a misspelt key is an error;
//! 3. the `IMGWORKER_*` environment ([`Environment`]): `IMGWORKER_` and the
//!    key in upper case, limits included (`IMGWORKER_MAX_OPS`), lists
//!    comma-separated;
//! 4. the command-line flags that were given: any `Serialize` value whose
//!    fields are the keys; a `None` is a flag that was not given and is
//!    left out (see `src/bin_support/args.rs`).
//!
//! Secrets ([`Secret`], [`AmqpUrl`]) are redacted from `Debug` output, and
//! key lists are refused in the file: they come from the environment.

mod environment;
mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

use crate::backend::BackendChoice;
use crate::config::{default_worker_name, DataRights, Limits, WorkerConfig};
use crate::content_credentials::{ContentCredentials, CredentialsError};
use crate::queue::{TlsFiles, Topology};

pub(crate) use environment::variable_for;
pub use environment::{variables, Environment};
pub use secret::{AmqpUrl, AmqpUrls, Secret};

/// The broker a worker uses when none is configured: a local RabbitMQ with
/// its default account.
pub(crate) const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Keys that hold secrets: never read from the file.
const SECRET_KEYS: &[&str] = &["signing_keys", "encryption_keys", "c2pa_key"];

/// Settings that cannot be loaded or are out of range.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file is missing, unreadable or not TOML.
    #[error("reading config {}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<figment::Error>,
    },
    /// The file holds a key list.
    #[error(
        "config {}: `{key}` is a secret and never goes in the config file; set {} instead",
        .path.display(),
        variable_for(.key)
    )]
    SecretInFile {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A value has the wrong type, or a key is unknown; the message names the
    /// key and the layer it came from.
    #[error("{0}")]
    Invalid(Box<figment::Error>),
    /// `limits.deadline_secs` is not a positive number.
    #[error("deadline must be a positive number of seconds")]
    Deadline,
    /// `gpu_memory_mib` is 0.
    #[error("--gpu-memory-mib must be at least 1")]
    GpuMemory,
    /// `grace_secs` is negative or not a number.
    #[error("--grace-secs must be a non-negative number")]
    Grace,
    /// `delivery_limit` is 0.
    #[error("--delivery-limit must be at least 1")]
    DeliveryLimit,
    /// `account_roots` or `export_prefix` cannot work (an invalid folder,
    /// or exports inside the accounts' images).
    #[error("{0}")]
    DataRights(String),
    /// The C2PA certificate and key cannot sign.
    #[error(transparent)]
    ContentCredentials(#[from] CredentialsError),
    /// Both a key file and a key in the environment are set.
    #[error("set the C2PA private key once: c2pa_key_file or IMGWORKER_C2PA_KEY, not both")]
    TwoC2paKeys,
}

/// Everything a worker can be configured with (flags, environment, file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Storage: a folder, `file:///path`, `memory://` or `s3://bucket`.
    /// Default `imgworker-data`.
    pub storage: String,
    /// Where pixels are processed. Default `auto`.
    #[serde(deserialize_with = "backend_choice")]
    pub backend: BackendChoice,
    /// Device memory the GPU jobs in flight may reserve together, in MiB: a
    /// job waits for room rather than fail for lack of it. Default 4096.
    pub gpu_memory_mib: u64,
    /// Only touch images under these prefixes (empty: all).
    pub allow_prefixes: Vec<String>,
    /// Prefixes overlays may be read from across images.
    pub watermark_prefixes: Vec<String>,
    /// Folders whose sub-folders are accounts (recursive purge and export).
    /// Default `["users"]`.
    pub account_roots: Vec<String>,
    /// Folder export archives are written under. Default `exports`.
    pub export_prefix: String,
    /// Encryption at rest: `k1:BASE64[,k0:BASE64]`; the first seals, all open.
    pub encryption_keys: Option<Secret>,
    /// Refuse a plain `amqp://` broker or a storage endpoint over `http://`.
    pub require_tls: bool,
    /// Resource limits per job.
    pub limits: LimitSettings,
    /// Broker URLs, one per node of a cluster, vhost in the path. Default
    /// [`DEFAULT_AMQP_URL`].
    pub amqp_url: AmqpUrls,
    /// `amqps://`: extra CA certificates (PEM).
    pub amqp_ca_file: Option<PathBuf>,
    /// `amqps://`: client certificate chain (PEM).
    pub amqp_cert_file: Option<PathBuf>,
    /// `amqps://`: client private key (PEM).
    pub amqp_key_file: Option<PathBuf>,
    /// Job signing keys, `key-id:secret[,...]`.
    pub signing_keys: Option<Secret>,
    /// Content Credentials: the C2PA signing certificate chain (PEM, the
    /// signing certificate first).
    pub c2pa_cert_file: Option<PathBuf>,
    /// Content Credentials: the certificate's private key (PKCS#8 PEM).
    pub c2pa_key_file: Option<PathBuf>,
    /// Content Credentials: the private key itself (PKCS#8 PEM), instead of
    /// a file; environment only.
    pub c2pa_key: Option<Secret>,
    /// The jobs queue. Default `imgworker.jobs`.
    pub jobs_queue: String,
    /// The dead-letter exchange. Default `imgworker.dlx`.
    pub dead_letter_exchange: String,
    /// The dead-letter queue. Default `imgworker.dead`.
    pub dead_queue: String,
    /// The results topic exchange. Default `imgworker.results`.
    pub results_exchange: String,
    /// The audit trail's fanout exchange. Default `imgworker.audit`.
    pub audit_exchange: String,
    /// The audit trail's quorum queue. Default `imgworker.audit`.
    pub audit_queue: String,
    /// The queue transient failures wait in before they return to the jobs
    /// queue. Default `imgworker.retry`.
    pub retry_queue: String,
    /// Failed deliveries before a job is dead-lettered. Default 5.
    pub delivery_limit: u32,
    /// Jobs processed at once (the prefetch is twice this). Default 2.
    pub concurrency: usize,
    /// Seconds a drain waits for jobs in flight. Default 30.
    pub grace_secs: f64,
    /// Address of /metrics, /healthz and /readyz. Default `0.0.0.0:9090`.
    pub http_addr: SocketAddr,
    /// First retry pause of a transient failure, in ms (doubles per
    /// attempt). Default 500.
    pub retry_backoff_ms: u64,
}

/// The `[limits]` table; defaults are [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest source in bytes.
    pub max_source_bytes: u64,
    /// Largest source in pixels.
    pub max_source_pixels: u64,
    /// Largest output in pixels.
    pub max_output_pixels: u64,
    /// Most ops per job.
    pub max_ops: usize,
    /// Most outputs per job.
    pub max_outputs: usize,
    /// Job deadline in seconds.
    pub deadline_secs: f64,
    /// Most objects in one export.
    pub max_export_objects: u64,
    /// Most bytes of objects in one export.
    pub max_export_bytes: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        let d = Limits::default();
        Self {
            max_source_bytes: d.max_source_bytes,
            max_source_pixels: d.max_source_pixels,
            max_output_pixels: d.max_output_pixels,
            max_ops: d.max_ops,
            max_outputs: d.max_outputs,
            deadline_secs: d.deadline.as_secs_f64(),
            max_export_objects: d.max_export_objects,
            max_export_bytes: d.max_export_bytes,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let topology = Topology::default();
        Self {
            storage: "imgworker-data".into(),
            backend: BackendChoice::Auto,
            gpu_memory_mib: crate::gpu::budget::DEFAULT_BUDGET_BYTES >> 20,
            allow_prefixes: Vec::new(),
            watermark_prefixes: Vec::new(),
            account_roots: DataRights::default().account_roots,
            export_prefix: DataRights::default().export_prefix,
            encryption_keys: None,
            require_tls: false,
            limits: LimitSettings::default(),
            amqp_url: DEFAULT_AMQP_URL.into(),
            amqp_ca_file: None,
            amqp_cert_file: None,
            amqp_key_file: None,
            signing_keys: None,
            c2pa_cert_file: None,
            c2pa_key_file: None,
            c2pa_key: None,
            jobs_queue: topology.jobs_queue,
            dead_letter_exchange: topology.dead_letter_exchange,
            dead_queue: topology.dead_queue,
            results_exchange: topology.results_exchange,
            audit_exchange: topology.audit_exchange,
            audit_queue: topology.audit_queue,
            retry_queue: topology.retry_queue,
            delivery_limit: topology.delivery_limit,
            concurrency: 2,
            grace_secs: 30.0,
            http_addr: SocketAddr::from(([0, 0, 0, 0], 9090)),
            retry_backoff_ms: 500,
        }
    }
}

/// `backend = "gpu"`: the names of `--backend`, any case.
fn backend_choice<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BackendChoice, D::Error> {
    use clap::ValueEnum;
    let name = String::deserialize(d)?;
    BackendChoice::from_str(&name, true).map_err(serde::de::Error::custom)
}

impl Settings {
    /// The settings of this process: defaults, then `file`, then the process
    /// environment, then `flags`.
    pub fn load(file: Option<&Path>, flags: &impl serde::Serialize) -> Result<Self, SettingsError> {
        Self::from_layers(file, Environment::from_process(), flags)
    }

    /// The settings from given layers: defaults, then `file`, then `env`,
    /// then `flags` (the keys `flags` serializes, its `None`s left out).
    pub fn from_layers(
        file: Option<&Path>,
        env: Environment,
        flags: &impl serde::Serialize,
    ) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(config_file(path)?);
        }
        figment
            .merge(env)
            .merge(Flags::new(flags)?)
            .extract_lossy()
            .map_err(|e| SettingsError::Invalid(Box::new(e)))
    }

    /// The limits, checked.
    pub fn limits(&self) -> Result<Limits, SettingsError> {
        let l = &self.limits;
        if !(l.deadline_secs.is_finite() && l.deadline_secs > 0.0) {
            return Err(SettingsError::Deadline);
        }
        Ok(Limits {
            max_source_bytes: l.max_source_bytes,
            max_source_pixels: l.max_source_pixels,
            max_output_pixels: l.max_output_pixels,
            max_ops: l.max_ops,
            max_outputs: l.max_outputs,
            deadline: Duration::from_secs_f64(l.deadline_secs),
            max_export_objects: l.max_export_objects,
            max_export_bytes: l.max_export_bytes,
            ..Limits::default()
        })
    }

    /// What the engine needs: limits, prefixes, and this process's name.
    pub(crate) fn worker_config(&self) -> Result<WorkerConfig, SettingsError> {
        Ok(WorkerConfig {
            limits: self.limits()?,
            allow_prefixes: self.allow_prefixes.clone(),
            watermark_prefixes: self.watermark_prefixes.clone(),
            worker_name: default_worker_name(),
            data_rights: self.data_rights()?,
            content_credentials: self.content_credentials()?.map(Arc::new),
        })
    }

    /// The Content Credentials signer, loaded and checked; `None` when
    /// neither a certificate nor a key is set.
    pub fn content_credentials(&self) -> Result<Option<ContentCredentials>, SettingsError> {
        let read = |what, path: &PathBuf| {
            std::fs::read(path).map_err(|source| CredentialsError::Read {
                what,
                path: path.clone(),
                source,
            })
        };
        let key = match (&self.c2pa_key_file, &self.c2pa_key) {
            (Some(_), Some(k)) if !k.expose().is_empty() => return Err(SettingsError::TwoC2paKeys),
            (Some(path), _) => Some(zeroize::Zeroizing::new(read("private key", path)?)),
            (None, Some(k)) if !k.expose().is_empty() => {
                Some(zeroize::Zeroizing::new(k.expose().as_bytes().to_vec()))
            }
            (None, _) => None,
        };
        match (&self.c2pa_cert_file, key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(CredentialsError::Incomplete("certificate").into()),
            (None, Some(_)) => Err(CredentialsError::Incomplete("private key").into()),
            (Some(cert), Some(key)) => {
                let chain = read("certificate", cert)?;
                Ok(Some(ContentCredentials::new(&chain, &key)?))
            }
        }
    }

    /// The account roots and export folder, checked.
    pub fn data_rights(&self) -> Result<DataRights, SettingsError> {
        let d = DataRights {
            account_roots: self
                .account_roots
                .iter()
                .map(|r| r.trim_end_matches('/').to_string())
                .collect(),
            export_prefix: self.export_prefix.trim_end_matches('/').to_string(),
        };
        d.check().map_err(SettingsError::DataRights)?;
        Ok(d)
    }

    /// Queue and exchange names, and the delivery limit (checked).
    pub fn topology(&self) -> Result<Topology, SettingsError> {
        if self.delivery_limit == 0 {
            return Err(SettingsError::DeliveryLimit);
        }
        Ok(self.topology_unchecked())
    }

    /// Queue and exchange names as configured (`submit` publishes to an
    /// existing queue and does not check the delivery limit).
    pub(crate) fn topology_unchecked(&self) -> Topology {
        Topology {
            jobs_queue: self.jobs_queue.clone(),
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_queue: self.dead_queue.clone(),
            results_exchange: self.results_exchange.clone(),
            audit_exchange: self.audit_exchange.clone(),
            audit_queue: self.audit_queue.clone(),
            retry_queue: self.retry_queue.clone(),
            delivery_limit: self.delivery_limit,
        }
    }

    /// The `amqps://` files.
    pub(crate) fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.amqp_ca_file.clone(),
            cert_file: self.amqp_cert_file.clone(),
            key_file: self.amqp_key_file.clone(),
        }
    }

    /// The GPU jobs' device memory budget in bytes (checked).
    pub fn gpu_memory_bytes(&self) -> Result<u64, SettingsError> {
        match self.gpu_memory_mib {
            0 => Err(SettingsError::GpuMemory),
            mib => Ok(mib.saturating_mul(1 << 20)),
        }
    }

    /// How long a drain waits for jobs in flight (checked).
    pub fn grace(&self) -> Result<Duration, SettingsError> {
        if !(self.grace_secs.is_finite() && self.grace_secs >= 0.0) {
            return Err(SettingsError::Grace);
        }
        Ok(Duration::from_secs_f64(self.grace_secs))
    }

    /// First pause before a transient failure is retried.
    pub(crate) fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }
}

/// The TOML file's layer, read now so that a missing or malformed file, or
/// a secret in it, is reported against the file.
fn config_file(path: &Path) -> Result<impl Provider, SettingsError> {
    let file = Toml::file_exact(path);
    let data = file.data().map_err(|e| SettingsError::File {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    for dict in data.values() {
        if let Some(key) = SECRET_KEYS.iter().find(|k| dict.contains_key(**k)) {
            return Err(SettingsError::SecretInFile {
                path: path.to_path_buf(),
                key,
            });
        }
    }
    Ok(file)
}

/// The command-line flags' layer: what they serialize to, less the `None`s
/// (flags that were not given).
struct Flags(Dict);

impl Flags {
    fn new(flags: &impl serde::Serialize) -> Result<Self, SettingsError> {
        fn given(value: Value) -> Option<Value> {
            match value {
                Value::Empty(..) => None,
                Value::Dict(tag, dict) => Some(Value::Dict(
                    tag,
                    dict.into_iter()
                        .filter_map(|(k, v)| Some((k, given(v)?)))
                        .collect(),
                )),
                other => Some(other),
            }
        }
        let value = Value::serialize(flags).map_err(|e| SettingsError::Invalid(Box::new(e)))?;
        match given(value) {
            Some(Value::Dict(_, dict)) => Ok(Self(dict)),
            _ => Ok(Self(Dict::new())),
        }
    }
}

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        Metadata::named("the command-line flags")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn no_flags() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let s = Settings::from_layers(None, Environment::default(), &no_flags()).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.limits().unwrap(), Limits::default());
        assert_eq!(s.topology().unwrap(), Topology::default());
        assert_eq!(s.storage, "imgworker-data");
        assert_eq!(s.http_addr.to_string(), "0.0.0.0:9090");
        assert_eq!(s.amqp_url.expose_all(), [DEFAULT_AMQP_URL]);
    }

    #[test]
    fn file_then_environment_then_flags() {
        let f = file(
            "storage = \"from-file\"\nconcurrency = 3\nallow_prefixes = [\"file/\"]\n\
             [limits]\nmax_ops = 10\nmax_outputs = 4\ndeadline_secs = 20\n",
        );
        let env = Environment::from_vars([
            ("IMGWORKER_CONCURRENCY", "5"),
            ("IMGWORKER_MAX_OPS", "11"),
            ("IMGWORKER_ALLOW_PREFIXES", "env/,more/"),
        ]);
        let flags = serde_json::json!({"concurrency": 9, "storage": null,
                                       "limits": {"max_ops": 12, "max_outputs": null}});
        let s = Settings::from_layers(Some(f.path()), env, &flags).unwrap();
        assert_eq!(s.storage, "from-file", "file over the default");
        assert_eq!(s.limits.max_outputs, 4, "file over the default");
        assert_eq!(s.limits.deadline_secs, 20.0, "an integer for a float");
        assert_eq!(s.allow_prefixes, ["env/", "more/"], "environment over file");
        assert_eq!(s.concurrency, 9, "flag over environment");
        assert_eq!(s.limits.max_ops, 12, "flag over environment");
        assert_eq!(s.limits.max_source_pixels, 50_000_000, "default kept");
    }

    #[test]
    fn every_settings_variable_is_read() {
        let values: Vec<(String, &str)> = variables()
            .map(|name| {
                let value = match name.as_str() {
                    "IMGWORKER_BACKEND" => "cpu",
                    "IMGWORKER_HTTP_ADDR" => "127.0.0.1:1",
                    "IMGWORKER_REQUIRE_TLS" => "true",
                    "IMGWORKER_GRACE_SECS" | "IMGWORKER_DEADLINE_SECS" => "1.5",
                    n if n.ends_with("_FILE")
                        || n.ends_with("_KEYS")
                        || n.ends_with("_KEY")
                        || n.ends_with("_URL")
                        || n.ends_with("_STORAGE")
                        || n.ends_with("_QUEUE")
                        || n.ends_with("_EXCHANGE")
                        || n.ends_with("_PREFIXES")
                        || n.ends_with("_PREFIX")
                        || n.ends_with("_ROOTS") =>
                    {
                        "7x"
                    }
                    _ => "7",
                };
                (name, value)
            })
            .collect();
        assert_eq!(values.len(), 37);
        let s = Settings::from_layers(None, Environment::from_vars(values), &no_flags()).unwrap();
        assert_eq!(s.backend, BackendChoice::Cpu);
        assert!(s.require_tls);
        assert_eq!(s.limits.max_ops, 7);
        assert_eq!(s.limits.deadline_secs, 1.5);
        assert_eq!(s.retry_backoff_ms, 7);
        assert_eq!(s.gpu_memory_mib, 7);
        assert_eq!(s.dead_queue, "7x");
        assert_eq!(s.signing_keys.as_ref().map(Secret::expose), Some("7x"));
        assert_eq!(s.amqp_key_file, Some(PathBuf::from("7x")));
        assert_eq!(s.c2pa_cert_file, Some(PathBuf::from("7x")));
        assert_eq!(s.c2pa_key_file, Some(PathBuf::from("7x")));
        assert_eq!(s.c2pa_key.as_ref().map(Secret::expose), Some("7x"));
        assert_eq!(s.account_roots, ["7x"]);
        assert_eq!(s.export_prefix, "7x");
        assert_eq!(s.limits.max_export_objects, 7);
        assert_eq!(s.limits.max_export_bytes, 7);
        assert_eq!(
            (s.audit_exchange.as_str(), s.audit_queue.as_str()),
            ("7x", "7x")
        );
        assert_eq!(s.retry_queue, "7x");
        assert_eq!(s.amqp_url.expose_all(), ["7x"]);
    }

    #[test]
    fn mistakes_are_reported_with_their_source() {
        let misspelt = file("[limits]\nmax_sorce_pixels = 100\n");
        let e = Settings::from_layers(Some(misspelt.path()), Environment::default(), &no_flags())
            .unwrap_err();
        assert!(e.to_string().contains("max_sorce_pixels"), "{e}");

        let e = Settings::from_layers(
            None,
            Environment::from_vars([("IMGWORKER_MAX_OPS", "many")]),
            &no_flags(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("IMGWORKER_MAX_OPS"), "{e}");

        let secret = file("signing_keys = \"k1:hunter2\"\n");
        let e = Settings::from_layers(Some(secret.path()), Environment::default(), &no_flags())
            .unwrap_err();
        assert!(e.to_string().contains("IMGWORKER_SIGNING_KEYS"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");

        let missing = Path::new("/nonexistent/worker.toml");
        let e =
            Settings::from_layers(Some(missing), Environment::default(), &no_flags()).unwrap_err();
        assert!(matches!(e, SettingsError::File { .. }), "{e}");
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let env = Environment::from_vars([
            ("IMGWORKER_SIGNING_KEYS", "k1:sign-secret"),
            ("IMGWORKER_ENCRYPTION_KEYS", "k1:seal-secret"),
            ("IMGWORKER_AMQP_URL", "amqp://worker:url-secret@broker/%2f"),
        ]);
        let s = Settings::from_layers(None, env, &no_flags()).unwrap();
        let shown = format!("{s:?} {s:#?}");
        for secret in ["sign-secret", "seal-secret", "url-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("<redacted>") && shown.contains("worker:***@broker"));
        assert_eq!(s.signing_keys.unwrap().expose(), "k1:sign-secret");
    }

    #[test]
    fn range_checks() {
        let mut s = Settings::default();
        s.limits.deadline_secs = -1.0;
        assert!(matches!(s.limits(), Err(SettingsError::Deadline)));
        s.grace_secs = f64::NAN;
        assert!(matches!(s.grace(), Err(SettingsError::Grace)));
        s.delivery_limit = 0;
        assert!(matches!(s.topology(), Err(SettingsError::DeliveryLimit)));
        assert_eq!(s.topology_unchecked().delivery_limit, 0);
    }
}
