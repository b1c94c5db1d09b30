//! The WGSL sources, checked without a device: every module the registry
//! composes parses and validates with naga (the compiler inside wgpu), its
//! entry points are found, every op's shader is its own file named after it,
//! and every uniform struct a shader declares has the same member names,
//! offsets and sizes as its Rust twin.

use std::collections::HashSet;

use imgworker::gpu::recorder::PointParams;
use imgworker::gpu::shaders::{entry_points, module_source, modules, MASK_MODULE, POINT_MODULE};
use imgworker::gpu::uniform::{Sizes, Uniform, UniformLayout};
use imgworker::ops::OPS;

fn validate(name: &str, src: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("shader module {name}: {}", e.emit_to_string(src)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("shader module {name} does not validate: {e:?}"));
    module
}

#[test]
fn every_module_parses_and_validates() {
    let all = modules();
    // One per non-point op with a kernel, plus the fused point module and
    // the mask blend.
    let kernels = OPS
        .iter()
        .filter(|o| !o.point && o.shader.contains("@compute"))
        .count();
    assert_eq!(all.len(), kernels + 2);
    for (name, src) in &all {
        validate(name, src);
    }
}

#[test]
fn entry_points_are_found_and_unique() {
    let mut seen = HashSet::new();
    for (name, src) in modules() {
        let module = validate(name, &src);
        let found = entry_points(&src);
        let naga_names: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(found, naga_names, "module {name}");
        assert!(!found.is_empty(), "module {name} has no kernel");
        for ep in &module.entry_points {
            assert_eq!(ep.stage, naga::ShaderStage::Compute, "{}", ep.name);
            assert_eq!(ep.workgroup_size, [8, 8, 1], "{}", ep.name);
            assert!(
                seen.insert(ep.name.clone()),
                "entry point {} is declared twice",
                ep.name
            );
        }
    }
    // The kernels ops dispatch by name beyond their own.
    for entry in ["point", "remap", "premultiply", "blur_horizontal", "pad"] {
        assert!(seen.contains(entry), "no entry point {entry}");
    }
}

#[test]
fn each_op_has_a_shader_file_named_after_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for op in OPS {
        let path = dir.join(format!("{}.wgsl", op.name));
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("op {} has no {}: {e}", op.name, path.display()));
        assert_eq!(op.shader, body, "op {}'s SHADER is not its file", op.name);
        if !op.point && !op.shader.contains("@compute") {
            assert!(
                op.shader.contains("no kernel of its own"),
                "op {}'s shader has no kernel and does not say which it records",
                op.name
            );
        }
        if op.point {
            assert!(
                op.shader.contains(&format!("fn {}_apply(", op.name)),
                "point op {} has no stage function {}_apply",
                op.name,
                op.name
            );
        }
    }
    // Anything else is a shared helper.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            OPS.iter().any(|o| o.name == stem)
                || ["common", "point", MASK_MODULE].contains(&stem.as_str()),
            "shaders/{stem}.wgsl is neither an op's shader nor a known helper"
        );
    }
}

/// The uniform structs a module's globals use: (binding, struct type).
fn uniform_structs(module: &naga::Module) -> Vec<(u32, naga::Handle<naga::Type>)> {
    module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::Uniform)
        .map(|(_, g)| (g.binding.as_ref().expect("bound").binding, g.ty))
        .collect()
}

fn wgsl_layout(module: &naga::Module, ty: naga::Handle<naga::Type>) -> UniformLayout {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");
    let t = &module.types[ty];
    let naga::TypeInner::Struct { members, span } = &t.inner else {
        panic!("uniform {:?} is not a struct", t.name);
    };
    let name: &'static str = Box::leak(t.name.clone().expect("named struct").into_boxed_str());
    UniformLayout {
        name,
        members: members
            .iter()
            .map(|m| imgworker::gpu::uniform::Member {
                name: Box::leak(m.name.clone().expect("named member").into_boxed_str()),
                offset: m.offset as usize,
                size: layouter[m.ty].size as usize,
            })
            .collect(),
        size: *span as usize,
    }
}

#[test]
fn every_uniform_struct_matches_its_rust_twin() {
    let mut checked = 0;
    for (name, src) in modules() {
        let module = validate(name, &src);
        let mut rust: Vec<UniformLayout> = vec![Sizes::layout()];
        if name == POINT_MODULE {
            rust.push(PointParams::layout());
        } else if name == MASK_MODULE {
            // The blend has no parameters of its own.
        } else {
            let op = OPS.iter().find(|o| o.name == name).expect("an op module");
            rust.extend((op.uniforms)());
        }
        let declared = uniform_structs(&module);
        for (binding, ty) in &declared {
            let wgsl = wgsl_layout(&module, *ty);
            let twin = rust
                .iter()
                .find(|r| r.name == wgsl.name)
                .unwrap_or_else(|| {
                    panic!(
                        "module {name}: WGSL struct {} (binding {binding}) has no Rust twin",
                        wgsl.name
                    )
                });
            assert_eq!(twin.members, wgsl.members, "module {name}: {}", wgsl.name);
            // WGSL rounds a struct up to its alignment; so does repr(C).
            assert_eq!(twin.size, wgsl.size, "module {name}: size of {}", wgsl.name);
            assert_eq!(
                *binding,
                if wgsl.name == "Sizes" { 2 } else { 4 },
                "module {name}: {} is bound at the wrong slot",
                wgsl.name
            );
            checked += 1;
        }
        // Every Rust uniform of the op is used by its shader.
        for r in &rust {
            assert!(
                declared
                    .iter()
                    .any(|(_, ty)| module.types[*ty].name.as_deref() == Some(r.name)),
                "module {name}: Rust uniform {} is not declared in the shader",
                r.name
            );
        }
    }
    assert!(checked >= 10, "only {checked} uniform structs were checked");
}

#[test]
fn a_wrong_member_offset_is_caught() {
    // The check itself can fail: a shader whose struct swaps two members.
    let src = module_source("crop")
        .unwrap()
        .replace("    x: u32,\n    y: u32,", "    y: u32,\n    x: u32,");
    let module = validate("crop (swapped)", &src);
    let (_, ty) = uniform_structs(&module)
        .into_iter()
        .find(|(b, _)| *b == 4)
        .expect("crop's uniform");
    let rust = imgworker::ops::crop::CropUniform::layout();
    assert_ne!(rust.members, wgsl_layout(&module, ty).members);
}

#[test]
fn enumerations_are_generated_constants() {
    use imgworker::gpu::uniform::GpuEnum;
    use imgworker::ops::composite::Blend;
    use imgworker::ops::flip::Axis;
    let overlay = module_source("composite").unwrap();
    for b in Blend::ALL {
        let line = format!("const {}: u32 = {}u;", b.wgsl_name(), b.code());
        assert!(overlay.contains(&line), "overlay lacks {line}");
    }
    assert_eq!(Blend::Multiply.wgsl_name(), "BLEND_MULTIPLY");
    let flip = module_source("flip").unwrap();
    for a in Axis::ALL {
        assert!(flip.contains(&format!("const {}: u32", a.wgsl_name())));
    }
}
