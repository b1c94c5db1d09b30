//! The `imgworker` binary's own modules (the library is `src/lib.rs`). They
//! live in this folder, not beside `main.rs`, so that `src/*.rs` holds only
//! library modules and nothing here is mistaken for one.
//!
//! - [`allocator`]: the process allocator and its policy (binary only).
//! - [`args`]: the clap command line, and the flags as a settings layer.
//! - [`logging`]: the tracing subscriber.
//! - [`commands`]: `run`, `serve`, `submit`, `schema`.
//! - [`health`]: `health`, a small HTTP client.
//! - [`devices`]: `devices`, the adapter table.
//! - [`bench_command`]: `bench` (with the `bench` cargo feature).

pub mod allocator;
pub mod args;
pub mod bench_command;
pub mod commands;
pub mod devices;
pub mod health;
pub mod logging;
