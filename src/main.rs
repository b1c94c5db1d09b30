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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Process one job with no broker and print the result JSON (last line of stdout).
    Run {
        /// The job file (`-` for standard input).
        job: PathBuf,
        #[command(flatten)]
        opts: WorkerOpts,
    },
    /// Print the JSON Schemas of the job, result and manifest documents.
    Schema,
    /// List every GPU adapter and say which backend `auto` would pick, and why.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    #[command(flatten)]
    limits: LimitOpts,
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

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMGWORKER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
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
    // Mesa's implicit `device_select` Vulkan layer connects to a Wayland
    // display while adapters are enumerated and, on a headless machine,
    // prints an error to stderr that would break JSON log lines. imgworker
    // picks its adapter itself, so the layer is disabled (its own switch).
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the process is still single-threaded here.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let cli = Cli::parse();
    init_tracing(cli.log_format);
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
    match cli.command {
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&imgworker::schema::all())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Devices { json } => {
            devices(json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { job, opts } => {
            let body = if job.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut b)
                    .context("reading the job from stdin")?;
                b
            } else {
                std::fs::read(&job)
                    .with_context(|| format!("reading job file {}", job.display()))?
            };
            let backend_choice = match (opts.backend, &file.backend) {
                (Some(b), _) => b,
                (None, Some(s)) => BackendChoice::from_str(s, true)
                    .map_err(|e| anyhow::anyhow!("config backend: {e}"))?,
                (None, None) => BackendChoice::Auto,
            };
            let backend = Backend::select(backend_choice)?;
            let url = opts
                .storage
                .or(file.storage)
                .unwrap_or_else(|| "imgworker-data".into());
            let storage = imgworker::storage::open(&url)?;
            let cfg = WorkerConfig {
                limits: limits(&opts.limits, &file.limits)?,
                allow_prefixes: if opts.allow_prefixes.is_empty() {
                    file.allow_prefixes
                } else {
                    opts.allow_prefixes
                },
                watermark_prefixes: if opts.watermark_prefixes.is_empty() {
                    file.watermark_prefixes
                } else {
                    opts.watermark_prefixes
                },
                ..WorkerConfig::new()
            };
            tracing::info!(storage = %storage.describe(), backend = backend.name(), "running one job");
            let engine = Engine::new(cfg, storage, backend);
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
