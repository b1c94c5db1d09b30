//! The `imgworker` command line.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use imgworker::backend::{Backend, BackendChoice};
use imgworker::config::{Limits, WorkerConfig};
use imgworker::pipeline::Engine;
use imgworker::result::Status;

/// jemalloc is the allocator of the whole process: Rust's allocations and,
/// through its unprefixed `malloc`/`free`, those of the C code linked in
/// (libwebp), where every freed block is overwritten (`junk:free`, set
/// below). Rust's allocations go through `ZeroizeAlloc` on top, which zeroes
/// each block as it is freed and grows blocks by allocate-copy-free, so that
/// no moved-from copy is left behind either. Source bytes, pixel buffers and
/// encoded outputs leave nothing in the heap once a job drops them.
#[global_allocator]
static ALLOCATOR: secmem_alloc::zeroizing_alloc::ZeroizeAlloc<tikv_jemallocator::Jemalloc> =
    secmem_alloc::zeroizing_alloc::ZeroizeAlloc::new(tikv_jemallocator::Jemalloc);

/// jemalloc's compiled-in options (`MALLOC_CONF` can add to them): overwrite
/// freed memory, and hand unused pages back to the kernel promptly. Its
/// memory is asked for as transparent huge pages (`thp:always`, which only
/// advises the kernel): a progressive JPEG's decoder reads and writes a
/// coefficient buffer of 3 bytes per pixel all over, and with 4 KiB pages
/// the page faults and TLB misses took a 4K thumbnail from 263 to 318 ms
/// (BENCHMARKS.md, "What changed"). One arena (`narenas:1`) keeps the huge pages' slack to
/// one set: a job's few large buffers gain nothing from more.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static malloc_conf: Option<&'static u8> =
    Some(&b"junk:free,dirty_decay_ms:1000,muzzy_decay_ms:0,thp:always,narenas:1\0"[0]);

/// Stateless image edit worker: jobs in, versions and manifests out.
#[derive(Parser, Debug)]
#[command(name = "imgworker", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "IMGWORKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Optional TOML configuration file (flags and environment take precedence).
    #[arg(long, global = true, env = "IMGWORKER_CONFIG")]
    config: Option<PathBuf>,
    /// Refuse to start with a plain `amqp://` broker or a storage endpoint
    /// reached over plain `http://`.
    #[arg(long, global = true, env = "IMGWORKER_REQUIRE_TLS")]
    require_tls: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Process one job with no broker and print the result JSON (last line of stdout).
    Run {
        /// The job file (`-` for standard input).
        job: PathBuf,
        #[command(flatten)]
        opts: WorkerOpts,
    },
    /// Consume jobs from RabbitMQ until SIGTERM or SIGINT, then drain and exit 0.
    Serve {
        #[command(flatten)]
        opts: WorkerOpts,
        #[command(flatten)]
        queue: QueueOpts,
        /// Jobs processed at once (also the prefetch). Default 2.
        #[arg(long, env = "IMGWORKER_CONCURRENCY")]
        concurrency: Option<usize>,
        /// Seconds a drain waits for jobs in flight.
        #[arg(long, env = "IMGWORKER_GRACE_SECS", default_value_t = 30.0)]
        grace_secs: f64,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, env = "IMGWORKER_HTTP_ADDR", default_value = "0.0.0.0:9090")]
        http_addr: std::net::SocketAddr,
        /// First pause before a transient failure is retried, in milliseconds (doubles per attempt).
        #[arg(long, env = "IMGWORKER_RETRY_BACKOFF_MS", default_value_t = 500)]
        retry_backoff_ms: u64,
    },
    /// Publish jobs to RabbitMQ with publisher confirms; with --wait print their results.
    Submit {
        /// Job files (`-` for standard input).
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
        #[command(flatten)]
        queue: QueueOpts,
        /// Wait for each job's result and print it (one JSON line per job).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 300.0)]
        timeout_secs: f64,
    },
    /// Print the JSON Schemas of the job, result and manifest documents.
    Schema,
    /// Ask a running worker's /healthz (for container health checks, where
    /// no curl is installed); exits 0 when it answers 200.
    Health {
        /// Address of the worker's HTTP endpoints.
        #[arg(long, env = "IMGWORKER_HTTP_ADDR", default_value = "127.0.0.1:9090")]
        http_addr: std::net::SocketAddr,
    },
    /// Time the standard job set on a real photo (scripts/fetch-photos.sh);
    /// with --compare, libvips and ImageMagick (whole process) and pyvips,
    /// Pillow and Pillow-SIMD (in-process) run the same jobs, alternating.
    Bench(BenchArgs),
    /// List every GPU adapter and say which backend `auto` would pick, and why.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Settings of `imgworker bench`.
