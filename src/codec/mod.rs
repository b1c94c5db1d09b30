//! Decoding and encoding, with limits checked before allocation.

pub mod decode;
pub mod encode;
pub(crate) mod heif;
pub mod jpeg;
pub mod webp;

pub use decode::SourceImage;
pub use encode::encode;
