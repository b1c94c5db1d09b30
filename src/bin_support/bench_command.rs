//! `imgworker bench`: runs the benchmark (`imgworker::bench`) or shows a
//! saved report, then writes the JSON report and the chart. Without the
//! `bench` cargo feature the command still parses, and says how to get it.

use std::process::ExitCode;

use anyhow::Result;

use super::args::BenchArgs;

/// What `imgworker bench` says in a build without the runner.
#[cfg(not(feature = "bench"))]
pub const NEEDS_FEATURE: &str = "imgworker bench needs the `bench` cargo feature: \
     cargo build --release --features bench";

/// Without the `bench` feature: an error (exit 2) naming the feature.
#[cfg(not(feature = "bench"))]
pub fn run(_args: BenchArgs) -> Result<ExitCode> {
    anyhow::bail!(NEEDS_FEATURE)
}

/// Run the benchmark (or read `--report`), print its table, and save the
/// report and the chart.
#[cfg(feature = "bench")]
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    use anyhow::Context;
    use imgworker::bench;
    if args.kernels {
        return kernels(&args);
    }
    // A saved report is shown again; otherwise the benchmark runs and its
    // report is saved.
    let report = match &args.report {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("{} is not an imgworker bench report", path.display()))?
        }
        None => run_jobs(&args)?,
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
#[cfg(feature = "bench")]
fn run_jobs(args: &BenchArgs) -> Result<imgworker::bench::report::Report> {
    use super::args::BenchMode;
    use anyhow::Context;
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

/// `imgworker bench --kernels`: the GPU kernels alone, a table on stdout
/// and the JSON report at `--json`.
#[cfg(feature = "bench")]
fn kernels(args: &BenchArgs) -> Result<ExitCode> {
    use anyhow::Context;
    let report = imgworker::bench::kernels::run(
        &args.input,
        &args.kernel_sizes,
        args.iterations,
        !args.quiet,
    )?;
    print!("{}", report.table());
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", args.json.display()))?;
    eprintln!("report: {}", args.json.display());
    Ok(ExitCode::SUCCESS)
}
