//! Shader modules, composed from the op registry.
//!
//! Every module is built the same way: `shaders/common.wgsl` (bindings, the
//! [`Sizes`](super::uniform::Sizes) uniform, pixel packing, the bounds check),
//! then the constants generated from the op's Rust enums, then the op's own
//! shader (`Operation::SHADER`, `shaders/<op>.wgsl`). Each non-point op is one
//! module named after it, unless its shader declares no kernel. The per-pixel ops form one module, `point`:
//! `shaders/point.wgsl` (the fused kernel), each point op's stage function
//! `<op>_apply`, and a generated `apply_stage` that calls them by stage
//! number. The mask blend (`shaders/mask.wgsl`), which any op may end with, is
//! one more module, `mask`. Entry points are the `@compute` functions found in each module's
//! source, so no table is kept by hand.

use crate::ops::{OpInfo, OPS};

/// Bindings, sizes, packing and the bounds check, shared by every module.
pub(crate) const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// The fused per-pixel kernel (see [`point_module`]).
pub const POINT: &str = include_str!("../../shaders/point.wgsl");

/// The name of the fused per-pixel module.
pub const POINT_MODULE: &str = "point";

/// The name of the module that blends a masked op's result with its input
/// (`shaders/mask.wgsl`).
pub const MASK_MODULE: &str = "mask";

/// The stage number of a point op in `shaders/point.wgsl`'s records: its
/// position among the point ops of the registry, from 1 (0 is no stage).
pub(crate) fn point_stage(name: &str) -> Option<u32> {
    point_ops()
        .position(|op| op.name == name)
        .map(|i| i as u32 + 1)
}

fn point_ops() -> impl Iterator<Item = &'static OpInfo> {
    OPS.iter().filter(|op| op.point)
}

/// `common.wgsl` and the generated constants of every op, the prefix of
/// every module.
fn prelude() -> String {
    let mut src = String::from(COMMON);
    for op in OPS {
        src.push('\n');
        src.push_str(&(op.wgsl_consts)());
    }
    src
}

/// The point module: the fused kernel, each point op's stage function, and
/// the dispatch from stage number to function.
fn point_module() -> String {
    let mut src = prelude();
    src.push('\n');
    src.push_str(POINT);
    let mut dispatch = String::from(
        "\n// Generated from the op registry: stage number to stage function.\n\
         fn apply_stage(c: vec4<f32>, s: u32) -> vec4<f32> {\n    var r = c;\n    switch aux[s * 16u] {\n",
    );
    for op in point_ops() {
        src.push('\n');
        src.push_str(op.shader);
        let n = point_stage(op.name).expect("a point op");
        dispatch.push_str(&format!(
            "        case {n}u: {{ r = {}_apply(c, s); }}\n",
            op.name
        ));
    }
    dispatch.push_str("        default: {}\n    }\n    return r;\n}\n");
    src.push_str(&dispatch);
    src
}

/// Every shader module: its name and full source.
pub fn modules() -> Vec<(&'static str, String)> {
    let mut out = vec![(POINT_MODULE, point_module())];
    // An op whose shader declares no kernel (`trim` records other ops'
    // kernels) has no module of its own.
    for op in OPS
        .iter()
        .filter(|op| !op.point && op.shader.contains("@compute"))
    {
        let mut src = prelude();
        src.push('\n');
        src.push_str(op.shader);
        out.push((op.name, src));
    }
    let mut mask = prelude();
    mask.push('\n');
    mask.push_str(crate::ops::mask::SHADER);
    out.push((MASK_MODULE, mask));
    out
}

/// The full source of one module.
pub fn module_source(name: &str) -> Option<String> {
    modules()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, src)| src)
}

/// The `@compute` entry points a WGSL source declares, in order.
pub fn entry_points(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("@compute") {
        rest = &rest[at + "@compute".len()..];
        if let Some(f) = rest.find("fn ") {
            let name: String = rest[f + 3..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}