#[derive(Args, Debug)]
struct BenchArgs {
    /// The photo every job starts from (a JPEG).
    #[arg(long, default_value = "photos/bench/3840x2160.jpg")]
    input: PathBuf,
    /// imgworker's backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Jobs run at once, per tool.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Timed rounds (every job, every tool, once per round).
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Only these jobs (comma-separated): thumbnail-1920, thumbnail-256,
    /// resize-half, blur-5, unsharp, colour, chain, jpeg-to-webp, jpeg-to-png.
    #[arg(long, value_delimiter = ',')]
    jobs: Vec<String>,
    /// How imgworker runs: in one process, a process per job, or both.
    #[arg(long, value_enum, default_value_t = BenchMode::Both)]
    mode: BenchMode,
    /// Run the peers on the same jobs in the same run: libvips and
    /// ImageMagick (required), and pyvips, Pillow and Pillow-SIMD where
    /// scripts/bench-peers.sh installed them (in-process mode).
    #[arg(long)]
    compare: bool,
    /// The Python libraries' virtualenvs (scripts/bench-peers.sh).
    #[arg(
        long,
        env = "IMGWORKER_BENCH_PEERS",
        default_value = "target/bench-peers"
    )]
    peers: PathBuf,
    /// Where the JSON report goes.
    #[arg(long, default_value = "bench-results/results.json")]
    json: PathBuf,
    /// Also draw the chart (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// No progress bar or progress lines.
    #[arg(long)]
    quiet: bool,
    /// Keep every tool's last output of each job in this folder, to compare
    /// them by eye.
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// Run nothing: print the table of a saved JSON report (and draw its
    /// chart with --chart).
    #[arg(long, conflicts_with_all = ["compare", "outputs"])]
    report: Option<PathBuf>,
}

/// How `imgworker bench` runs imgworker.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchMode {
    /// One long-lived process (the worker's case).
    InProcess,
    /// `imgworker run` per job, start-up included (like the peers' CLIs).
    Process,
    /// Both.
    Both,
}

/// Settings shared by the commands that run jobs.
#[derive(Args, Debug)]
struct WorkerOpts {
    /// Storage: a folder, `file:///path` or `memory://`. Default `./imgworker-data`.
    #[arg(long, env = "IMGWORKER_STORAGE")]
    storage: Option<String>,
    /// Where pixels are processed.
    #[arg(long, env = "IMGWORKER_BACKEND", value_enum)]
    backend: Option<BackendChoice>,
    /// Only touch images under these prefixes (repeatable).
    #[arg(
        long = "allow-prefix",
        env = "IMGWORKER_ALLOW_PREFIXES",
        value_delimiter = ','
    )]
    allow_prefixes: Vec<String>,
    /// Prefixes overlays may be read from across images (repeatable).
    #[arg(
        long = "watermark-prefix",
        env = "IMGWORKER_WATERMARK_PREFIXES",
        value_delimiter = ','
    )]
    watermark_prefixes: Vec<String>,
    /// Encryption at rest: `k1:BASE64[,k0:BASE64]`, 32-byte keys; the first
    /// seals, all open.
    #[arg(long, env = "IMGWORKER_ENCRYPTION_KEYS", hide_env_values = true)]
    encryption_keys: Option<String>,
    #[command(flatten)]
    limits: LimitOpts,
}

