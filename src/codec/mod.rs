//! Decoding and encoding, with limits checked before allocation.

pub(crate) mod avif;
pub mod decode;
pub mod encode;
pub(crate) mod heif;
pub mod jpeg;
pub(crate) mod jxl;
pub mod webp;

pub use decode::SourceImage;
pub use encode::{encode, encode_choosing, encode_output};
