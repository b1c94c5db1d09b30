//! The `imgworker` command line: hardens the process, parses the command,
//! loads the settings (`imgworker::settings`) and hands over to the
//! command's module in `src/bin_support/`.

mod bin_support;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use bin_support::args::{Cli, Command};
use bin_support::{bench_command, commands, devices, health, logging};
use imgworker::settings::Settings;

fn main() -> ExitCode {
    // Before anything else (no thread, no file, no GPU yet): no core dumps,
    // not dumpable, no driver caches on disk.
    if let Err(e) = imgworker::privacy::harden() {
        eprintln!("imgworker: {:#}", anyhow::Error::from(e));
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
    logging::init(cli.log_format, default_level);
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
    let settings = Settings::load(cli.config.as_deref(), &cli.flag_layer())?;
    tracing::debug!(?settings, "settings");
    match cli.command {
        Command::Schema => commands::schema(),
        Command::Ops { markdown } => commands::ops(markdown),
        Command::Run {
            job, audit_file, ..
        } => commands::run(&job, audit_file.as_deref(), &settings),
        Command::Serve { .. } => commands::serve(settings),
        Command::Submit {
            jobs,
            wait,
            timeout_secs,
            ..
        } => commands::submit(&jobs, wait, timeout_secs, &settings),
        Command::Health(_) => Ok(health::check(settings.http_addr)),
        Command::Devices { json } => devices::print(json).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench_command::run(args),
    }
}
