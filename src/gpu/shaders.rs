//! WGSL sources, loaded from `shaders/` at compile time.
//!
//! Every kernel module is `common.wgsl` (bindings, parameters, packing)
//! followed by its own file(s). Pipelines are keyed by entry point name.
//! Each op's shader is `shaders/{op}.wgsl`; `auto_orient` reuses the
//! `remap` kernel of `rotate.wgsl`, and `point.wgsl` fuses runs of the
//! per-pixel ops (adjust, grayscale, invert, sepia).

macro_rules! shader {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/",
            $name,
            ".wgsl"
        ))
    };
}

/// Bindings, the parameter block and pixel packing, shared by every kernel.
pub const COMMON: &str = shader!("common");

/// Each shader module: its name and the files it is built from, after `common`.
pub const MODULES: &[(&str, &[&str])] = &[
    (
        "point",
        &[
            shader!("adjust"),
            shader!("grayscale"),
            shader!("invert"),
            shader!("sepia"),
            shader!("point"),
        ],
    ),
    ("crop", &[shader!("crop")]),
    ("flip", &[shader!("flip")]),
    ("rotate", &[shader!("rotate")]),
    ("pad", &[shader!("pad")]),
    ("resize", &[shader!("resize")]),
    ("blur", &[shader!("blur")]),
    ("sharpen", &[shader!("sharpen")]),
    ("overlay", &[shader!("overlay")]),
];

/// Every compute entry point and the module that holds it.
pub const ENTRY_POINTS: &[(&str, &str)] = &[
    ("point", "point"),
    ("crop", "crop"),
    ("flip", "flip"),
    ("remap", "rotate"),
    ("rotate", "rotate"),
    ("pad", "pad"),
    ("premultiply", "resize"),
    ("unpremultiply", "resize"),
    ("resize_vertical", "resize"),
    ("resize_horizontal", "resize"),
    ("resize_nearest", "resize"),
    ("blur_horizontal", "blur"),
    ("blur_vertical", "blur"),
    ("sharpen", "sharpen"),
    ("overlay", "overlay"),
];

/// The full source of a module: `common.wgsl` and its own files.
pub fn module_source(name: &str) -> Option<String> {
    let (_, files) = MODULES.iter().find(|(n, _)| *n == name)?;
    let mut src = String::from(COMMON);
    for f in *files {
        src.push('\n');
        src.push_str(f);
    }
    Some(src)
}
