//! imgworker: a stateless image edit worker.
//!
//! Jobs (JSON, schema 1) name an image folder in object storage, a source
//! object, a chain of ops and the versions to write. The worker validates the
//! whole job before touching pixels, decodes the source once, runs the ops,
//! encodes every output in memory and only then writes the versions with
//! their manifests. Nothing is kept once the job is done.
//!
//! # Layout
//! - [`job`]: the job message and its validation into a runnable [`job::Job`];
//!   [`result`]: the result message; [`manifest`]: version manifests;
//!   [`lineage`]: re-edits rendered from the original through the manifests;
//!   [`content_credentials`]: the signed C2PA manifest each version carries.
//! - [`ops`]: one module per op (parameters, validation, planning, CPU code
//!   and GPU recording) and the registry every op list derives from.
//! - [`codec`]: decoding with limits checked from the header, and encoding;
//!   [`color`]: colour management into the job's colour space.
//! - [`backend`]: where pixels are processed: [`gpu`] (wgpu compute shaders,
//!   `shaders/*.wgsl`) or the CPU code of the ops; [`pipeline`]: one job end to end.
//! - [`storage`]: the storage trait and its backends; [`keys`]: key validation.
//! - [`config`]: limits; [`settings`]: layered settings (defaults, TOML
//!   file, `IMGWORKER_*` environment, flags); [`app`]: a worker assembled
//!   from settings (engine, broker, serve); [`error`]: the stable error codes.
//! - [`queue`]: the RabbitMQ worker; [`bench`]: the `imgworker bench` runner
//!   (cargo feature `bench`).

pub mod app;
pub mod audit;
pub mod backend;
pub mod bench;
pub mod codec;
pub mod color;
pub mod config;
pub mod content_credentials;
pub mod error;
pub mod export;
pub mod gpu;
pub mod job;
pub(crate) mod keys;
pub mod lineage;
pub mod manifest;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod privacy;
pub mod queue;
pub mod result;
pub mod schema;
pub mod settings;
pub mod storage;

pub use error::{ErrorCode, JobError};
