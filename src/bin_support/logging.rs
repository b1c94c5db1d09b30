//! Log set-up: `tracing` to stderr, filtered by `IMGWORKER_LOG` (or
//! `RUST_LOG`), as text or JSON lines.

use super::args::LogFormat;

/// Install the subscriber; `default_level` applies when no filter is set.
pub fn init(format: LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMGWORKER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
