//! The command line (clap): the commands, their flags, and the flags given as
//! the top layer of the settings ([`Cli::flag_layer`]).
//!
//! A settings flag is an `Option` (or an empty list, or an unset switch)
//! when it is not given, and is then left out of the layer, so that the
//! environment, the file or the default applies. Its environment variable
//! is read by `imgworker::settings`, not by clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Serialize, Serializer};

use imgworker::backend::BackendChoice;
use imgworker::settings::{AmqpUrl, Secret};

/// How settings are layered, shown at the end of `--help`.
const SETTINGS_HELP: &str = "\
Settings: flags override IMGWORKER_* environment variables, which override \
the --config file, which overrides the defaults. A flag's variable is \
IMGWORKER_ and its name in upper case (--max-ops: IMGWORKER_MAX_OPS; \
--allow-prefix: IMGWORKER_ALLOW_PREFIXES, comma-separated).";

/// Stateless image edit worker: jobs in, versions and manifests out.
#[derive(Parser, Debug)]
#[command(name = "imgworker", version, about, after_help = SETTINGS_HELP)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "IMGWORKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Optional TOML configuration file (the environment and flags take precedence).
    #[arg(long, global = true, env = "IMGWORKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Refuse to start with a plain `amqp://` broker or a storage endpoint
    /// reached over plain `http://`.
    #[arg(long, global = true)]
    pub require_tls: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Process one job with no broker and print the result JSON (last line of stdout).
    #[command(after_help = SETTINGS_HELP)]
    Run {
        /// The job file (`-` for standard input).
        job: PathBuf,
        /// Append the job's audit events (one JSON object per storage
        /// read, write and delete) to this file, created if missing; `-`
        /// prints them on stdout, before the result line.
        #[arg(long)]
        audit_file: Option<PathBuf>,
        /// Engine settings.
        #[command(flatten)]
        worker: WorkerFlags,
    },
    /// Consume jobs from RabbitMQ until SIGTERM or SIGINT, then drain and exit 0.
    #[command(after_help = SETTINGS_HELP)]
    Serve {
        /// Engine settings.
        #[command(flatten)]
        worker: WorkerFlags,
        /// Broker settings.
        #[command(flatten)]
        queue: QueueFlags,
        /// Worker loop settings.
        #[command(flatten)]
        serve: ServeFlags,
    },
    /// Publish jobs to RabbitMQ with publisher confirms; with --wait print their results.
    #[command(after_help = SETTINGS_HELP)]
    Submit {
        /// Job files (`-` for standard input).
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
        /// Broker settings.
        #[command(flatten)]
        queue: QueueFlags,
        /// Wait for each job's result and print it (one JSON line per job).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 300.0)]
        timeout_secs: f64,
    },
    /// Print the JSON Schemas of the job, result and manifest documents.
    Schema,
    /// List the ops this worker knows, with their parameters.
    Ops {
        /// Print the Markdown table of the docs (README.md's op table).
        #[arg(long)]
        markdown: bool,
    },
    /// Ask a running worker's /healthz (for container health checks, where
    /// no curl is installed); exits 0 when it answers 200.
    #[command(after_help = SETTINGS_HELP)]
    Health(HealthFlags),
    /// Time the standard job set on a real photo (scripts/fetch-photos.sh);
    /// with --compare, libvips and ImageMagick (whole process) and pyvips,
    /// Pillow and Pillow-SIMD (in-process) run the same jobs, alternating.
    /// Needs the `bench` cargo feature (on by default).
    Bench(BenchArgs),
    /// List every GPU adapter and say which backend `auto` would pick, and why.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Settings of the commands that run jobs (`run`, `serve`).