/// Broker settings shared by `serve` and `submit`.
#[derive(Args, Debug)]
struct QueueOpts {
    /// Broker URL, vhost in the path (`amqp://user:pass@host:5672/%2f`, or
    /// `amqps://` for TLS).
    #[arg(long, env = "IMGWORKER_AMQP_URL")]
    amqp_url: Option<String>,
    /// `amqps://`: extra CA certificates (PEM) to trust besides the system roots.
    #[arg(long, env = "IMGWORKER_AMQP_CA_FILE")]
    amqp_ca_file: Option<PathBuf>,
    /// `amqps://`: client certificate chain (PEM), with --amqp-key-file.
    #[arg(long, env = "IMGWORKER_AMQP_CERT_FILE")]
    amqp_cert_file: Option<PathBuf>,
    /// `amqps://`: client private key (PEM), with --amqp-cert-file.
    #[arg(long, env = "IMGWORKER_AMQP_KEY_FILE")]
    amqp_key_file: Option<PathBuf>,

    /// Job signing keys, `key-id:secret[,...]`: `serve` requires a valid
    /// signature, `submit` signs with the first key.
    #[arg(long, env = "IMGWORKER_SIGNING_KEYS", hide_env_values = true)]
    signing_keys: Option<String>,
    /// The jobs queue.
    #[arg(long, env = "IMGWORKER_JOBS_QUEUE", default_value = "imgworker.jobs")]
    jobs_queue: String,
    /// The dead-letter exchange.
    #[arg(
        long,
        env = "IMGWORKER_DEAD_LETTER_EXCHANGE",
        default_value = "imgworker.dlx"
    )]
    dead_letter_exchange: String,
    /// The dead-letter queue.
    #[arg(long, env = "IMGWORKER_DEAD_QUEUE", default_value = "imgworker.dead")]
    dead_queue: String,
    /// The results topic exchange.
    #[arg(
        long,
        env = "IMGWORKER_RESULTS_EXCHANGE",
        default_value = "imgworker.results"
    )]
    results_exchange: String,
    /// Failed deliveries of one job before it is dead-lettered (the jobs
    /// queue's x-delivery-limit; must match an existing queue).
    #[arg(long, env = "IMGWORKER_DELIVERY_LIMIT", default_value_t = 5)]
    delivery_limit: u32,
}

const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl QueueOpts {
    fn url(&self, file: &FileConfig) -> String {
        self.amqp_url
            .clone()
            .or_else(|| file.amqp_url.clone())
            .unwrap_or_else(|| DEFAULT_AMQP_URL.into())
    }

    /// The broker endpoint, refused when TLS is required and the URL is plain.
    fn broker(
        &self,
        file: &FileConfig,
        require_tls: bool,
    ) -> Result<imgworker::queue::BrokerEndpoint> {
        let pick = |flag: &Option<PathBuf>, from_file: &Option<PathBuf>| {
            flag.clone().or_else(|| from_file.clone())
        };
        let files = imgworker::queue::TlsFiles {
            ca_file: pick(&self.amqp_ca_file, &file.amqp_ca_file),
            cert_file: pick(&self.amqp_cert_file, &file.amqp_cert_file),
            key_file: pick(&self.amqp_key_file, &file.amqp_key_file),
        };
        let broker = imgworker::queue::BrokerEndpoint::new(self.url(file), &files)?;
        anyhow::ensure!(
            broker.is_tls() || !require_tls,
            "TLS is required (--require-tls) but the broker URL is plain amqp://; use amqps://"
        );
        Ok(broker)
    }

    fn topology(&self) -> imgworker::queue::Topology {
        imgworker::queue::Topology {
            jobs_queue: self.jobs_queue.clone(),
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_queue: self.dead_queue.clone(),
            results_exchange: self.results_exchange.clone(),
            delivery_limit: self.delivery_limit,
        }
    }

    fn signing(&self) -> Result<imgworker::queue::SigningKeys> {
        Ok(imgworker::queue::SigningKeys::parse(
            self.signing_keys.as_deref().unwrap_or(""),
        )?)
    }
}

