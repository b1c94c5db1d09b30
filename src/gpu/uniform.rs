//! The typed interface between Rust and WGSL.
//!
//! Every kernel reads the image sizes ([`Sizes`], binding 2, declared in
//! `shaders/common.wgsl`) and, when it has parameters, its own uniform struct
//! at binding 4. Each such struct is declared once in Rust with
//! [`gpu_uniform!`] and once in the op's shader under the same name; the
//! `shaders` test reads the WGSL with naga and checks every struct's member
//! names, offsets and sizes against [`Uniform::layout`].
//!
//! Enumerations the shaders branch on (blend modes, axes, point stages) are
//! WGSL constants generated from the Rust enums ([`GpuEnum`]), so that a
//! number is written in one place only.

/// One member of a uniform struct as laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Field name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// A uniform struct's name and layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniformLayout {
    /// Struct name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Its members in declaration order.
    pub members: Vec<Member>,
    /// Its size in bytes.
    pub size: usize,
}

/// A kernel's parameter block: plain 32-bit scalars, mirrored by a WGSL struct
/// of the same name.
pub trait Uniform: bytemuck::Pod {
    /// The struct's layout, for the naga check.
    fn layout() -> UniformLayout;
}

/// Declare a kernel's uniform struct: `#[repr(C)]`, `Pod`, with its
/// [`Uniform`] layout derived from the fields. Fields must be `u32`, `i32` or
/// `f32` (WGSL's 4-byte scalars), so that Rust and WGSL lay them out alike.
#[macro_export]
macro_rules! gpu_uniform {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty,)*
        }

        impl $crate::gpu::uniform::Uniform for $name {
            fn layout() -> $crate::gpu::uniform::UniformLayout {
                $crate::gpu::uniform::UniformLayout {
                    name: stringify!($name),
                    members: vec![$($crate::gpu::uniform::Member {
                        name: stringify!($field),
                        offset: std::mem::offset_of!($name, $field),
                        size: std::mem::size_of::<$ty>(),
                    }),*],
                    size: std::mem::size_of::<$name>(),
                }
            }
        }
    };
}

crate::gpu_uniform! {
    /// Source and destination sizes of every dispatch (binding 2).
    pub struct Sizes {
        /// Source width.
        pub(crate) src_width: u32,
        /// Source height.
        pub(crate) src_height: u32,
        /// Destination width.
        pub(crate) dst_width: u32,
        /// Destination height.
        pub(crate) dst_height: u32,
    }
}

/// A Rust enum that shaders branch on, written to WGSL as `u32` constants
/// named `PREFIX_VARIANT` (the variant's serde name in upper case).
pub trait GpuEnum: Copy + serde::Serialize + 'static {
    /// The constants' prefix, e.g. `BLEND`.
    const PREFIX: &'static str;
    /// Every variant.
    const ALL: &'static [Self];
    /// The variant's value in the shader.
    fn code(self) -> u32;

    /// The WGSL constant name of a variant.
    fn wgsl_name(self) -> String {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("a unit variant serialises to a string");
        format!("{}_{}", Self::PREFIX, name.to_uppercase())
    }

    /// WGSL `const` declarations for every variant.
    fn wgsl_consts() -> String {
        Self::ALL
            .iter()
            .map(|v| format!("const {}: u32 = {}u;\n", v.wgsl_name(), v.code()))
            .collect()
    }
}