#[derive(Args, Debug, Serialize)]
pub struct WorkerFlags {
    /// Storage: a folder, `file:///path`, `memory://` or `s3://bucket`.
    /// Default `./imgworker-data`.
    #[arg(long)]
    storage: Option<String>,
    /// Where pixels are processed. Default `auto`.
    #[arg(long, value_enum)]
    #[serde(serialize_with = "backend_name")]
    backend: Option<BackendChoice>,
    /// Device memory the GPU jobs in flight may reserve together, in MiB
    /// (a job waits for room rather than fail). Default 4096.
    #[arg(long)]
    gpu_memory_mib: Option<u64>,
    /// Only touch images under these prefixes (repeatable).
    #[arg(long = "allow-prefix", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow_prefixes: Vec<String>,
    /// Prefixes overlays may be read from across images (repeatable).
    #[arg(long = "watermark-prefix", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    watermark_prefixes: Vec<String>,
    /// Folders whose sub-folders are accounts, the only folders a recursive
    /// purge or export may name (repeatable). Default `users`.
    #[arg(long = "account-root", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    account_roots: Vec<String>,
    /// Folder export archives are written under, outside every account
    /// root. Default `exports`.
    #[arg(long)]
    export_prefix: Option<String>,
    /// Encryption at rest: `k1:BASE64[,k0:BASE64]`, 32-byte keys; the first
    /// seals, all open. Better set in IMGWORKER_ENCRYPTION_KEYS than here.
    #[arg(long)]
    #[serde(serialize_with = "secret")]
    encryption_keys: Option<Secret>,
    /// C2PA Content Credentials on every version: the signing certificate
    /// chain (PEM, the signing certificate first), with --c2pa-key-file or
    /// IMGWORKER_C2PA_KEY. Needs a build with the `content-credentials`
    /// feature (the default); one without it exits 2.
    #[arg(long)]
    c2pa_cert_file: Option<PathBuf>,
    /// C2PA Content Credentials: the certificate's private key (PKCS#8
    /// PEM). IMGWORKER_C2PA_KEY may hold the key itself instead.
    #[arg(long)]
    c2pa_key_file: Option<PathBuf>,
    /// Limit overrides.
    #[command(flatten)]
    limits: LimitFlags,
}

/// Limit overrides; the defaults are `Limits::default()` (docs/contract.md, "Limits").
#[derive(Args, Debug, Serialize)]
pub struct LimitFlags {
    /// Largest source in bytes (default 50000000).
    #[arg(long)]
    max_source_bytes: Option<u64>,
    /// Largest source in pixels (default 50000000).
    #[arg(long)]
    max_source_pixels: Option<u64>,
    /// Largest output in pixels (default 50000000).
    #[arg(long)]
    max_output_pixels: Option<u64>,
    /// Most ops per job (default 32).
    #[arg(long)]
    max_ops: Option<usize>,
    /// Most outputs per job (default 8).
    #[arg(long)]
    max_outputs: Option<usize>,
    /// Job deadline in seconds (default 60).
    #[arg(long)]
    deadline_secs: Option<f64>,
    /// Most objects in one export archive (default 100000).
    #[arg(long)]
    max_export_objects: Option<u64>,
    /// Most bytes of objects in one export archive (default 17179869184,
    /// 16 GiB).
    #[arg(long)]
    max_export_bytes: Option<u64>,
}

/// Broker settings shared by `serve` and `submit`.
#[derive(Args, Debug, Serialize)]
pub struct QueueFlags {
    /// Broker URL, vhost in the path (`amqp://user:pass@host:5672/%2f`, or
    /// `amqps://` for TLS). Repeat it (or separate URLs by commas) for the
    /// nodes of a cluster: each (re)connection tries them in a random
    /// order. Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[arg(long, value_delimiter = ',')]
    #[serde(serialize_with = "urls", skip_serializing_if = "Vec::is_empty")]
    amqp_url: Vec<AmqpUrl>,
    /// `amqps://`: extra CA certificates (PEM) to trust besides the system roots.
    #[arg(long)]
    amqp_ca_file: Option<PathBuf>,
    /// `amqps://`: client certificate chain (PEM), with --amqp-key-file.
    #[arg(long)]
    amqp_cert_file: Option<PathBuf>,
    /// `amqps://`: client private key (PEM), with --amqp-cert-file.
    #[arg(long)]
    amqp_key_file: Option<PathBuf>,
    /// Job signing keys, `key-id:secret[,...]`: `serve` requires a valid
    /// signature, `submit` signs with the first key. Better set in
    /// IMGWORKER_SIGNING_KEYS than here.
    #[arg(long)]
    #[serde(serialize_with = "secret")]
    signing_keys: Option<Secret>,
    /// The jobs queue. Default `imgworker.jobs`.
    #[arg(long)]
    jobs_queue: Option<String>,
    /// The dead-letter exchange. Default `imgworker.dlx`.
    #[arg(long)]
    dead_letter_exchange: Option<String>,
    /// The dead-letter queue. Default `imgworker.dead`.
    #[arg(long)]
    dead_queue: Option<String>,
    /// The results topic exchange. Default `imgworker.results`.
    #[arg(long)]
    results_exchange: Option<String>,
    /// The audit trail's fanout exchange. Default `imgworker.audit`.
    #[arg(long)]
    audit_exchange: Option<String>,
    /// The durable quorum queue bound to it. Default `imgworker.audit`.
    #[arg(long)]
    audit_queue: Option<String>,
    /// The queue transient failures wait in (their backoff as a per-message
    /// TTL) before they return to the jobs queue. Default `imgworker.retry`.
    #[arg(long)]
    retry_queue: Option<String>,
    /// Failed deliveries of one job before it is dead-lettered (the jobs
    /// queue's x-delivery-limit; must match an existing queue). Default 5.
    #[arg(long)]
    delivery_limit: Option<u32>,
}