/// Limit overrides; defaults are DESIGN.md's.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitOpts {
    /// Largest source in bytes (default 50000000).
    #[arg(long, env = "IMGWORKER_MAX_SOURCE_BYTES")]
    max_source_bytes: Option<u64>,
    /// Largest source in pixels (default 50000000).
    #[arg(long, env = "IMGWORKER_MAX_SOURCE_PIXELS")]
    max_source_pixels: Option<u64>,
    /// Largest output in pixels (default 50000000).
    #[arg(long, env = "IMGWORKER_MAX_OUTPUT_PIXELS")]
    max_output_pixels: Option<u64>,
    /// Most ops per job (default 32).
    #[arg(long, env = "IMGWORKER_MAX_OPS")]
    max_ops: Option<usize>,
    /// Most outputs per job (default 8).
    #[arg(long, env = "IMGWORKER_MAX_OUTPUTS")]
    max_outputs: Option<usize>,
    /// Job deadline in seconds (default 60).
    #[arg(long, env = "IMGWORKER_DEADLINE_SECS")]
    deadline_secs: Option<f64>,
}

/// The optional TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    storage: Option<String>,
    backend: Option<String>,
    #[serde(default)]
    allow_prefixes: Vec<String>,
    #[serde(default)]
    watermark_prefixes: Vec<String>,
    amqp_url: Option<String>,
    amqp_ca_file: Option<PathBuf>,
    amqp_cert_file: Option<PathBuf>,
    amqp_key_file: Option<PathBuf>,
    require_tls: Option<bool>,
    concurrency: Option<usize>,
    #[serde(default)]
    limits: LimitOpts,
}

fn load_file(path: Option<&PathBuf>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

fn limits(flags: &LimitOpts, file: &LimitOpts) -> Result<Limits> {
    let d = Limits::default();
    let deadline = flags
        .deadline_secs
        .or(file.deadline_secs)
        .unwrap_or(d.deadline.as_secs_f64());
    anyhow::ensure!(
        deadline.is_finite() && deadline > 0.0,
        "deadline must be a positive number of seconds"
    );
    Ok(Limits {
        max_source_bytes: flags
            .max_source_bytes
            .or(file.max_source_bytes)
            .unwrap_or(d.max_source_bytes),
        max_source_pixels: flags
            .max_source_pixels
            .or(file.max_source_pixels)
            .unwrap_or(d.max_source_pixels),
        max_output_pixels: flags
            .max_output_pixels
            .or(file.max_output_pixels)
            .unwrap_or(d.max_output_pixels),
        max_ops: flags.max_ops.or(file.max_ops).unwrap_or(d.max_ops),
        max_outputs: flags
            .max_outputs
            .or(file.max_outputs)
            .unwrap_or(d.max_outputs),
        deadline: std::time::Duration::from_secs_f64(deadline),
        ..d
    })
}

/// The backend, storage and limits shared by `run` and `serve`; with
/// `require_tls`, a storage endpoint reached over plain HTTP is refused.
fn build_engine(opts: WorkerOpts, file: &FileConfig, require_tls: bool) -> Result<Engine> {
    let backend_choice = match (opts.backend, &file.backend) {
        (Some(b), _) => b,
        (None, Some(s)) => {
            BackendChoice::from_str(s, true).map_err(|e| anyhow::anyhow!("config backend: {e}"))?
        }
        (None, None) => BackendChoice::Auto,
    };
    let backend = Backend::select(backend_choice)?;
    let url = opts
        .storage
        .or(file.storage.clone())
        .unwrap_or_else(|| "imgworker-data".into());
    if require_tls {
        if let Some(why) = imgworker::storage::plain_transport(&url) {
            anyhow::bail!("TLS is required (--require-tls) but {why}");
        }
    }
    let mut storage = imgworker::storage::open(&url)?;
    if let Some(keys) = opts.encryption_keys.as_deref().filter(|k| !k.is_empty()) {
        let ring = imgworker::storage::Keyring::parse(keys)?;
        storage = std::sync::Arc::new(imgworker::storage::SealedStorage::new(storage, ring));
    }
    let cfg = WorkerConfig {
        limits: limits(&opts.limits, &file.limits)?,
        allow_prefixes: if opts.allow_prefixes.is_empty() {
            file.allow_prefixes.clone()
        } else {
            opts.allow_prefixes
        },
        watermark_prefixes: if opts.watermark_prefixes.is_empty() {
            file.watermark_prefixes.clone()
        } else {
            opts.watermark_prefixes
        },
        ..WorkerConfig::new()
    };
    tracing::info!(storage = %storage.describe(), backend = backend.name(), "worker ready");
    Ok(Engine::new(cfg, storage, backend))
}

fn read_job(path: &PathBuf) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the job from stdin")?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("reading job file {}", path.display()))
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
    }
}

