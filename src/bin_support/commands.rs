//! The commands that run jobs or talk to the broker (`run`, `serve`,
//! `submit`) and `schema`: each reads its input, calls `imgworker::app`,
//! and turns the outcome into output and an exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use imgworker::result::Status;
use imgworker::settings::Settings;

/// `imgworker schema`: the JSON Schemas of the job, result and manifest.
pub fn schema() -> Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&imgworker::schema::all())?
    );
    Ok(ExitCode::SUCCESS)
}

/// `imgworker ops`: every op of the registry; with `markdown`, the docs'
/// op table.
pub fn ops(markdown: bool) -> Result<ExitCode> {
    if markdown {
        print!("{}", imgworker::ops::markdown_table());
    } else {
        for op in imgworker::ops::OPS {
            println!("{:<12} {}", op.name, op.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `imgworker run`: one job, its result JSON as the last line of stdout;
/// exit 0 when it succeeded, 1 when it failed. With `audit_file`, the
/// job's audit events as JSON lines there (`-`: stdout, before the result).
pub fn run(job: &Path, audit_file: Option<&Path>, settings: &Settings) -> Result<ExitCode> {
    use std::io::Write;
    let body = read_job(job)?;
    let engine = imgworker::app::build_engine(settings)?;
    // Opened before the job runs: a job whose accesses cannot be recorded
    // does not run.
    let mut audit: Option<Box<dyn Write>> = match audit_file {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the audit file {}", p.display()))?,
        )),
    };
    let outcome = runtime()?.block_on(engine.run(&body, 1));
    if let Some(out) = audit.as_mut() {
        let mut lines = String::new();
        for event in &outcome.audit {
            lines.push_str(&serde_json::to_string(event)?);
            lines.push('\n');
        }
        out.write_all(lines.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the audit events")?;
    }
    println!("{}", serde_json::to_string(&outcome.result)?);
    Ok(exit_code(outcome.result.status == Status::Succeeded))
}

/// `imgworker serve`: consume jobs until SIGTERM or SIGINT, then drain.
pub fn serve(settings: Settings) -> Result<ExitCode> {
    runtime()?.block_on(imgworker::app::serve(settings, termination()))?;
    Ok(ExitCode::SUCCESS)
}

/// `imgworker submit`: publish `jobs`; with `wait`, print each result as a
/// JSON line (waiting at most `timeout_secs`); exit 1 when any failed.
pub fn submit(
    jobs: &[PathBuf],
    wait: bool,
    timeout_secs: f64,
    settings: &Settings,
) -> Result<ExitCode> {
    anyhow::ensure!(
        timeout_secs.is_finite() && timeout_secs > 0.0,
        "--timeout-secs must be positive"
    );
    let wait = wait.then(|| Duration::from_secs_f64(timeout_secs));
    let cfg = imgworker::app::submit_config(settings, wait)?;
    let bodies = jobs
        .iter()
        .map(|p| read_job(p))
        .collect::<Result<Vec<_>>>()?;
    let results = runtime()?.block_on(imgworker::queue::submit::submit(&cfg, &bodies))?;
    let mut all_ok = true;
    for r in &results {
        all_ok &= r.status == Status::Succeeded;
        println!("{}", serde_json::to_string(r)?);
    }
    Ok(exit_code(all_ok))
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// A job file's bytes, or standard input's for `-`. A file that cannot be
/// read, or is not JSON, holds no job to run: an error (exit 2), like a bad
/// flag. A JSON job that is invalid runs and fails with its error code
/// (exit 1), as it would from the queue.
fn read_job(path: &Path) -> Result<Vec<u8>> {
    let (bytes, name) = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the job from stdin")?;
        (b, "the job on stdin".to_string())
    } else {
        let b =
            std::fs::read(path).with_context(|| format!("reading job file {}", path.display()))?;
        (b, format!("job file {}", path.display()))
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .with_context(|| format!("{name} is not JSON"))?;
    Ok(bytes)
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