/// Settings of `serve`'s loop and endpoints.
#[derive(Args, Debug, Serialize)]
pub struct ServeFlags {
    /// Jobs processed at once (the prefetch is twice this). Default 2.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds a drain waits for jobs in flight. Default 30.
    #[arg(long)]
    grace_secs: Option<f64>,
    /// Address of /metrics, /healthz and /readyz. Default `0.0.0.0:9090`.
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// First pause before a transient failure is retried, in milliseconds
    /// (doubles per attempt). Default 500.
    #[arg(long)]
    retry_backoff_ms: Option<u64>,
}

/// Settings of `health`.
#[derive(Args, Debug, Serialize)]
pub struct HealthFlags {
    /// Address of the worker's HTTP endpoints (an unspecified address such
    /// as the default `0.0.0.0:9090` is asked on loopback).
    #[arg(long)]
    http_addr: Option<SocketAddr>,
}

/// Settings of `imgworker bench` (not worker settings: flags only).
#[derive(Args, Debug)]
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub struct BenchArgs {
    /// The photo every job starts from (a JPEG).
    #[arg(long, default_value = "photos/bench/3840x2160.jpg")]
    pub input: PathBuf,
    /// imgworker's backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Jobs run at once, per tool.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Timed rounds (every job, every tool, once per round).
    #[arg(long, default_value_t = 5)]
    pub iterations: usize,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Only these jobs (comma-separated): thumbnail-1920, thumbnail-256,
    /// resize-half, blur-5, unsharp, colour, chain, jpeg-to-webp, jpeg-to-png,
    /// jpeg-recode, composite-mask, lut-33, levels-curves, smartcrop-512,
    /// thumbnail-1920-avif, jpeg-to-webp-lossless.
    #[arg(long, value_delimiter = ',')]
    pub jobs: Vec<String>,
    /// How imgworker runs: in one process, a process per job, or both.
    #[arg(long, value_enum, default_value_t = BenchMode::Both)]
    pub mode: BenchMode,
    /// Run the peers on the same jobs in the same run: libvips and
    /// ImageMagick (required), and pyvips, Pillow and Pillow-SIMD where
    /// scripts/bench-peers.sh installed them (in-process mode).
    #[arg(long)]
    pub compare: bool,
    /// The Python libraries' virtualenvs (scripts/bench-peers.sh).
    #[arg(
        long,
        env = "IMGWORKER_BENCH_PEERS",
        default_value = "target/bench-peers"
    )]
    pub peers: PathBuf,
    /// Where the JSON report goes.
    #[arg(long, default_value = "bench-results/results.json")]
    pub json: PathBuf,
    /// Also draw the chart (SVG) here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// No progress bar or progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Keep every tool's last output of each job in this folder, to compare
    /// them by eye.
    #[arg(long)]
    pub outputs: Option<PathBuf>,
    /// Run nothing: print the table of a saved JSON report (and draw its
    /// chart with --chart).
    #[arg(long, conflicts_with_all = ["compare", "outputs"])]
    pub report: Option<PathBuf>,
    /// Instead of the jobs: time each op's GPU kernels alone (timestamp
    /// queries) on the photo scaled to each of --kernel-sizes, with the
    /// effective bandwidth; needs a GPU (a software one too).
    #[arg(long, conflicts_with_all = ["compare", "outputs", "report", "jobs"])]
    pub kernels: bool,
    /// The frame sizes of --kernels.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_size,
        default_value = "1920x1080,3840x2160,7680x4320",
        requires = "kernels"
    )]
    pub kernel_sizes: Vec<(u32, u32)>,
}

/// `WIDTHxHEIGHT`.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let side = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|&n| (1..=65535).contains(&n))
            .ok_or_else(|| format!("{s:?}: sides are 1..=65535"))
    };
    Ok((side(w)?, side(h)?))
}

/// How `imgworker bench` runs imgworker.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub enum BenchMode {
    /// One long-lived process (the worker's case).
    InProcess,
    /// `imgworker run` per job, start-up included (like the peers' CLIs).
    Process,
    /// Both.
    Both,
}

/// The flags given, as the settings' top layer (`None`s are left out by
/// `imgworker::settings`).
#[derive(Serialize)]
pub struct FlagLayer<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_tls: bool,
    #[serde(flatten)]
    worker: Option<&'a WorkerFlags>,
    #[serde(flatten)]
    queue: Option<&'a QueueFlags>,
    #[serde(flatten)]
    serve: Option<&'a ServeFlags>,
    #[serde(flatten)]
    health: Option<&'a HealthFlags>,
}