/// `imgworker health`: GET /healthz on the worker's HTTP address. An
/// unspecified bind address (0.0.0.0) is asked on loopback.
fn health(addr: std::net::SocketAddr) -> ExitCode {
    use std::io::{Read, Write};
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(3);
    let ask = || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply)
    };
    match ask() {
        Ok(reply) if reply.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(reply) => {
            eprintln!(
                "imgworker: unhealthy: {}",
                reply.lines().next().unwrap_or("no answer")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("imgworker: no answer from {addr}: {e}");
            ExitCode::from(1)
        }
    }
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    use imgworker::bench;
    // A saved report is shown again; otherwise the benchmark runs and its
    // report is saved.
    let report = match &args.report {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("{} is not an imgworker bench report", path.display()))?
        }
        None => run_bench(&args)?,
    };
    print!("{}", report.table());
    if args.report.is_none() {
        if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", args.json.display()))?;
        eprintln!("report: {}", args.json.display());
    }
    if let Some(chart) = &args.chart {
        bench::chart::write_svg(&report, chart)?;
        eprintln!("chart: {}", chart.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Run the benchmark `args` describe.
fn run_bench(args: &BenchArgs) -> Result<imgworker::bench::report::Report> {
    use imgworker::bench::{self, jobs::StandardJob, Mode};
    let jobs = args
        .jobs
        .iter()
        .map(|n| {
            StandardJob::by_name(n).ok_or_else(|| {
                let names: Vec<String> = bench::jobs::ALL.iter().map(|j| j.name()).collect();
                anyhow::anyhow!("unknown job {n:?}; the jobs are {}", names.join(", "))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let modes = match args.mode {
        BenchMode::InProcess => vec![Mode::InProcess],
        BenchMode::Process => vec![Mode::Process],
        BenchMode::Both => vec![Mode::InProcess, Mode::Process],
    };
    Ok(bench::run(bench::BenchOptions {
        input: args.input.clone(),
        backend: args.backend,
        concurrency: args.concurrency,
        iterations: args.iterations,
        warmup: args.warmup,
        jobs,
        modes,
        compare: args.compare,
        peers_dir: args.peers.clone(),
        binary: std::env::current_exe().context("locating the imgworker binary")?,
        progress: !args.quiet,
        outputs: args.outputs.clone(),
    })?)
}

fn init_tracing(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMGWORKER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `imgworker devices`: every adapter with its key limits, and `auto`'s choice.
fn devices(json: bool) -> Result<()> {
    let instance = imgworker::gpu::instance();
    let reports: Vec<_> = imgworker::gpu::adapters(&instance)
        .iter()
        .map(imgworker::gpu::report)
        .collect();
    let decision = imgworker::backend::auto_decision(&reports);
    if json {
        let doc = serde_json::json!({ "adapters": reports, "auto": decision });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if reports.is_empty() {
        println!("no Vulkan adapter found (install a GPU driver, or Mesa's software driver: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for (i, a) in reports.iter().enumerate() {
        println!("adapter {i}: {}", a.name);
        println!("  backend:       {}", a.backend);
        println!(
            "  device type:   {}{}",
            a.device_type,
            if a.software { " (software)" } else { "" }
        );
        println!("  driver:        {} {}", a.driver, a.driver_info);
        println!(
            "  max storage binding: {} MiB, max buffer: {} MiB, max workgroups per dimension: {}",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension
        );
    }
    println!(
        "auto: {}{} ({})",
        decision.backend,
        decision
            .adapter
            .as_deref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default(),
        decision.reason
    );
    Ok(())
}

fn main() -> ExitCode {
    // Before anything else (no thread, no file, no GPU yet): no core dumps,
    // not dumpable, no driver caches on disk.
    if let Err(e) = imgworker::privacy::harden() {
        eprintln!("imgworker: {e}");
        return ExitCode::from(2);
    }
    // SAFETY: the process is still single-threaded here.
    unsafe { imgworker::privacy::disable_driver_disk_caches() };
    // Mesa's implicit `device_select` Vulkan layer connects to a Wayland
    // display while adapters are enumerated and, on a headless machine,
    // prints an error to stderr that would break JSON log lines. imgworker
    // picks its adapter itself, so the layer is disabled (its own switch).
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the process is still single-threaded here.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let cli = Cli::parse();
    // A benchmark's thousands of jobs would drown its progress in job logs.
    let default_level = match cli.command {
        Command::Bench(_) => "warn",
        _ => "info",
    };
    init_tracing(cli.log_format, default_level);
    tracing::debug!(
        core_dumps_disabled = imgworker::privacy::core_dumps_disabled(),
        "process hardened"
    );
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imgworker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let file = load_file(cli.config.as_ref())?;
    let require_tls = cli.require_tls || file.require_tls.unwrap_or(false);
    match cli.command {
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&imgworker::schema::all())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            opts,
            queue,
            concurrency,
            grace_secs,
            http_addr,
            retry_backoff_ms,
        } => {
            anyhow::ensure!(
                grace_secs.is_finite() && grace_secs >= 0.0,
                "--grace-secs must be a non-negative number"
            );
            anyhow::ensure!(
                queue.delivery_limit >= 1,
                "--delivery-limit must be at least 1"
            );
            let broker = queue.broker(&file, require_tls)?;
            let cfg = imgworker::queue::ServeConfig {
                concurrency: concurrency.or(file.concurrency).unwrap_or(2),
                grace: std::time::Duration::from_secs_f64(grace_secs),
                signing: queue.signing()?,
                topology: queue.topology(),
                retry_backoff: std::time::Duration::from_millis(retry_backoff_ms),
                ..imgworker::queue::ServeConfig::new(broker)
            };
            let engine = build_engine(opts, &file, require_tls)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async move {
                let metrics = std::sync::Arc::new(imgworker::metrics::Metrics::new());
                let listener = tokio::net::TcpListener::bind(http_addr)
                    .await
                    .with_context(|| format!("binding the HTTP endpoints on {http_addr}"))?;
                let router = imgworker::metrics::router(metrics.clone());
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::error!(error = %e, "HTTP endpoints stopped");
                    }
                });
                tracing::info!(%http_addr, "metrics and health endpoints listening");
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    termination().await;
                    let _ = tx.send(true);
                });
                imgworker::queue::serve(engine, cfg, metrics, rx).await?;
                tracing::info!("stopped");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit {
            jobs,
            queue,
            wait,
            timeout_secs,
        } => {
            anyhow::ensure!(
                timeout_secs.is_finite() && timeout_secs > 0.0,
                "--timeout-secs must be positive"
            );
            let broker = queue.broker(&file, require_tls)?;
            let bodies = jobs.iter().map(read_job).collect::<Result<Vec<_>>>()?;
            let cfg = imgworker::queue::submit::SubmitConfig {
                broker,
                topology: queue.topology(),
                signing: queue.signing()?,
                wait: wait.then(|| std::time::Duration::from_secs_f64(timeout_secs)),
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let results = runtime.block_on(imgworker::queue::submit::submit(&cfg, &bodies))?;
            let mut all_ok = true;
            for r in &results {
                all_ok &= r.status == Status::Succeeded;
                println!("{}", serde_json::to_string(r)?);
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Health { http_addr } => Ok(health(http_addr)),
        Command::Devices { json } => {
            devices(json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench(args),
        Command::Run { job, opts } => {
            let body = read_job(&job)?;
            let engine = build_engine(opts, &file, require_tls)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let outcome = runtime.block_on(engine.run(&body, 1));
            println!("{}", serde_json::to_string(&outcome.result)?);
            Ok(if outcome.result.status == Status::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