impl Cli {
    /// The settings flags of this command line.
    pub fn flag_layer(&self) -> FlagLayer<'_> {
        let mut layer = FlagLayer {
            require_tls: self.require_tls,
            worker: None,
            queue: None,
            serve: None,
            health: None,
        };
        match &self.command {
            Command::Run { worker, .. } => layer.worker = Some(worker),
            Command::Serve {
                worker,
                queue,
                serve,
            } => {
                layer.worker = Some(worker);
                layer.queue = Some(queue);
                layer.serve = Some(serve);
            }
            Command::Submit { queue, .. } => layer.queue = Some(queue),
            Command::Health(health) => layer.health = Some(health),
            Command::Schema | Command::Ops { .. } | Command::Bench(_) | Command::Devices { .. } => {
            }
        }
        layer
    }
}

/// `--backend` as its name in the settings.
fn backend_name<S: Serializer>(b: &Option<BackendChoice>, s: S) -> Result<S::Ok, S::Error> {
    b.and_then(|b| b.to_possible_value())
        .map(|v| v.get_name().to_string())
        .serialize(s)
}

/// A secret flag's value, for the settings (which keep it redacted).
fn secret<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(Secret::expose).serialize(s)
}

/// The broker URL flags' values, for the settings.
fn urls<S: Serializer>(v: &[AmqpUrl], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(AmqpUrl::expose))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgworker::settings::{Environment, Settings};

    fn settings(args: &[&str], env: &[(&str, &str)]) -> Settings {
        let cli = Cli::try_parse_from(args).unwrap();
        Settings::from_layers(
            None,
            Environment::from_vars(env.iter().copied()),
            &cli.flag_layer(),
        )
        .unwrap()
    }

    #[test]
    fn several_broker_urls_come_from_flags_or_the_environment() {
        let s = settings(
            &[
                "imgworker",
                "serve",
                "--amqp-url",
                "amqp://a/%2f",
                "--amqp-url",
                "amqp://b/%2f,amqp://c/%2f",
            ],
            &[("IMGWORKER_AMQP_URL", "amqp://env/%2f")],
        );
        assert_eq!(
            s.amqp_url.expose_all(),
            ["amqp://a/%2f", "amqp://b/%2f", "amqp://c/%2f"]
        );
        let s = settings(
            &["imgworker", "serve"],
            &[("IMGWORKER_AMQP_URL", "amqp://a/%2f, amqp://b/%2f")],
        );
        assert_eq!(s.amqp_url.expose_all(), ["amqp://a/%2f", "amqp://b/%2f"]);
    }

    #[test]
    fn given_flags_override_the_environment_and_absent_ones_do_not() {
        let env = [
            ("IMGWORKER_STORAGE", "from-env"),
            ("IMGWORKER_BACKEND", "gpu"),
            ("IMGWORKER_MAX_OPS", "5"),
            ("IMGWORKER_REQUIRE_TLS", "true"),
        ];
        let s = settings(
            &[
                "imgworker",
                "run",
                "job.json",
                "--backend",
                "cpu",
                "--max-outputs",
                "3",
            ],
            &env,
        );
        assert_eq!(s.backend, BackendChoice::Cpu, "flag over environment");
        assert_eq!(s.limits.max_outputs, 3);
        assert_eq!(
            s.storage, "from-env",
            "an absent flag leaves the environment"
        );
        assert_eq!(s.limits.max_ops, 5);
        assert!(s.require_tls, "an unset switch leaves the environment");
    }

    #[test]
    fn serve_flags_and_secrets_reach_the_settings_redacted() {
        let s = settings(
            &[
                "imgworker",
                "--require-tls",
                "serve",
                "--signing-keys",
                "k1:flag-secret",
                "--amqp-url",
                "amqps://u:pw-secret@h/%2f",
                "--allow-prefix",
                "a/,b/",
                "--http-addr",
                "127.0.0.1:0",
            ],
            &[],
        );
        assert!(s.require_tls);
        assert_eq!(s.allow_prefixes, ["a/", "b/"]);
        assert_eq!(s.http_addr.port(), 0);
        assert_eq!(s.amqp_url.expose_all(), ["amqps://u:pw-secret@h/%2f"]);
        let cli = Cli::try_parse_from(["imgworker", "serve", "--signing-keys", "k1:flag-secret"])
            .unwrap();
        let shown = format!("{cli:?} {s:?}");
        assert!(
            !shown.contains("flag-secret") && !shown.contains("pw-secret"),
            "{shown}"
        );
    }
}
